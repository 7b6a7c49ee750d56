"""The simulator's Bluetooth: MicroPython's `bluetooth` on Bumble (in process and through the
bridge to the real `micropython`), driven by a bleak client on the Bumble backend.

The peripheral is tests/ble_example_peripheral.py, written against MicroPython's API; each
test runs it on both runtimes (the `runtime` fixture) unless it tests one side only.
"""

import asyncio
import json
import os
import sys

import ble_example_peripheral as example
import pytest
from ble_rig import PASSKEY, run_rig
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError, BleakGATTProtocolError

from simulator.ble import bluetooth_module, use_radio
from simulator.ble.bleak_backend import BumbleClient, BumbleScanner, use_bumble, uuid_str
from simulator.ble.peripheral import decode_bond, encode_bond
from simulator.ble.rig import Rig

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
ATT_INSUFFICIENT_AUTHENTICATION = 0x05
ATT_INSUFFICIENT_ENCRYPTION = 0x0F
ATT_READ_NOT_PERMITTED = 0x02


def client_for(central, peripheral, passkey=PASSKEY, **kwargs):
    return BleakClient(
        peripheral.address,
        backend=BumbleClient,
        device=central,
        passkey=lambda: passkey,
        **kwargs,
    )


def stored_secret_types(peripheral):
    with open(peripheral.secrets_path) as f:
        return sorted(entry[0] for entry in json.load(f))


async def connected(central, peripheral, notify_uuid=None, **kwargs):
    """A connected client, subscribed to `notify_uuid` if given; `got` collects values."""
    got = []
    client = client_for(central, peripheral, **kwargs)
    await client.connect()
    if notify_uuid is not None:
        await client.start_notify(notify_uuid, lambda _c, data: got.append(bytes(data)))
    return client, got


async def command(client, text):
    await client.write_gatt_char(example.COMMAND_UUID, text.encode(), response=True)


async def until_received(got, nbytes):
    while sum(len(g) for g in got) < nbytes:
        await asyncio.sleep(0.005)


async def read_error(client, uuid):
    with pytest.raises(BleakGATTProtocolError) as caught:
        await client.read_gatt_char(uuid)
    return caught.value.code


# -- pairing -----------------------------------------------------------------------------


def test_right_passkey_pairs_and_unlocks_the_protected_read(runtime, tmp_path):
    async def body(rig, peripheral, central):
        client, _ = await connected(central, peripheral)
        assert await read_error(client, example.SECRET_UUID) == ATT_INSUFFICIENT_AUTHENTICATION
        await client.pair()
        assert await peripheral.expect("passkey 3")  # IRQ 31, display action
        assert await peripheral.expect("encryption 1 1 1")  # IRQ 28: encrypted, MITM, bonded
        assert await client.read_gatt_char(example.SECRET_UUID) == example.SECRET_VALUE
        assert client._backend.pairing_prompts == 1
        # The bond reached the firmware's own store through IRQ 30 (type 2: peer keys),
        # beside the IRK NimBLE stores at first start (type 10).
        assert stored_secret_types(peripheral) == [2, 10]
        await client.disconnect()

    run_rig(runtime, tmp_path, body)


def test_wrong_passkey_fails_and_stores_nothing(runtime, tmp_path):
    async def body(rig, peripheral, central):
        client, _ = await connected(central, peripheral, None, passkey=PASSKEY + 1)
        with pytest.raises(BleakError):
            await client.pair()
        assert not client.is_connected  # a failed pairing drops the link, as BlueZ does
        await peripheral.expect("encryption 0 0 0")
        assert stored_secret_types(peripheral) == [10]
        await peripheral.expect("disconnect")
        await client.connect()
        assert await read_error(client, example.SECRET_UUID) == ATT_INSUFFICIENT_AUTHENTICATION
        await client.disconnect()

    run_rig(runtime, tmp_path, body)


def test_just_works_pairing_cannot_read_the_protected_characteristic(runtime, tmp_path):
    async def body(rig, peripheral, central):
        client, _ = await connected(central, peripheral, None, io_capability="none")
        await client.pair()  # no IO on the central: Just Works, encrypted without MITM
        await peripheral.expect("encryption 1 0 1")
        assert await read_error(client, example.SECRET_UUID) == ATT_INSUFFICIENT_AUTHENTICATION
        assert client._backend.pairing_prompts == 0
        await client.disconnect()

    run_rig(runtime, tmp_path, body)


def test_bonded_central_reconnects_without_pairing_also_after_a_restart(runtime, tmp_path):
    async def body(rig, peripheral, central):
        client, _ = await connected(central, peripheral, None, pair=True)
        await peripheral.expect("encryption 1 1 1")
        await client.disconnect()
        await peripheral.expect("disconnect")

        again, _ = await connected(central, peripheral, None, passkey=None)
        assert await again.read_gatt_char(example.SECRET_UUID) == example.SECRET_VALUE
        assert again._backend.pairing_prompts == 0
        await peripheral.expect("encryption 1 1 1")
        await again.disconnect()

        await peripheral.restart()  # a new process / radio on the same secrets file
        after, _ = await connected(central, peripheral, None, passkey=None)
        assert await after.read_gatt_char(example.SECRET_UUID) == example.SECRET_VALUE
        assert after._backend.pairing_prompts == 0
        await after.disconnect()

    run_rig(runtime, tmp_path, body)


def test_security_request_from_the_peripheral_makes_the_central_pair(runtime, tmp_path):
    async def body(rig, peripheral, central):
        client, _ = await connected(central, peripheral)
        await command(client, "secure")
        await peripheral.expect("encryption 1 1 1")  # gap_pair -> Security Request -> pairing
        assert client._backend.pairing_prompts == 1
        assert await client.read_gatt_char(example.SECRET_UUID) == example.SECRET_VALUE
        await client.disconnect()

    run_rig(runtime, tmp_path, body)


def test_a_peripheral_that_lost_the_bond_is_paired_again(tmp_path):
    async def body(rig, peripheral, central):
        client, _ = await connected(central, peripheral, None, pair=True)
        await client.disconnect()
        await peripheral.stop()
        os.remove(peripheral.secrets_path)  # its flash was erased
        await peripheral.start()
        again = client_for(central, peripheral)
        await again.connect()  # encryption fails (HCI 0x06): the stale bond is forgotten
        assert await read_error(again, example.SECRET_UUID) == ATT_INSUFFICIENT_AUTHENTICATION
        await again.pair()
        assert await again.read_gatt_char(example.SECRET_UUID) == example.SECRET_VALUE
        await again.disconnect()

    run_rig("cpython", tmp_path, body)


def test_unencrypted_link_from_a_bonded_peer_gets_insufficient_encryption(tmp_path):
    async def body(rig, peripheral, central):
        client, _ = await connected(central, peripheral, None, pair=True)
        await client.disconnect()
        await central.keystore.delete(peripheral.address)
        # The central forgot the bond, the peripheral did not: NimBLE answers 0x0F.
        fresh, _ = await connected(central, peripheral)
        assert await read_error(fresh, example.SECRET_UUID) == ATT_INSUFFICIENT_ENCRYPTION
        await fresh.disconnect()

    run_rig("cpython", tmp_path, body)


# -- data --------------------------------------------------------------------------------


def test_mtu_247_gives_244_byte_notifications(runtime, tmp_path):
    async def body(rig, peripheral, central):
        client, got = await connected(central, peripheral, example.STREAM_UUID)
        assert client.mtu_size == 247
        await peripheral.expect("mtu 247")  # IRQ 21
        await command(client, "fill 244")
        await peripheral.expect("filled 1")
        await command(client, "fill 245")
        await peripheral.expect("filled 1")
        await until_received(got, 2 * 244)
        assert [len(g) for g in got] == [244, 244]  # the longer one cut to MTU - 3, silently
        assert got[1] == bytes(range(244))
        await client.disconnect()

    run_rig(runtime, tmp_path, body)


def test_records_stream_in_order_packed_to_the_mtu(runtime, tmp_path):
    async def body(rig, peripheral, central):
        client, got = await connected(central, peripheral, example.STREAM_UUID)
        await client.write_gatt_char(example.COMMAND_UUID, b"stream 100", response=False)
        await peripheral.expect("streamed 100")
        await until_received(got, 100 * example.RECORD_SIZE)
        assert b"".join(got) == b"".join(example.record(s) for s in range(100))
        assert len(got[0]) == 7 * example.RECORD_SIZE
        await client.disconnect()

    run_rig(runtime, tmp_path, body)


def test_indication_is_confirmed_with_irq_20(runtime, tmp_path):
    async def body(rig, peripheral, central):
        client, got = await connected(central, peripheral, example.EVENTS_UUID)
        await command(client, "indicate")
        assert await peripheral.expect("indicate_done") == "indicate_done 0"
        assert got == [b"indicated"]
        await client.stop_notify(example.EVENTS_UUID)
        await command(client, "indicate")  # sent unsubscribed (NimBLE does), still confirmed
        assert await peripheral.expect("indicate_done") == "indicate_done 0"
        assert got == [b"indicated"]
        await client.disconnect()

    run_rig(runtime, tmp_path, body)


def test_connection_parameter_update_reaches_irq_27_in_nimble_units(runtime, tmp_path):
    async def body(rig, peripheral, central):
        client, _ = await connected(central, peripheral)
        connection = client._backend._connection  # bleak has no API for it; the OS does it
        await connection.update_parameters(30.0, 30.0, 2, 4000.0)
        # 30 ms in 1.25 ms units, latency 2, 4 s in 10 ms units, status 0
        assert await peripheral.expect("conn_update") == "conn_update 24 2 400 0"
        await client.disconnect()

    run_rig(runtime, tmp_path, body)


def test_credit_window_raises_enomem_at_the_kth_notify(runtime, tmp_path):
    async def body(rig, peripheral, central):
        client, _ = await connected(central, peripheral)
        for k in (1, 4):
            peripheral.radio.set_notify_credits(k - 1)  # k-1 in flight: the k-th has none
            await command(client, "burst 10")
            assert await peripheral.expect("burst") == "burst enomem at %d" % k
        peripheral.radio.set_notify_credits(3)
        await asyncio.sleep(0.05)  # the radio sends them all and returns every credit
        await command(client, "burst 3")
        assert await peripheral.expect("burst") == "burst ok"
        await client.disconnect()

    run_rig(runtime, tmp_path, body)


def test_forced_enomem_every_kth_notify_skips_nothing(runtime, tmp_path):
    async def body(rig, peripheral, central):
        client, got = await connected(central, peripheral, example.STREAM_UUID)
        peripheral.radio.set_enomem_every(3)
        await command(client, "stream 70")
        line = await peripheral.expect("streamed 70")
        # 10 notifications of 7 records; calls 3, 6, 9 and 12 fail and are retried.
        assert line == "streamed 70 enomem 4"
        await until_received(got, 70 * example.RECORD_SIZE)
        assert b"".join(got) == b"".join(example.record(s) for s in range(70))
        await client.disconnect()

    run_rig(runtime, tmp_path, body)


# -- link loss ---------------------------------------------------------------------------


def test_link_drop_after_the_kth_notification_reaches_both_sides(runtime, tmp_path):
    async def body(rig, peripheral, central):
        dropped = asyncio.Event()
        client, got = await connected(
            central,
            peripheral,
            example.STREAM_UUID,
            disconnected_callback=lambda _c: dropped.set(),
        )
        peripheral.radio.drop_link_after("notify", 3)
        await command(client, "stream 100")
        await asyncio.wait_for(dropped.wait(), 5)
        assert await peripheral.expect("disconnect")  # IRQ 2 on the peripheral
        assert b"".join(got) == b"".join(example.record(s) for s in range(21))  # 3 x 7
        assert not client.is_connected
        with pytest.raises(BleakError):
            await client.read_gatt_char(example.SECRET_UUID)
        # The firmware advertises again; the host reconnects.
        await client.connect()
        assert client.is_connected
        await client.disconnect()

    run_rig(runtime, tmp_path, body)


def test_link_loss_during_a_request_is_a_bleak_error_not_a_cancellation(runtime, tmp_path):
    async def body(rig, peripheral, central):
        client, _ = await connected(central, peripheral)
        peripheral.radio.drop_link_after("write", 1)  # lost before the write response
        with pytest.raises(BleakError) as caught:
            await command(client, "fill 1")
        assert not isinstance(caught.value, BleakGATTProtocolError)
        await peripheral.expect("disconnect")

    run_rig(runtime, tmp_path, body)


# -- discovery ---------------------------------------------------------------------------


def test_scanning_filtered_by_service_uuid_finds_the_advertiser(tmp_path):
    async def body(rig, peripheral, central):
        found = await BleakScanner.discover(
            timeout=0.3,
            service_uuids=[example.SERVICE_UUID],
            backend=BumbleScanner,
            device=central,
        )
        assert [d.address for d in found] == [peripheral.address]
        assert found[0].name == example.NAME
        other = await BleakScanner.discover(
            timeout=0.3,
            service_uuids=["0000180d-0000-1000-8000-00805f9b34fb"],
            backend=BumbleScanner,
            device=central,
        )
        assert other == []
        # Host code that names no backend (host_sync) gets Bumble inside use_bumble().
        with use_bumble(central, passkey=lambda: PASSKEY):
            device = await BleakScanner.find_device_by_address(peripheral.address, timeout=1)
            assert device is not None
            async with BleakClient(device) as client:
                service = client.services.get_service(example.SERVICE_UUID)
                assert service is not None
                assert {c.uuid for c in service.characteristics} == {
                    example.STREAM_UUID,
                    example.COMMAND_UUID,
                    example.SECRET_UUID,
                    example.EVENTS_UUID,
                }
                assert "notify" in service.get_characteristic(example.STREAM_UUID).properties

    run_rig("cpython", tmp_path, body)


def test_host_code_in_a_subprocess_reaches_the_air_over_hci(tmp_path):
    keys = str(tmp_path / "host-bonds.json")

    async def host(spec, *args, stdin=b""):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([TESTS_DIR, env.get("PYTHONPATH", "")])
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *["-m", "simulator.ble.host_runner", "--hci", spec, "--keys", keys],
            *["-m", "ble_host_script", example.SERVICE_UUID, example.SECRET_UUID, *args],
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
        return proc.returncode, out.decode(), err.decode()

    async def body(rig, peripheral, central):
        spec = await rig.serve_central()
        code, out, err = await host(spec, "pair", stdin=b"%d\n" % PASSKEY)
        assert code == 0, out + err
        # The prompt was shown and answered on stdin, then the protected value read.
        assert out.splitlines()[-1] == (
            "Enter the 6-digit passkey shown on the device: secret "
            + example.SECRET_VALUE.decode()
        )
        # A second run: the bond was kept in the key file, nothing is typed.
        spec = await rig.serve_central()
        code, out, err = await host(spec)
        assert code == 0, out + err
        assert out.splitlines()[-1] == "secret " + example.SECRET_VALUE.decode()

    run_rig("cpython", tmp_path, body)


# -- the shim itself (in process) --------------------------------------------------------


def run_bare(body):
    """A bare peripheral radio (no example firmware) and a central, in process."""

    async def main():
        rig = Rig()
        try:
            central = await rig.central()
            radio = await rig.peripheral()
            await body(rig, radio, rig.ble(radio), central)
        finally:
            await rig.close()

    asyncio.run(main())


def test_writes_truncate_to_the_buffer_unless_it_is_grown():
    bluetooth = bluetooth_module()
    char_uuid = "8a1f00ff-5e1c-4c3b-9a57-1d2f3e4a5b6c"

    async def body(rig, radio, ble, central):
        ble.active(True)
        service = (
            bluetooth.UUID(example.SERVICE_UUID),
            (
                (bluetooth.UUID(char_uuid), bluetooth.FLAG_WRITE),
                (bluetooth.UUID(example.EVENTS_UUID), bluetooth.FLAG_WRITE),
            ),
        )
        ((plain, appended),) = ble.gatts_register_services((service,))
        ble.gatts_set_buffer(appended, 25, True)
        ble.gap_advertise(20000, b"")
        client = BleakClient(radio.address, backend=BumbleClient, device=central)
        await client.connect()
        await client.write_gatt_char(char_uuid, bytes(range(30)), response=True)
        assert ble.gatts_read(plain) == bytes(range(20))  # MicroPython's default 20 bytes
        await client.write_gatt_char(example.EVENTS_UUID, b"0123456789", response=True)
        await client.write_gatt_char(example.EVENTS_UUID, b"abcdefghijklmnopq", response=True)
        assert ble.gatts_read(appended) == b"0123456789abcdefghijklmno"  # append, then full
        assert ble.gatts_read(appended) == b""  # an append buffer empties when read
        await client.disconnect()

    run_bare(body)


def test_irq_buffers_are_valid_only_inside_the_handler():
    kept = []

    async def body(rig, radio, ble, central):
        def handler(event, data):
            if event == 1:
                kept.append((bytes(data[2]), data[2]))  # a copy, and the view itself

        ble.irq(handler)
        ble.active(True)
        ble.gap_advertise(20000, b"")
        client = BleakClient(radio.address, backend=BumbleClient, device=central)
        await client.connect()
        copied, view = kept[0]
        assert copied == bytes(reversed(central.random_address.address_bytes))
        with pytest.raises(ValueError):
            bytes(view)  # released after the handler: as the board's ringbuffer, gone
        await client.disconnect()

    run_bare(body)


def test_no_protected_characteristic_without_read_flag():
    bluetooth = bluetooth_module()

    async def body(rig, radio, ble, central):
        ble.active(True)
        service = (
            bluetooth.UUID(example.SERVICE_UUID),
            ((bluetooth.UUID(example.STREAM_UUID), bluetooth.FLAG_NOTIFY),),
        )
        ((handle,),) = ble.gatts_register_services((service,))
        ble.gap_advertise(20000, b"")
        client = BleakClient(radio.address, backend=BumbleClient, device=central)
        await client.connect()
        assert await read_error(client, example.STREAM_UUID) == ATT_READ_NOT_PERMITTED
        with pytest.raises(OSError):
            ble.gatts_notify(99, handle, b"x")  # no such connection: ENOTCONN
        await client.disconnect()

    run_bare(body)


def test_read_request_irq_can_deny_and_gatts_write_can_notify_subscribers():
    bluetooth = bluetooth_module()
    denied = 0x08  # _GATTS_ERROR_INSUFFICIENT_AUTHORIZATION, as the handler chooses

    async def body(rig, radio, ble, central):
        state = {"deny": True}

        def handler(event, data):
            if event == 4:  # _IRQ_GATTS_READ_REQUEST: non-zero denies
                return denied if state["deny"] else 0
            return None

        ble.irq(handler)
        ble.active(True)
        flags = bluetooth.FLAG_READ | bluetooth.FLAG_NOTIFY
        service = (
            bluetooth.UUID(example.SERVICE_UUID),
            ((bluetooth.UUID(example.STREAM_UUID), flags),),
        )
        ((handle,),) = ble.gatts_register_services((service,))
        ble.gatts_write(handle, b"first")
        ble.gap_advertise(20000, b"")
        got = []
        client = BleakClient(radio.address, backend=BumbleClient, device=central)
        await client.connect()
        assert await read_error(client, example.STREAM_UUID) == denied
        state["deny"] = False
        assert await client.read_gatt_char(example.STREAM_UUID) == b"first"
        await client.start_notify(example.STREAM_UUID, lambda _c, data: got.append(bytes(data)))
        ble.gatts_write(handle, b"second", True)  # send_update: subscribers are notified
        while not got:
            await asyncio.sleep(0.005)
        assert got == [b"second"]
        assert ble.gatts_read(handle) == b"second"
        await client.disconnect()

    run_bare(body)


def test_ble_without_argument_is_the_radio_in_use_and_one_stack():
    bluetooth = bluetooth_module()

    async def body(rig, radio, ble, central):
        use_radio(radio)
        try:
            board_ble = bluetooth.BLE()  # as board.py calls it
            assert board_ble.active() is False
            board_ble.active(True)
            assert ble.active() is True  # one stack per radio, as the board's singleton
            assert board_ble.config("mac") == (1, bytes.fromhex(radio.address.replace(":", "")))
        finally:
            use_radio(None)

    run_bare(body)


def test_uuid_bytes_are_little_endian_and_compare_by_value():
    bluetooth = bluetooth_module()
    assert bytes(bluetooth.UUID(0x180D)) == b"\x0d\x18"
    long_uuid = bluetooth.UUID(example.SERVICE_UUID)
    assert bytes(long_uuid)[::-1].hex() == example.SERVICE_UUID.replace("-", "")
    assert bluetooth.UUID(bytes(long_uuid)) == long_uuid
    assert repr(long_uuid) == "UUID('%s')" % example.SERVICE_UUID
    with pytest.raises(ValueError):
        bluetooth.UUID(0x10000)


def test_bond_record_round_trips_and_rejects_foreign_bytes():
    from bumble import hci
    from bumble.keys import PairingKeys

    address = hci.Address("C0:11:22:33:44:55")
    keys = PairingKeys(
        address_type=hci.AddressType.RANDOM_DEVICE,
        ltk=PairingKeys.Key(value=bytes(range(16)), authenticated=True),
        irk=PairingKeys.Key(value=bytes(range(16, 32)), authenticated=False),
    )
    back_address, back = decode_bond(encode_bond(address, keys))
    assert back_address == address
    assert back.ltk.value == keys.ltk.value and back.ltk.authenticated
    assert back.irk.value == keys.irk.value and not back.irk.authenticated
    with pytest.raises(ValueError):
        decode_bond(encode_bond(address, keys)[:-1])


def test_uuid_strings_are_bleak_style():
    from bumble.core import UUID

    assert uuid_str(UUID.from_16_bits(0x180D)) == "0000180d-0000-1000-8000-00805f9b34fb"
    assert uuid_str(UUID(example.SERVICE_UUID.upper())) == example.SERVICE_UUID

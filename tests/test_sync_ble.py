"""The sync end to end: the unit's firmware (firmware/ble.py + core.sync + the real store)
and the laptop's host_sync over a real GATT stack (Bumble), with the unit on CPython in
process and on the real `micropython` through the bridge (the `runtime` fixture).

The unit is tests/device/sync_device.py: its store on a temporary directory on CPython (no
LittleFS there) and on LittleFS over a flash image on micropython. What it stores is
compared with what the laptop's database holds, record by record (count and CRC32 of the raw
bytes in seq order), and nothing may be acknowledged on the unit that the database lacks.
"""

import asyncio
import binascii

import pytest
from bleak import BleakClient
from bleak.exc import BleakGATTProtocolError
from sync_rig import DEVICE_ID, Laptop, run

from core import protocol
from host_sync.ble import uuid16
from host_sync.transport import LinkLost, NotPaired
from simulator.ble.bleak_backend import BumbleClient

ATT_INSUFFICIENT_AUTHENTICATION = 0x05
WALL_S = 1796083200


def db_digest(db):
    crc = 0
    n = 0
    for (raw,) in db.conn.execute(
        "SELECT raw FROM records WHERE device_id = ? ORDER BY seq", (DEVICE_ID,)
    ):
        crc = binascii.crc32(raw, crc)
        n += 1
    return n, crc


def db_seqs(db):
    return [
        row[0]
        for row in db.conn.execute(
            "SELECT seq FROM records WHERE device_id = ? ORDER BY seq", (DEVICE_ID,)
        )
    ]


async def check_nothing_acked_beyond_the_database(device, laptop):
    state = await device.state()
    assert state["acked"] <= laptop.db.highest_seq(DEVICE_ID)
    seqs = db_seqs(laptop.db)
    assert len(seqs) == len(set(seqs))  # nothing twice
    return state


async def synced(device, laptop):
    """The database holds exactly the unit's records, and the unit acknowledged them all."""
    assert db_digest(laptop.db) == await device.digest()
    state = await device.state()
    assert state["acked"] == state["stored"] == laptop.db.highest_seq(DEVICE_ID)


# -- the whole pull ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1])
def test_pull_then_nothing_then_only_the_new_records(runtime, tmp_path, n):
    async def body(rig, device, laptop):
        if n:
            assert await device.command("add %d" % n) == "2-%d" % (n + 1)
        await laptop.pair()
        first = await laptop.pull()
        # The unit's boot event (seq 1) and the n trials.
        assert (first.offered, first.received, first.new) == (n + 1, n + 1, n + 1)
        assert first.acked_through == n + 1
        await synced(device, laptop)
        trials = laptop.db.conn.execute(
            'SELECT seq, site, side, "end", ppt_kpa_x10, peak_kpa_x10 FROM trial_records'
        ).fetchall()
        assert trials == [
            (2 + i, "upper_trapezius", "L", "stop", 2000 + i, 2100) for i in range(n)
        ]
        boot = laptop.db.conn.execute("SELECT seq, code, a FROM event_records").fetchall()
        assert boot == [(1, 1, 0)]  # EV_BOOT, no records found at the first mount

        second = await laptop.pull()
        assert (second.offered, second.received, second.new) == (0, 0, 0)

        assert await device.command("add 3") == "%d-%d" % (n + 2, n + 4)
        third = await laptop.pull()
        assert (third.offered, third.received, third.new) == (3, 3, 3)
        assert third.acked_through == n + 4
        await synced(device, laptop)

    run(runtime, tmp_path, body)


def test_ten_thousand_records_in_one_pull(runtime, tmp_path):
    # On micropython the unit writes them to LittleFS first (about 8 s of the test).
    async def body(rig, device, laptop):
        assert await device.command("add 10000", timeout_s=120) == "2-10001"
        await laptop.pair()
        seen = []
        result = await laptop.pull(lambda done, total: seen.append((done, total)))
        assert (result.received, result.new, result.acked_through) == (10001, 10001, 10001)
        assert seen[-1] == (10001, 10001)
        assert all(a[0] < b[0] for a, b in zip(seen, seen[1:], strict=False))
        await synced(device, laptop)
        assert laptop.db.count(DEVICE_ID, "trial") == 10000
        assert (await laptop.pull()).received == 0

    run(runtime, tmp_path, body, timeout_s=240, blocks=128, heapsize="3M")


# -- link loss and a full radio -----------------------------------------------------------


def _drop_cases():
    # 40 trials and the boot event: 41 x 28 bytes in 5 notifications of 243.
    return [("notify", k) for k in range(1, 6)] + [
        (kind, k) for kind in ("write", "indicate") for k in (1, 2, 3)
    ]


@pytest.mark.parametrize(("kind", "k"), _drop_cases(), ids=lambda v: str(v))
def test_a_dropped_link_loses_nothing_and_the_next_pull_completes(runtime, tmp_path, kind, k):
    # Control point steps of a pull: writes count, report, delete; indications answer them.
    async def body(rig, device, laptop):
        await device.command("add 40")
        await laptop.pair()
        device.radio.drop_link_after(kind, k)
        try:
            await laptop.pull()
            dropped = False
        except LinkLost:
            dropped = True
        # A drop at the delete's answer comes after the unit acknowledged: that pull
        # completed as far as the unit goes; every other drop interrupts it.
        assert dropped or (kind, k) == ("indicate", 3)
        state = await check_nothing_acked_beyond_the_database(device, laptop)
        if kind == "notify":
            # Whole records that arrived before the drop are committed, none beyond.
            assert laptop.db.count(DEVICE_ID) == min((243 * k) // 28, 41)
            assert state["acked"] == 0
        again = await laptop.pull()
        assert again.duplicates == 0
        await synced(device, laptop)

    run(runtime, tmp_path, body)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_enomem_at_every_kth_notification_skips_nothing(runtime, tmp_path, k):
    async def body(rig, device, laptop):
        await device.command("add 200")
        await laptop.pair()
        device.radio.set_enomem_every(k)
        result = await laptop.pull()
        assert result.received == 201
        await synced(device, laptop)

    run(runtime, tmp_path, body)


def test_a_full_credit_window_only_slows_the_stream(runtime, tmp_path):
    async def body(rig, device, laptop):
        await device.command("add 300")
        await laptop.pair()
        device.radio.set_notify_credits(2)  # NimBLE with two buffers free
        assert (await laptop.pull()).received == 301
        await synced(device, laptop)

    run(runtime, tmp_path, body)


# -- security ------------------------------------------------------------------------------


def _raw_client(device, central, **kwargs):
    return BleakClient(device.address, backend=BumbleClient, device=central, **kwargs)


async def _refused_everything(device, client):
    """A link that is not encrypted with MITM: protected writes and reads fail with ATT
    0x05, a subscription receives nothing, the unit answers nothing and stores nothing."""
    got = []
    await client.start_notify(protocol.RECORDS_UUID, lambda _c, d: got.append(bytes(d)))
    await client.start_notify(protocol.CONTROL_POINT_UUID, lambda _c, d: got.append(bytes(d)))
    for uuid, data in (
        (protocol.CONTROL_POINT_UUID, protocol.request("report", "all")),
        (protocol.PATIENTS_UUID, b"\x00\x00AP"),
        (uuid16(protocol.CURRENT_TIME_UUID16), protocol.current_time(WALL_S)),
    ):
        with pytest.raises(BleakGATTProtocolError) as caught:
            await client.write_gatt_char(uuid, data, response=True)
        assert caught.value.args[0] == ATT_INSUFFICIENT_AUTHENTICATION
    with pytest.raises(BleakGATTProtocolError) as caught:
        await client.read_gatt_char(protocol.PATIENTS_UUID)
    assert caught.value.args[0] == ATT_INSUFFICIENT_AUTHENTICATION
    await asyncio.sleep(0.2)
    assert got == []
    info = await device.info()
    assert info["requests"] == 0 and info["bonds"] == 0
    assert "time" not in " ".join(device.lines)
    # Device Information and status stay readable: nothing of a patient in them.
    status = protocol.parse_status(await client.read_gatt_char(protocol.STATUS_UUID))
    assert status["records"] == 21
    assert (await client.read_gatt_char(uuid16(protocol.SERIAL_UUID16))) == DEVICE_ID.encode()


def test_an_unpaired_central_gets_nothing(runtime, tmp_path):
    async def body(rig, device, laptop):
        await device.command("add 20")
        client = _raw_client(device, laptop.central)
        await client.connect()
        await _refused_everything(device, client)
        await client.disconnect()
        with pytest.raises(NotPaired):
            await laptop.pull()  # host_sync says so in one line
        assert laptop.db.count(DEVICE_ID) == 0

    run(runtime, tmp_path, body)


def test_a_just_works_central_gets_nothing_and_no_bond(runtime, tmp_path):
    async def body(rig, device, laptop):
        await device.command("add 20")
        await device.command("pair 60")  # even with the window open
        client = _raw_client(device, laptop.central, io_capability="none")
        await client.connect()
        await client.pair()  # no IO: Just Works, encrypted without MITM
        assert client._backend.pairing_prompts == 0
        await _refused_everything(device, client)
        assert "passkey" not in " ".join(device.lines)
        await client.disconnect()

    run(runtime, tmp_path, body)


def test_the_right_passkey_pairs_and_a_wrong_one_fails(runtime, tmp_path):
    async def body(rig, device, laptop):
        await device.command("add 20")

        async def wrong():
            return (await device.shown_passkey() + 1) % 1000000

        intruder = Laptop(laptop.central, device, tmp_path / "other.db", passkey=wrong)
        await device.command("pair 60")
        link = await intruder.link()
        with intruder.bleak(), pytest.raises(NotPaired):
            await link.pair()
        await link.close()
        assert await device.expect("passkey none")  # off the screen when pairing failed
        assert (await device.info())["bonds"] == 0
        with pytest.raises(NotPaired):
            await intruder.pull()

        await laptop.pair()  # the window is still open: the right passkey pairs
        assert await device.expect("passkey none")
        info = await device.info()
        assert info["bonds"] == 1 and info["paired"] == 1
        assert (await laptop.pull()).received == 21
        await synced(device, laptop)

    run(runtime, tmp_path, body)


def test_pairing_outside_the_window_is_refused(runtime, tmp_path):
    async def body(rig, device, laptop):
        link = await laptop.link()
        with laptop.bleak(), pytest.raises((NotPaired, LinkLost)):
            await link.pair()
        await link.close()
        info = await device.info()
        assert info["refused"] == 1 and info["bonds"] == 0
        assert not any(line.startswith("passkey") for line in device.lines)
        # The window opened for 1 s closes by itself.
        await device.command("pair 1")
        await asyncio.sleep(1.2)
        link = await laptop.link()
        with laptop.bleak(), pytest.raises((NotPaired, LinkLost)):
            await link.pair()
        await link.close()
        assert (await device.info())["refused"] == 2

    run(runtime, tmp_path, body)


def test_a_bonded_laptop_reconnects_without_pairing_also_after_a_restart(runtime, tmp_path):
    async def body(rig, device, laptop):
        prompts = []

        async def passkey():
            prompts.append(1)
            return await device.shown_passkey()

        laptop._passkey = passkey
        await device.command("add 5")
        await laptop.pair()
        assert len(prompts) == 1
        assert (await laptop.pull()).received == 6
        await device.command("add 2")
        assert (await laptop.pull()).received == 2
        await device.restart()  # power cycle: the same flash, a new boot
        await device.command("add 3")
        result = await laptop.pull()
        assert result.received == 4  # its boot event and the three trials
        assert len(prompts) == 1  # never asked again
        await synced(device, laptop)
        assert (await device.info())["bonds"] == 1

    run(runtime, tmp_path, body)


# -- the other characteristics -------------------------------------------------------------


def test_status_time_and_patient_list(runtime, tmp_path):
    patients = [
        {"code": "P-0001", "age": 42, "sex": "F", "conditions": ("fibromyalgia",)},
        {"code": "K7", "age": 70, "sex": "M", "contraindications": ("bleeding_disorder",)},
    ]

    async def body(rig, device, laptop):
        await device.command("add 4")
        await laptop.pair(seconds=30)
        await device.expect("passkey none")  # the unit has seen the pairing end
        link = await laptop.link()
        with laptop.bleak():
            status = await link.status()
            assert (status["records"], status["stored_seq"], status["acked_seq"]) == (5, 5, 0)
            assert not status["pairing_open"]  # closed by the pairing it allowed
            assert status["ruleset"] == "2026.12-r2"
            await link.set_time(WALL_S)
            assert await device.expect("time ") == "time %d" % WALL_S
            message = protocol.patient_list(patients, WALL_S + 60)
            assert await link.push_patients(message) == (
                protocol.PATIENTS_ACCEPTED,
                WALL_S + 60,
                2,
            )
            assert await device.expect("patients ") == "patients %d 2" % (WALL_S + 60)
            bad = bytearray(message)
            bad[20] ^= 1  # the CRC fails: the unit keeps its old list and says so
            result = await link.push_patients(bytes(bad))
            assert result[0] == protocol.PATIENTS_REFUSED
            await link.close()
        assert (await device.info())["ignored"] == 1

    run(runtime, tmp_path, body)


def test_the_database_file_is_private(tmp_path):
    from host_sync.db import Database

    path = tmp_path / "d" / "algodose.db"
    Database(str(path)).close()
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o700

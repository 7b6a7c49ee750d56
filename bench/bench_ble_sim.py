"""The BLE simulator's own speed (not a radio's: air time is not modelled, see
docs/ble-simulator.md): the example peripheral (tests/ble_example_peripheral.py, written
against MicroPython's `bluetooth`) streams 2 000 records of 32 bytes, seven per
notification at MTU 247, to a bleak client on the Bumble backend, with NimBLE's credit
window; and one passkey pairing (LE Secure Connections). In process on CPython, and on
`micropython -X heapsize=64K` through the bridge. Informational: no budget."""

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from bleak import BleakClient

from simulator.ble import bluetooth_module
from simulator.ble.bleak_backend import BumbleClient
from simulator.ble.rig import Rig

TESTS_DIR = Path(__file__).resolve().parent.parent / "tests"
RECORDS = 2000
PASSKEY = 135790


async def measure(runtime):
    bluetooth = bluetooth_module()
    sys.path.insert(0, str(TESTS_DIR))
    import ble_example_peripheral as example

    rig = Rig()
    secrets = os.path.join(tempfile.mkdtemp(), "secrets.json")
    try:
        central = await rig.central()
        if runtime == "cpython":
            radio = await rig.peripheral()
            peripheral = example.ExamplePeripheral(bluetooth, rig.ble(radio), secrets, PASSKEY)
            task = asyncio.get_running_loop().create_task(peripheral.run())
            lines = peripheral.lines
        else:
            proc = await rig.micropython(
                TESTS_DIR / "ble_example_peripheral.py", args=[secrets, PASSKEY], heapsize="64K"
            )
            radio = await proc.bridge.ready()
            await proc.expect("ready")
            task, lines = None, proc.lines
        got = []
        client = BleakClient(
            radio.address, backend=BumbleClient, device=central, passkey=lambda: PASSKEY
        )
        await client.connect()
        start = time.perf_counter()
        await client.pair()
        pairing_s = time.perf_counter() - start
        await client.start_notify(example.STREAM_UUID, lambda _c, data: got.append(len(data)))
        start = time.perf_counter()
        await client.write_gatt_char(example.COMMAND_UUID, b"stream %d" % RECORDS, True)
        while sum(got) < RECORDS * example.RECORD_SIZE:
            await asyncio.sleep(0.001)
        stream_s = time.perf_counter() - start
        enomem = [line for line in lines if line.startswith("streamed")][-1].split()[-1]
        await client.disconnect()
        if task is not None:
            task.cancel()
        return pairing_s, stream_s, int(enomem)
    finally:
        await rig.close()


def rows():
    out = []
    runtimes = (("cpython", "CPython in process"), ("micropython", "micropython, bridge"))
    for runtime, how in runtimes:
        pairing_s, stream_s, enomem = asyncio.run(measure(runtime))
        out.append(
            {
                "what": "BLE sim: 2000 records notified to bleak, %s" % how,
                "measured": RECORDS / stream_s,
                "unit": "records/s",
                "budget": "-",
                "baseline": "%d ENOMEM retries (12 credits)" % enomem,
                "ok": None,
            }
        )
        out.append(
            {
                "what": "BLE sim: passkey pairing (LE SC, bond via IRQ 30), %s" % how,
                "measured": pairing_s * 1000,
                "unit": "ms",
                "budget": "-",
                "baseline": "-",
                "ok": None,
            }
        )
    return out

"""Host code for test_ble_sim's subprocess test: plain bleak, no backend named (as host_sync).

python -m simulator.ble.host_runner --hci SPEC -m ble_host_script SERVICE CHAR [pair]
Scans for SERVICE, reads CHAR; prints the address found, then the value, or one line
naming the failure.
"""

import asyncio
import sys

from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError


async def main(service_uuid, char_uuid, pair):
    devices = await BleakScanner.discover(timeout=0.5, service_uuids=[service_uuid])
    if not devices:
        print("no device")
        return 1
    print("found", devices[0].address)
    try:
        async with BleakClient(devices[0], pair=pair) as client:
            print("secret", (await client.read_gatt_char(char_uuid)).decode())
    except BleakError as error:
        print("failed", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], "pair" in sys.argv[3:])))

"""Run host code in its own process against the simulator's air, through bleak unchanged.

    python -m simulator.ble.host_runner --hci tcp-client:127.0.0.1:PORT \\
        [--keys bonds.json] [--address C1:00:00:00:00:07] -m host_sync pull ...

`--hci` is what `Rig.serve_central()` returned: a central controller on the rig's
LocalLink, reached over HCI on TCP (Bumble's own transport). Its host, a Bumble `Device`
opened on the host code's own event loop, becomes bleak's platform backend (`use_bumble`);
then the module runs as `python -m` would run it. The passkey is typed at the prompt
(stdin), as by a clinician; bonds persist in `--keys` (a Bumble JsonKeyStore file) across
runs, as the OS keeps them.
"""

import argparse
import runpy
import sys

from bumble import hci
from bumble.device import Device
from bumble.keys import JsonKeyStore
from bumble.transport import open_transport

from simulator.ble.bleak_backend import use_bumble


async def open_central(hci_spec, keys_path=None, address="C1:00:00:00:00:01"):
    """A powered-on Bumble central whose controller is at `hci_spec`."""
    transport = await open_transport(hci_spec)
    device = Device.with_hci("host", hci.Address(address), transport.source, transport.sink)
    if keys_path:
        device.keystore = JsonKeyStore(namespace=None, filename=keys_path)
    await device.power_on()
    return device, transport


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m simulator.ble.host_runner")
    parser.add_argument("--hci", required=True, help="transport from Rig.serve_central()")
    parser.add_argument("--keys", help="JSON file for this central's bonds")
    parser.add_argument("--address", default="C1:00:00:00:00:01")
    parser.add_argument("-m", dest="module", required=True, help="module to run")
    args, rest = parser.parse_known_args(argv)

    async def central():
        device, _transport = await open_central(args.hci, args.keys, args.address)
        return device

    sys.argv = [args.module] + rest
    with use_bumble(central):
        runpy.run_module(args.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

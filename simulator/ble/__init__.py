"""The simulator's Bluetooth: MicroPython's `bluetooth` on Bumble, a bridge for the
`micropython` interpreter, and a Bumble-backed bleak backend. See docs/ble-simulator.md.

- `bluetooth_module()`: the `bluetooth` module as firmware imports it (CPython, in process);
  `use_radio(radio)`: what `bluetooth.BLE()` binds to there;
- `simulator.ble.rig.Rig`: one simulated air (a Bumble LocalLink) with a central and
  peripherals, in process or through the bridge to a `micropython` process;
- `simulator.ble.bleak_backend`: `BumbleClient` / `BumbleScanner` for bleak's `backend=`.
"""

import importlib
import sys
from pathlib import Path

from simulator import CPYTHON_SHIMS_DIR

# The pure-MicroPython `bluetooth.py`: on MICROPYPATH for micropython, on sys.path here.
UPY_DIR = Path(__file__).resolve().parent / "upy"


def bluetooth_module():
    """Import the simulator's `bluetooth` under the name firmware uses (`import bluetooth`),
    so the firmware, the rig and the tests share one module and its radio table."""
    for path in (str(CPYTHON_SHIMS_DIR), str(UPY_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)
    return importlib.import_module("bluetooth")


def use_radio(radio):
    """From now on `bluetooth.BLE()` with no argument (as board.py calls it) binds to
    `radio`, a simulator.ble.peripheral.Peripheral; None restores the default (the bridge)."""
    bluetooth = bluetooth_module()
    bluetooth._radio_factory = None if radio is None else (lambda: radio)

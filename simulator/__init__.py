"""Desktop stand-ins for the AlgoDose hardware, and the virtual bedside unit."""

import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
FIRMWARE_DIR = REPO_DIR / "firmware"
QST_REFERENCE = FIRMWARE_DIR / "data" / "qst_reference.json"  # board.QST_REFERENCE on a board
CPYTHON_SHIMS_DIR = PACKAGE_DIR / "shims" / "cpython"
HARNESS_DIR = PACKAGE_DIR / "harness"
# Simulated hardware that must run on both runtimes (pin-level HX711, flash block device):
# importable as top-level modules on CPython and on micropython alike.
FAKES_DIR = PACKAGE_DIR / "fakes"
CASES_DIR = PACKAGE_DIR / "cases"


def use_firmware():
    """Make `import core...` resolve to firmware/ on CPython, with the MicroPython shims."""
    for path in (str(FAKES_DIR), str(CPYTHON_SHIMS_DIR), str(FIRMWARE_DIR)):
        if path not in sys.path:
            sys.path.insert(0, path)

# The virtual unit's board for the USB serial pull's tests: what firmware/usb.py asks of a
# board module (STORE_ROOT, mount_storage, device_id, clock), for the micropython unix port
# behind a pty (simulator/pty_unit.py). The tests copy it to the unit's flash as board.py,
# where a board keeps its firmware (first on the module path). The unit's flash is already
# mounted at "/" by pty_boot.py, and its serial number is the file /device-id.
import time

STORE_ROOT = "/store"
clock = time  # ticks_ms, as on the board


def mount_storage():
    pass  # the unit's whole flash is its filesystem here: nothing more to mount


def device_id():
    with open("/device-id") as f:
        return f.read().strip()

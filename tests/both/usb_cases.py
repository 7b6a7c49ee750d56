# firmware/usb.py on both runtimes: the unit's side of the USB serial pull against the real
# store (LittleFS on micropython, a temporary directory on CPython), returning what it
# answers and prints. The host's reading of the lines is tested in tests/test_usb_pull.py.
import os

import usb
from rig import storage_root

from core import record
from core.store import Store

DEVICE_ID = "A0B1C2D3E4F5"


class Board:
    """What usb.start() asks of a board, the storage counted."""

    def __init__(self, root):
        self.STORE_ROOT = root
        self.mounts = 0
        self.clock = self

    def mount_storage(self):
        self.mounts += 1

    def device_id(self):
        return DEVICE_ID

    def ticks_ms(self):
        return 5000


class Watchdog:
    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


def _board():
    root, _flash = storage_root("usb")
    try:
        os.mkdir(root)
    except OSError:
        pass
    return Board(root)


def _fill(board, trials):
    """The unit's store as the app left it: a boot event and `trials` trials, flushed."""
    st = Store(board.STORE_ROOT + usb.STORE_DIR)
    st.open(0)
    for i in range(trials):
        fields = ("upper_trapezius", "R", i % 7 + 1, "stop", 0, 2500 + i, 2600, 480, 5000)
        st.append(record.TYPE_TRIAL, 100 + i, None, fields)
    st.flush()
    return st


def _report(from_seq):
    lines = []
    code = usb.report(from_seq, lines.append)
    return {"code": code, "lines": lines}


def safe_boot():
    """The app did not run: start() mounts the storage and opens the store itself."""
    usb.attach(None)
    board = _board()
    _fill(board, 40).close()
    info = usb.start(board)
    out = {
        "info": info,
        "mounts": board.mounts,
        "count_1": usb.count(1),
        "count_41": usb.count(41),
        "count_0": usb.count(0),
        "report_1": _report(1),
        "report_past_end": _report(1000),
        "ack_beyond": usb.ack(1000),
        "ack_41": usb.ack(41),
        "ack_again": usb.ack(20),
        "count_after_ack": usb.count(1),
    }
    usb.start(board)  # a second pull in the same session: the same store, opened again
    out["mounts_after_second_start"] = board.mounts
    usb.attach(None)  # closes the store start() opened: a new Store may open the directory
    st = Store(board.STORE_ROOT + usb.STORE_DIR)
    st.open(0)
    out["acked_on_flash"] = st.acked_seq
    st.close()
    return out


def app_running():
    """The app attached its open store (a record still in its RAM batch) and its watchdog,
    then was interrupted: start() opens that store again, writing the batch."""
    usb.attach(None)
    board = _board()
    st = _fill(board, 3)
    fields = ("upper_trapezius", "L", 1, "stop", 0, 3100, 3200, 500, 6000)
    unflushed = st.append(record.TYPE_TRIAL, 900, None, fields)
    watchdog = Watchdog()
    usb.attach(st, watchdog)
    info = usb.start(board)
    out = {
        "info": info,
        "mounts": board.mounts,
        "unflushed": unflushed,
        "stored_seq": st.stored_seq,
        "report": _report(1),
        "ack": usb.ack(unflushed),
        "acked": st.acked_seq,
        "feeds": watchdog.feeds,
    }
    usb.attach(None)  # the app's store stays open: it is the app's to close
    out["still_open"] = st.count() == 5
    st.close()
    return out

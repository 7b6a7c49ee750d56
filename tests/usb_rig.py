"""Test helper for the USB serial pull: a virtual unit on a pty (simulator/pty_unit.py) with
the firmware on its module path, a board module for it (tests/device/pty_board.py, copied to
its flash as board.py), a serial number, and a record store on its flash written by the real
store, as the unit's app leaves it; and the laptop's command in its own process."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from core import record
from core.store import Store
from simulator import FIRMWARE_DIR
from simulator.pty_unit import PtyUnit
from simulator.runtime import precompiled_dir

DEVICE_DIR = Path(__file__).resolve().parent / "device"
DEVICE_ID = "A0B1C2D3E4F5"
STORE_PATH = ("store", "log")  # pty_board.STORE_ROOT + usb.STORE_DIR, on the unit's flash
# One record of each type, as the firmware's producers name their fields.
SAMPLE_FIELDS = (
    (record.TYPE_TRIAL, ("infraspinatus", "L", 2, "stop", 5, 3125, 3300, 498, 6240)),
    (record.TYPE_CURVE, (12, 0, 100, [0, 50, 101, 65535] * 20)),
    (
        record.TYPE_SITE,
        ("infraspinatus", "R", "local", 3, 2, 1, None, 3050, 87, None, 163, "high"),
    ),
    (record.TYPE_EVENT, (record.EV_TIME_SET, 0, 0, 1796083200)),
    (record.TYPE_RESPONSE, ("flare", 40)),
)


def usb_unit(unit_dir, device_id=DEVICE_ID, records=0, flush_every=50):
    """A PtyUnit (not started) whose flash holds board.py, its serial and a store of
    `records` records (and the store's boot event)."""
    unit = PtyUnit(unit_dir, extra_path=[precompiled_dir(FIRMWARE_DIR)])
    give_board(unit, device_id)
    add_records(unit, records, flush_every)
    return unit


def give_board(unit, device_id=DEVICE_ID):
    """The test board as /board.py on the unit's flash (first on its module path, before a
    deployed board.mpy, whose machine.unique_id() the unix port lacks) and its serial."""
    shutil.copyfile(DEVICE_DIR / "pty_board.py", unit.flash_dir / "board.py")
    (unit.flash_dir / "device-id").write_text(device_id + "\n")


def store_on(unit):
    """The unit's store, opened on this computer (the unit must be stopped: one Store per
    directory). Opening counts a boot of the store, as the unit's own start-up does."""
    unit.flash_dir.joinpath(STORE_PATH[0]).mkdir(exist_ok=True)
    st = Store(str(unit.flash_dir.joinpath(*STORE_PATH)))
    st.open(0)
    return st


def add_records(unit, n, flush_every=50):
    """n records of every type in turn on the stopped unit's flash; returns the last seq."""
    st = store_on(unit)
    try:
        for i in range(n):
            rtype, fields = SAMPLE_FIELDS[i % len(SAMPLE_FIELDS)]
            st.append(rtype, 1000 + i, 1796083200 + i, fields)
            if i % flush_every == flush_every - 1:
                st.flush()
        return st.flush()
    finally:
        st.close()


def stored(unit):
    """(every record on the stopped unit's flash as {seq: raw bytes}, its acked seq), but
    the boot event that opening it here stores."""
    st = store_on(unit)
    try:
        mine = st.stored_seq
        return {seq: bytes(view) for seq, view in st.records() if seq != mine}, st.acked_seq
    finally:
        st.close()


def held(db, device_id=DEVICE_ID):
    return {seq: raw for _device, seq, raw in db.raw_records(device_id)}


def cli(*args, timeout_s=120):
    """`python -m host_sync ARGS` in its own process, as a clinician runs it."""
    return subprocess.run(
        [sys.executable, "-m", "host_sync", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=dict(os.environ, ALGODOSE_DB=""),
    )

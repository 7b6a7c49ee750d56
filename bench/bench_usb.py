"""The USB serial pull's speed on the virtual unit (docs/protocol.md, "Over USB"): the
micropython unix port behind socat on a pty with the firmware on its path, a store of 20 000
records (trials, curves, site summaries, events, responses in turn: tests/usb_rig.py) written
by the real store on its flash, pulled by
host_sync.pull over host_sync.usb.UsbTransport into a fresh SQLite file: the whole pull
(connect, count, report, commit, acknowledge). A pty moves bytes far faster than a board's
USB port (12 Mbit/s full speed), so this is the software's own cost, not a board's; no
budget.
"""

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))

from run import not_run  # noqa: E402  (bench/run.py, on the path just above)

from simulator import use_firmware  # noqa: E402

use_firmware()

RECORDS = 20000


def pull_time():
    """(seconds, records pulled, bytes of them), or None without socat."""
    import usb_rig

    from host_sync.db import Database
    from host_sync.pull import pull
    from host_sync.usb import UsbTransport

    if shutil.which("socat") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="algodose-bench-") as tmp:
        unit = usb_rig.usb_unit(Path(tmp) / "unit", records=RECORDS, flush_every=500)
        db = Database(str(Path(tmp) / "laptop.db"))

        async def run():
            link = await UsbTransport(unit.port).connect()
            try:
                return await pull(link, db)
            finally:
                await link.close()

        with unit:
            start = time.perf_counter()
            result = asyncio.run(run())
            seconds = time.perf_counter() - start
        size = sum(len(raw) for _d, _s, raw in db.raw_records())
    return seconds, result.received, size


def rows():
    what = "USB pull of %d records from the virtual unit on a pty, into SQLite" % RECORDS
    measured = pull_time()
    if measured is None:
        return [not_run(what, "socat is not installed: apt-get install socat")]
    seconds, received, size = measured
    return [
        {
            "what": what,
            "measured": round(received / seconds),
            "unit": "records/s",
            "budget": "-",
            "baseline": "%d records (%d KB) in %.2f s" % (received, size // 1024, seconds),
            "ok": None,
        }
    ]


if __name__ == "__main__":
    for row in rows():
        print(row)

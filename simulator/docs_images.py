"""The clinician guide's pictures (docs/images/), made again by `make docs-images`.

Screens: the firmware's own screen functions (core.ui) drawn on a frame buffer and turned
into PNGs with the OLED's look (simulator.display), fed with what a real visit on the
simulated unit produced (simulator.clinic: its site results and recommendation). Charts: the
report of that clinic's patient P-0042 (host_sync.report), from a database made by running
the clinic's visits. Look at the pictures (git diff shows which changed) before committing.
"""

import datetime
import os
import shutil
import sys
import tempfile
from pathlib import Path

from simulator import REPO_DIR, clinic, display

IMAGES_DIR = REPO_DIR / "docs" / "images"


def _frame():
    import framebuf

    buf = bytearray(display.BUFFER_BYTES)
    return buf, framebuf.FrameBuffer(buf, display.WIDTH, display.HEIGHT, framebuf.MONO_VLSB)


def screens():
    """[(file name, frame buffer bytes)] of the guide's screens."""
    from rig import VisitRig

    from core import ppt, ui

    rig = VisitRig(noise_counts=40, seed=11)
    clinic.set_clock(rig, clinic.START_S - 60)
    seen = {}
    recommendation, given, _update = clinic.run_visit(rig, clinic.FIRST, clinic.VISIT_1, seen=seen)
    rig.store.close()
    local = seen["sites"][0]
    shown = [
        ("screen_home.png", "home", (), {"patient": "P-0042", "site": "upper_trapezius",
                                         "records_unsynced": 26, "storage_used_pct": 3,
                                         "battery_pct": 80, "clock_set": True}),
        ("screen_pairing.png", "pairing", (482913,), {"seconds_left": 95}),
        ("screen_measurement.png", "measurement",
         (1853, "ramp", ppt.CUE_ON_TARGET, 2, 3, "upper_trapezius", "R"), {}),
        ("screen_site_result.png", "site_result", (local, seen["comparison"]), {}),
        ("screen_recommendation.png", "recommendation", (recommendation,), {}),
        ("screen_dose_given.png", "dose_given", (given, recommendation), {}),
        ("screen_response.png", "response", (1, given), {}),
        ("screen_sync.png", "sync", (48, 74), {}),
    ]  # fmt: skip
    out = []
    for name, function, args, kwargs in shown:
        buf, frame = _frame()
        getattr(ui, function)(frame, *args, **kwargs)
        out.append((name, bytes(buf)))
    return out


def report_charts(directory):
    """The report of P-0042 from the clinic's database, written into directory."""
    from host_sync import report, visits
    from host_sync.db import Database

    db = Database(os.path.join(directory, "algodose.db"))
    clinic.build(db)
    data = visits.load(db, patient="P-0042")
    return report.build(data, "P-0042", directory, tz=datetime.UTC, now_s=clinic.START_S)


def main(out_dir=IMAGES_DIR):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, buf in screens():
        written.append(display.save_png(buf, out_dir / name))
    with tempfile.TemporaryDirectory() as work:
        for path in report_charts(work):
            if path.endswith(".png"):
                target = out_dir / ("report_" + os.path.basename(path))
                shutil.copyfile(path, target)
                written.append(target)
    for path in written:
        print(path.relative_to(REPO_DIR) if path.is_relative_to(REPO_DIR) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))

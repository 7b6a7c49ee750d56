"""Every screen draws the same bytes and the same text on CPython (the framebuf shim) and on
the `micropython` interpreter (its own framebuf): the same firmware code, one picture."""

import json
import random

from screenlib import EXAMPLES, random_requests

from simulator.runtime import run_harness

HEAPSIZE = "256K"  # core.ui loaded from .mpy takes ~28 KB of the 64-bit port's heap
RANDOM_REQUESTS = 150
SCREENS = {
    "home",
    "patient_select",
    "code_entry",
    "factors",
    "contraindications",
    "measurement",
    "site_result",
    "recommendation",
    "dose_given",
    "response",
    "aftercare",
    "pairing",
    "sync",
    "error",
    "notice",
    "settings",
    "calibration",
    "menu",
    "site_plan",
}


def test_every_screen_is_byte_identical_on_both_runtimes():
    requests = [{"screen": f, "args": a, "kwargs": k} for _n, f, a, k in EXAMPLES]
    requests += random_requests(random.Random(11), RANDOM_REQUESTS)
    stdin = "".join(json.dumps(r) + "\n" for r in requests)
    out = {}
    for runtime in ("cpython", "micropython"):
        code, stdout, stderr = run_harness("screens", stdin, runtime=runtime, heapsize=HEAPSIZE)
        assert code == 0, stderr[-2000:]
        out[runtime] = stdout.splitlines()
    assert len(out["cpython"]) == len(out["micropython"]) == len(requests)
    for i, (a, b) in enumerate(zip(out["cpython"], out["micropython"], strict=True)):
        assert a == b, "request %d differs: %s" % (i, json.dumps(requests[i])[:300])
    drawn = [line.split(" ", 1) for line in out["cpython"]]
    assert all(any(c != "0" for c in hexed) for hexed, _view in drawn)  # every one drew
    assert not [json.loads(view)["rows"] for _h, view in drawn if json.loads(view)["overflow"]]
    assert {r["screen"] for r in requests} == SCREENS

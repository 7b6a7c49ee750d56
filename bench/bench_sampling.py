"""Per-sample pipeline on the MicroPython unix port: heap allocated and time per HX711 sample,
read by read() at each data-ready and by poll() as an asyncio sampling task polls."""

import importlib.util
import json
import time
from pathlib import Path

from simulator import use_firmware
from simulator.runtime import run_micropython

BENCH_DIR = Path(__file__).resolve().parent
PERIOD_US = 12500  # 80 SPS
BUDGET_US = PERIOD_US // 100  # 1 % of the sample period
BUDGET_BYTES = 0


def cpython_us_per_sample():
    use_firmware()
    spec = importlib.util.spec_from_file_location("sampling", BENCH_DIR / "mp" / "sampling.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rig = module.build()
    module.run(rig, module.WARMUP)
    start = time.perf_counter()
    module.run(rig, module.SAMPLES)
    return (time.perf_counter() - start) * 1e6 / module.SAMPLES


def rows():
    proc = run_micropython(script=BENCH_DIR / "mp" / "sampling.py", heapsize="256K")
    if proc.returncode != 0:
        raise RuntimeError("sampling bench failed on micropython: " + proc.stdout + proc.stderr)
    mp = json.loads(proc.stdout)
    if mp["state"] != 1 or mp["cued"] < 5000:
        raise RuntimeError("sampling bench: the trial was not ramping throughout: %r" % mp)
    if mp["poll_faults"] or abs(mp["poll_readings"] - 10000) > 1:
        raise RuntimeError("sampling bench: poll() missed conversions: %r" % mp)
    polls_per_sample = mp["polls"] / mp["poll_readings"]
    return [
        {
            "what": "heap per HX711 sample by read(), steady state (unix port, 10 000 samples)",
            "measured": mp["bytes"] / 10000,
            "unit": "B",
            "budget": "%d B" % BUDGET_BYTES,
            "baseline": "float pipeline %.0f B" % mp["naive_float_bytes_per_sample"],
            "ok": mp["bytes"] <= BUDGET_BYTES,
        },
        {
            "what": "heap per poll() by a polling task (%d polls, every 0.5 ms)" % mp["polls"],
            "measured": mp["poll_bytes"] / mp["polls"],
            "unit": "B",
            "budget": "%d B" % BUDGET_BYTES,
            "baseline": "read() above",
            "ok": mp["poll_bytes"] <= BUDGET_BYTES,
        },
        {
            "what": "per-sample pipeline time by read() (unix port, incl. the simulated chip)",
            "measured": mp["us_per_sample"],
            "unit": "us",
            "budget": "<= %d us (1 %% of 12.5 ms)" % BUDGET_US,
            "baseline": "CPython %.1f us" % cpython_us_per_sample(),
            "ok": mp["us_per_sample"] <= BUDGET_US,
        },
        {
            "what": "per-sample time by poll(), %.0f polls a sample (unix port, incl. the chip)"
            % polls_per_sample,
            "measured": mp["poll_us_per_sample"],
            "unit": "us",
            "budget": "<= %d us (1 %% of 12.5 ms)" % BUDGET_US,
            "baseline": "read() %.1f us" % mp["us_per_sample"],
            "ok": mp["poll_us_per_sample"] <= BUDGET_US,
        },
        {
            "what": "  of which scale + trial engine (no chip, no driver)",
            "measured": mp["logic_us_per_sample"],
            "unit": "us",
            "budget": "-",
            "baseline": "-",
            "ok": None,
        },
    ]

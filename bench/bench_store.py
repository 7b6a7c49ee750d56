"""Reading store on LittleFS (micropython unix port, simulated 1 MB partition of 4 KB
blocks): record size, flash wear per trial for three flush policies, capacity, heap."""

import json
from pathlib import Path

from simulator.runtime import run_micropython

BENCH_DIR = Path(__file__).resolve().parent
BUDGET_TRIAL_BYTES = 32
BUDGET_ERASES = 0.1


def rows():
    proc = run_micropython(script=BENCH_DIR / "mp" / "store_eval.py", heapsize="8M", timeout_s=600)
    if proc.returncode != 0:
        raise RuntimeError("store bench failed on micropython: " + proc.stderr.strip()[-2000:])
    mp = json.loads(proc.stdout.strip().splitlines()[-1])
    per_record = "%.2f with a flush per record" % mp["erases_record"]
    return [
        {
            "what": "trial record on flash (clock valid)",
            "measured": mp["trial_bytes"],
            "unit": "B",
            "budget": "<= %d B" % BUDGET_TRIAL_BYTES,
            "baseline": "%d B without a valid clock" % mp["trial_bytes_no_clock"],
            "ok": mp["trial_bytes"] <= BUDGET_TRIAL_BYTES,
        },
        {
            "what": "flash erases per stored trial, 6-site session, flush at session end",
            "measured": mp["erases_session"],
            "unit": "",
            "budget": "<= %g" % BUDGET_ERASES,
            "baseline": per_record,
            "ok": mp["erases_session"] <= BUDGET_ERASES,
        },
        {
            "what": "flash erases per stored trial, same session, flush at every trial end",
            "measured": mp["erases_trial"],
            "unit": "",
            "budget": "-",
            "baseline": per_record,
            "ok": None,
        },
        {
            "what": "trials that fit in a 1 MB partition (6-site sessions)",
            "measured": mp["trials_fit"],
            "unit": "trials",
            "budget": "-",
            "baseline": "%d records, %d KB of log" % (mp["records_fit"], mp["log_bytes"] // 1024),
            "ok": None,
        },
        {
            "what": "heap allocated per append (unix port)",
            "measured": mp["heap_append_worst"],
            "unit": "B",
            "budget": "-",
            "baseline": "%d B without a valid clock" % mp["heap_append_no_clock"],
            "ok": None,
        },
        {
            "what": "store mount with a full 1 MB log (unix port)",
            "measured": mp["mount_full_ms"],
            "unit": "ms",
            "budget": "-",
            "baseline": "-",
            "ok": None,
        },
    ]

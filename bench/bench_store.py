"""Reading store on LittleFS (micropython unix port, simulated 1 MB partition of 4 KB
blocks): record size, flash wear per trial with a flush at every trial end (and with other
flush policies), capacity, heap, mount time, read_into throughput."""

import json
from pathlib import Path

from simulator.runtime import run_micropython

BENCH_DIR = Path(__file__).resolve().parent
BUDGET_TRIAL_BYTES = 32
BUDGET_ERASES = 0.1
BUDGET_PAYLOAD_USE = 0.90  # of MTU 247 - 3


def rows():
    proc = run_micropython(
        script=BENCH_DIR / "mp" / "store_eval.py", heapsize="16M", timeout_s=1800
    )
    if proc.returncode != 0:
        raise RuntimeError("store bench failed on micropython: " + proc.stderr.strip()[-2000:])
    mp = json.loads(proc.stdout.strip().splitlines()[-1])
    old = "%.2f appending each flush to a segment (journal off)" % mp["erases_trial_segments"]
    one, two = mp["read"]["1"], mp["read"]["2"]
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
            "what": "flash erases per stored trial, flush at every trial end (20 sessions)",
            "measured": mp["erases_trial"],
            "unit": "",
            "budget": "<= %g" % BUDGET_ERASES,
            "baseline": old,
            "ok": mp["erases_trial"] <= BUDGET_ERASES,
        },
        {
            "what": "same, over a whole 1 MB partition filled",
            "measured": mp["erases_fill"],
            "unit": "",
            "budget": "<= %g" % BUDGET_ERASES,
            "baseline": "-",
            "ok": mp["erases_fill"] <= BUDGET_ERASES,
        },
        {
            "what": "same, full partition, host syncs each session (reclaim at work)",
            "measured": mp["erases_steady"],
            "unit": "",
            "budget": "<= %g" % BUDGET_ERASES,
            "baseline": "-",
            "ok": mp["erases_steady"] <= BUDGET_ERASES,
        },
        {
            "what": "flash erases per stored trial, flush at session end only",
            "measured": mp["erases_session"],
            "unit": "",
            "budget": "-",
            "baseline": "%.3f with a flush after every record" % mp["erases_record"],
            "ok": None,
        },
        {
            "what": "trials that fit in a 1 MB partition (6-site sessions, flush per trial)",
            "measured": mp["trials_fit"],
            "unit": "trials",
            "budget": "-",
            "baseline": "%d records, %d KB of log" % (mp["records_fit"], mp["log_bytes"] // 1024),
            "ok": None,
        },
        {
            "what": "read_into throughput, 244-byte buffers, one reader (unix port)",
            "measured": one["kb_s"],
            "unit": "KB/s",
            "budget": "-",
            "baseline": "%d us per buffer; %d KB/s with two readers interleaved"
            % (one["us_per_chunk"], two["kb_s"]),
            "ok": None,
        },
        {
            "what": "notification payload use at MTU 247 (read_into packing)",
            "measured": round(100 * one["fill"], 1),
            "unit": "%",
            "budget": ">= %d %%" % (100 * BUDGET_PAYLOAD_USE),
            "baseline": "%d buffers for the full log" % one["chunks"],
            "ok": one["fill"] >= BUDGET_PAYLOAD_USE,
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

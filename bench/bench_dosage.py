"""Dosage evaluation on the MicroPython unix port: time and heap per evaluation."""

import json
import time
from pathlib import Path

from simulator import CASES_DIR, use_firmware
from simulator.runtime import run_micropython

BENCH_DIR = Path(__file__).resolve().parent
BUDGET_US = 1000
BUDGET_BYTES = 4096
# Ruleset r1 (2026.11) on the same unix port, for comparison: 30.2 us, 2048 B worst, and
# 14528 B of heap held by the imported module. r2's table written as tuples of (op, dim,
# value) tuples held 25696 B; as one small int per effect, what this row measures.


def bench_cases():
    """Every bundled demo visit, plus a case that fires most of the table."""
    cases = []
    for path in sorted(CASES_DIR.glob("*.json")):
        cases.extend(visit["case"] for visit in json.loads(path.read_text())["visits"])
    cases.append(
        {
            "age": 70,
            "conditions": ["diabetes", "fibromyalgia", "crohns"],
            "acute_injury": True,
            "recent_illness": True,
            "high_stress": True,
            "recent_exercise": True,
            "chronic": True,
            "region": "thorax",
            "contraindications": ["needle_phobia", "pregnancy_first_trimester"],
            "override": ["needle_phobia"],
            "qst": {"z": 2.5},
            "history": {
                "sessions": 3,
                "last_response": "flare",
                "last": {
                    "gauge_mm": 0.25,
                    "needles": 8,
                    "depth": "deep",
                    "manipulation": "tenting",
                },
            },
        }
    )
    return cases


def cpython_us_per_eval(cases, rounds=200):
    use_firmware()
    from core import case, dosage

    parsed = [case.parse_case(c) for c in cases]
    start = time.perf_counter()
    for _ in range(rounds):
        for item in parsed:
            dosage.recommend(item)
    return (time.perf_counter() - start) * 1e6 / (rounds * len(parsed))


def rows():
    cases = bench_cases()
    stdin = "".join(json.dumps(c) + "\n" for c in cases)
    proc = run_micropython(script=BENCH_DIR / "mp" / "dosage_eval.py", stdin=stdin)
    if proc.returncode != 0:
        raise RuntimeError("dosage bench failed on micropython: " + proc.stderr.strip())
    mp = json.loads(proc.stdout)
    cpython_us = cpython_us_per_eval(cases)
    return [
        {
            "what": "dosage evaluation time (unix port, %d cases)" % len(cases),
            "measured": mp["us_per_eval"],
            "unit": "us",
            "budget": "<= %d us" % BUDGET_US,
            "baseline": "CPython %.1f us; r1 30.2 us" % cpython_us,
            "ok": mp["us_per_eval"] <= BUDGET_US,
        },
        {
            "what": "heap allocated per dosage evaluation (worst case)",
            "measured": mp["bytes_worst"],
            "unit": "B",
            "budget": "<= %d B" % BUDGET_BYTES,
            "baseline": "mean %d B; r1 2048 B worst" % mp["bytes_mean"],
            "ok": mp["bytes_worst"] <= BUDGET_BYTES,
        },
        {
            "what": "heap held by core.dosage once imported (.mpy, 64-bit)",
            "measured": mp["import_bytes"],
            "unit": "B",
            "budget": "-",
            "baseline": "r1 14528 B; effects as tuples 25696 B",
            "ok": None,
        },
    ]

"""Power cut at every flash program/erase, clean and torn, and again during the recovery,
on micropython with the real LittleFS (tests/mp/powerloss.py does the work and says what
is checked). `make test` runs a bounded sweep; `make powerloss` (ALGODOSE_POWERLOSS=full)
cuts at every operation of every workload and of every recovery."""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from simulator.runtime import run_micropython

SCRIPT = Path(__file__).resolve().parent / "mp" / "powerloss.py"
WORKLOADS = ("sessions", "ack", "rotation", "full", "board")
MODE = os.environ.get("ALGODOSE_POWERLOSS", "bounded")
MIN_CUTS = 1000
SUMMARY = re.compile(
    r"^workload=(\w+) ops=(\d+) records=(\d+) cuts=(\d+) second=(\d+) failures=(\d+) ms=(\d+)$",
    re.M,
)


def sweep(name):
    timeout_s = 300 if MODE == "bounded" else 6 * 3600
    proc = run_micropython(script=SCRIPT, args=[name, MODE], heapsize="16M", timeout_s=timeout_s)
    return name, proc


def test_power_loss_sweeps(capsys):
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(sweep, WORKLOADS))
    total_cuts = total_second = total_failures = 0
    report = []
    for name, proc in results:
        found = SUMMARY.search(proc.stdout)
        assert proc.returncode == 0 and found, name + ": " + proc.stderr[-2000:]
        _, ops, records, cuts, second, failures, ms = found.groups()
        fails = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
        report.append(
            "power-loss %s %s: %s ops, %s records, %s cut points, %s second cuts, "
            "%s failures, %.1f s" % (MODE, name, ops, records, cuts, second, failures,
                                     int(ms) / 1000)
        )  # fmt: skip
        report.extend(fails)
        total_cuts += int(cuts)
        total_second += int(second)
        total_failures += int(failures)
        assert int(cuts) > 0
    report.append(
        "power-loss %s total: %d cut points + %d second cuts, %d failures"
        % (MODE, total_cuts, total_second, total_failures)
    )
    with capsys.disabled():
        print("\n" + "\n".join(report))
    assert total_failures == 0, "\n".join(report)
    assert total_cuts >= MIN_CUTS

"""The store's sweeps on micropython with the real LittleFS, over the workloads of
tests/mp/workloads.py:
- power cut at every flash program/erase, clean and torn, and again during the recovery
  (tests/mp/powerloss.py says what is checked);
- a transient device error at every block device call, raised and returned, with the
  documented recovery, a forced GC and a reboot (tests/mp/transient.py).
`make test` runs bounded sweeps; `make powerloss` (ALGODOSE_POWERLOSS=full) every cut point
and every device call."""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from simulator import FAKES_DIR, FIRMWARE_DIR
from simulator.runtime import precompiled_dir, run_micropython

MP_DIR = Path(__file__).resolve().parent / "mp"
WORKLOADS = ("sessions", "ack", "rotation", "full", "board", "wrap")
MODE = os.environ.get("ALGODOSE_POWERLOSS", "bounded")
TIMEOUT_S = 600 if MODE == "bounded" else 6 * 3600
MIN_CUTS = 1000
MIN_FAULTS = 900
POWER = re.compile(
    r"^workload=(\w+) ops=(\d+) records=(\d+) cuts=(\d+) second=(\d+) failures=(\d+) ms=(\d+)$",
    re.M,
)
TRANSIENT = re.compile(
    r"^workload=(\w+) mode=(\w+) calls=(\d+) stride=(\d+) runs=(\d+) faults=(\d+) "
    r"recoveries=(\d+) failures=(\d+) ms=(\d+)$",
    re.M,
)


def run_all(script, arg_lists, summary):
    """Runs tests/mp/<script> once per argument list, in parallel; returns, per run, the
    fields of its summary line and its FAIL lines."""
    for source in (FIRMWARE_DIR, FAKES_DIR):
        precompiled_dir(source)  # once, before the parallel runs use it

    def one(args):
        proc = run_micropython(
            script=MP_DIR / script, args=args, heapsize="16M", timeout_s=TIMEOUT_S
        )
        found = summary.search(proc.stdout)
        assert proc.returncode == 0 and found, " ".join(args) + ": " + proc.stderr[-2000:]
        fails = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
        return found.groups(), fails

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(pool.map(one, arg_lists))


def sampled(stride):
    return "every call" if stride == "1" else "one call in " + stride


def finish(report, failures, capsys):
    with capsys.disabled():
        print("\n" + "\n".join(report))
    assert failures == 0, "\n".join(report)


def test_power_loss_sweeps(capsys):
    cuts_total = second_total = failures_total = 0
    report = []
    for fields, fails in run_all("powerloss.py", [[name, MODE] for name in WORKLOADS], POWER):
        name, ops, records, cuts, second, failures, ms = fields
        report.append(
            "power-loss %s %s: %s ops, %s records, %s cut points, %s second cuts, "
            "%s failures, %.1f s" % (MODE, name, ops, records, cuts, second, failures,
                                     int(ms) / 1000)
        )  # fmt: skip
        report.extend(fails)
        assert int(cuts) > 0
        cuts_total += int(cuts)
        second_total += int(second)
        failures_total += int(failures)
    report.append(
        "power-loss %s total: %d cut points + %d second cuts, %d failures"
        % (MODE, cuts_total, second_total, failures_total)
    )
    finish(report, failures_total, capsys)
    assert cuts_total >= MIN_CUTS


def test_transient_error_sweeps(capsys):
    arg_lists = [[name, mode, MODE] for name in WORKLOADS for mode in ("raise", "return")]
    runs_total = faults_total = failures_total = 0
    report = []
    for fields, fails in run_all("transient.py", arg_lists, TRANSIENT):
        name, mode, calls, stride, runs, faults, recoveries, failures, ms = fields
        report.append(
            "transient %s %s %s: %s device calls, a fault at %s: %s runs, %s with a "
            "recovery (%s in all), %s failures, %.1f s"
            % (MODE, name, mode, calls, sampled(stride), runs, faults, recoveries, failures,
               int(ms) / 1000)
        )  # fmt: skip
        report.extend(fails)
        runs_total += int(runs)
        faults_total += int(faults)
        failures_total += int(failures)
    report.append(
        "transient %s total: %d runs, %d recovered from a device error, %d failures"
        % (MODE, runs_total, faults_total, failures_total)
    )
    finish(report, failures_total, capsys)
    assert faults_total >= MIN_FAULTS

"""Run every bench/bench_*.py and print one table: measured value beside budget and baseline.

Each bench module defines rows() -> list of dicts with keys
  what, measured, unit, budget, baseline, ok (True/False, or None when there is no budget).
Exit status 1 if any row is over budget.
"""

import importlib.util
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))


def not_run(what, reason, budget="-"):
    """The row of a bench that cannot run on this machine: says why, fails nothing."""
    return {
        "what": what,
        "measured": "not run",
        "unit": "(%s)" % reason,
        "budget": budget,
        "baseline": "-",
        "ok": None,
    }


def load_rows(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.rows()


def fmt(value):
    if isinstance(value, float):
        return "%.3g" % value if abs(value) < 1000 else "%.0f" % value
    return str(value)


def main(argv):
    only = argv[0] if argv else ""
    table = [("what", "measured", "budget", "baseline", "")]
    failed = False
    for path in sorted(BENCH_DIR.glob("bench_*.py")):
        if only not in path.stem:
            continue
        for row in load_rows(path):
            verdict = {True: "ok", False: "OVER", None: "-"}[row["ok"]]
            failed |= row["ok"] is False
            measured = "%s %s" % (fmt(row["measured"]), row["unit"])
            table.append((row["what"], measured, row["budget"], row["baseline"], verdict))
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for number, row in enumerate(table):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if number == 0:
            print("  ".join("-" * w for w in widths))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""python -m simulator recommend | demo | measure: the virtual bedside unit."""

import argparse
import json
import sys
from pathlib import Path

from simulator import CASES_DIR, FIRMWARE_DIR, use_firmware
from simulator.runtime import MicroPythonMissing, run_harness


def recommend_text(text, runtime):
    """(exit code, output line or error line) from the recommend harness."""
    code, out, err = run_harness("recommend", stdin=text, runtime=runtime)
    if code not in (0, 2):  # the interpreter itself failed: show its last line
        lines = (err or out).strip().splitlines() or ["no output"]
        return 3, "error: %s failed (exit %d): %s" % (runtime, code, lines[-1])
    return code, (out if code == 0 else err).strip()


def cmd_recommend(args):
    code, line = recommend_text(sys.stdin.read(), args.runtime)
    print(line, file=sys.stdout if code == 0 else sys.stderr)
    return code


def _boxes(pages, per_row=4):
    from core.ui import COLUMNS

    edge = "+" + "-" * COLUMNS + "+"
    out = []
    for start in range(0, len(pages), per_row):
        group = pages[start : start + per_row]
        out.append("  ".join([edge] * len(group)))
        for row in range(len(group[0])):
            out.append("  ".join("|" + page[row].ljust(COLUMNS) + "|" for page in group))
        out.append("  ".join([edge] * len(group)))
    return "\n".join(out)


def cmd_demo(args):
    use_firmware()
    from core import ui

    files = sorted(CASES_DIR.glob("*.json"))
    for path in files:
        story = json.loads(path.read_text())
        print("=" * 78)
        print(story["title"])
        print(story["note"])
        last = None
        for number, visit in enumerate(story["visits"]):
            case = dict(visit["case"])
            if last is not None:
                case["history"] = {
                    "sessions": number,
                    "last_response": visit["response"],
                    "last": last,
                }
            code, line = recommend_text(json.dumps(case), args.runtime)
            if code != 0:
                print(line, file=sys.stderr)
                return code
            last = json.loads(line)
            print()
            print("-- %s: %s" % (visit["label"], json.dumps(visit["case"])))
            if "response" in visit:
                print("   response to the last session: %s" % visit["response"])
            print(_boxes(ui.recommendation_pages(last)))
    print("=" * 78)
    print(
        "%d bundled cases on %s; each screen is 16x8 characters of the 128x64 OLED."
        % (len(files), args.runtime)
    )
    return 0


def cmd_measure(args):
    use_firmware()
    from simulator.harness.measure import HEAPSIZE

    path = Path(args.scenario)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _measure_error("scenario file %s not found; try %s" % (path, _EXAMPLE))
    except IsADirectoryError:
        return _measure_error(
            "%s is a directory; give one scenario file, e.g. %s" % (path, _EXAMPLE)
        )
    except (OSError, UnicodeDecodeError) as err:
        return _measure_error("cannot read scenario file %s (%s)" % (path, err))
    reference = str(FIRMWARE_DIR / "data" / "qst_reference.json")
    code, out, err = run_harness(
        "measure",
        stdin=text,
        args=["--reference", reference],
        runtime=args.runtime,
        heapsize=HEAPSIZE,
    )
    if code == 0:
        sys.stdout.write(out)
        return 0
    if code == 2:
        sys.stderr.write(err)
        return 2
    lines = (err or out).strip().splitlines() or ["no output"]  # the interpreter itself failed
    print("error: %s failed (exit %d): %s" % (args.runtime, code, lines[-1]), file=sys.stderr)
    return 3


_EXAMPLE = "simulator/scenarios/1_sensitised.json"


def _measure_error(text):
    print("error: " + text, file=sys.stderr)
    return 2


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("recommend", "one case as JSON on stdin -> the recommendation as JSON on stdout"),
        ("demo", "run the bundled cases and show the bedside screens"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--runtime", choices=("cpython", "micropython"), default="cpython")
    p = sub.add_parser(
        "measure", help="run a measurement scenario -> per-trial and per-site results as JSON"
    )
    p.add_argument("--scenario", required=True, metavar="FILE", help="e.g. " + _EXAMPLE)
    p.add_argument("--runtime", choices=("cpython", "micropython"), default="cpython")
    args = parser.parse_args(argv)
    commands = {"recommend": cmd_recommend, "demo": cmd_demo, "measure": cmd_measure}
    try:
        return commands[args.command](args)
    except MicroPythonMissing as err:
        print("error: %s" % err, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""python -m simulator demo | recommend | measure: the virtual bedside unit."""

import argparse
import json
import sys
from pathlib import Path

from simulator import CASES_DIR, PACKAGE_DIR, use_firmware
from simulator.runtime import DEFAULT_HEAPSIZE, MicroPythonMissing, run_harness

SCENARIOS_DIR = PACKAGE_DIR / "scenarios"
_EXAMPLE = "simulator/scenarios/1_sensitised.json"
_GIVEN = ("gauge_mm", "needles", "depth", "manipulation", "adjuncts")  # a case's history.last


def harness_text(name, stdin, runtime, args=(), heapsize=DEFAULT_HEAPSIZE):
    """(exit code, output) of a harness: 0 and its stdout, 2 and the user's one-line error,
    or 3 and a line saying the interpreter itself failed."""
    code, out, err = run_harness(name, stdin=stdin, args=args, runtime=runtime, heapsize=heapsize)
    if code == 0:
        return 0, out
    if code == 2:
        return 2, err.strip()
    lines = (err or out).strip().splitlines() or ["no output"]
    return 3, "error: %s failed (exit %d): %s" % (runtime, code, lines[-1])


def recommend_text(text, runtime):
    code, out = harness_text("recommend", text, runtime)
    return code, out.strip()


def measure_text(text, runtime):
    """(exit code, output) of one scenario: validated here, on CPython, then run on the
    chosen runtime through core.visit."""
    use_firmware()
    from core import canonjson
    from simulator import scenario
    from simulator.harness.measure import HEAPSIZE

    try:
        plan = scenario.load(text)
    except scenario.ScenarioError as err:
        return 2, "error: %s" % err
    return harness_text("measure", canonjson.dumps(plan), runtime, heapsize=HEAPSIZE)


def _emit(code, out):
    if code == 0:
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    else:
        print(out, file=sys.stderr)
    return code


def cmd_recommend(args):
    use_firmware()  # the harness module imports the firmware
    from simulator.harness.recommend import MAX_BYTES

    # Bytes as given, capped: the harness says what is wrong (not UTF-8, too long) on
    # either runtime.
    return _emit(*recommend_text(sys.stdin.buffer.read(MAX_BYTES + 1), args.runtime))


def cmd_measure(args):
    path = Path(args.scenario)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return _emit(2, "error: scenario file %s not found; try %s" % (path, _EXAMPLE))
    except IsADirectoryError:
        return _emit(2, "error: %s is a directory; give one scenario file, e.g. %s" % (
            path, _EXAMPLE))  # fmt: skip
    except (OSError, UnicodeDecodeError) as err:
        return _emit(2, "error: cannot read scenario file %s (%s)" % (path, err))
    return _emit(*measure_text(text, args.runtime))


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


def _kpa(kpa_x10):
    return "-" if kpa_x10 is None else "%d.%d" % divmod(kpa_x10, 10)


def _measurement_lines(result):
    lines = ["   %-19s %-23s %7s %5s %6s  %s" % ("site", "trials kPa (QC)", "PPT", "CV%",
                                               "z", "QST")]  # fmt: skip
    for site in result["sites"]:
        trials = " ".join(
            _kpa(t["ppt_kpa_x10"]) + ("" if t["valid"] else "(" + ",".join(t["qc"]) + ")")
            for t in site["trials"]
        )
        qst = site["qst"] or {}
        z = "-" if qst.get("z") is None else "%+.2f" % qst["z"]
        verdict = qst.get("category") or site["reason"] or qst.get("reason") or "-"
        if qst.get("abnormal"):
            verdict += " (abnormal)"
        cv = "-" if site["cv_pct_x10"] is None else _kpa(site["cv_pct_x10"])
        name = "%s %s" % (site["site"], site["side"] or "")
        lines.append("   %-19s %-23s %7s %5s %6s  %s" % (name, trials, _kpa(site["ppt_kpa_x10"]),
                                                      cv, z, verdict))  # fmt: skip
    summary = result["summary"]
    for pair in summary["side_to_side"]:
        flag = "over 35 %: flagged" if pair["flag"] else "within 35 %"
        lines.append("   side to side, %s: %s %% (%s)" % (pair["site"], _kpa(pair["diff_pct_x10"]),
                                                        flag))  # fmt: skip
    remote = summary["local_to_remote"]
    if remote:
        lines.append("   widespread sensitisation: %s" % ("yes" if remote["widespread"] else "no"))
    return lines


def cmd_demo(args):
    """The main job: measure the patient, score the thresholds, recommend, show the screen."""
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
            print()
            if "measure" in visit:
                scenario = SCENARIOS_DIR / visit["measure"]
                code, out = measure_text(scenario.read_text(), args.runtime)
                if code != 0:
                    return _emit(code, out)
                result = json.loads(out)
                print("-- %s, measured: %s" % (visit["label"], result["scenario"]))
                print("\n".join(_measurement_lines(result)))
                if result["summary"]["dosage_qst"] is not None:
                    case["qst"] = result["summary"]["dosage_qst"]
            if number > 0:  # the dose given last time: here, as recommended
                case["history"] = {"sessions": number, "last_response": visit["response"],
                                   "last": last}  # fmt: skip
            code, line = recommend_text(json.dumps(case), args.runtime)
            if code != 0:
                return _emit(code, line)
            result = json.loads(line)
            shown = {k: v for k, v in case.items() if k != "history"}
            print("-- %s, recommended for: %s" % (visit["label"], json.dumps(shown)))
            if "response" in visit:
                print("   response to the last session: %s" % visit["response"])
            print(_boxes(ui.recommendation_pages(result)))
            last = None
            if result["needles"] is not None:
                last = {key: result[key] for key in _GIVEN}
    print("=" * 78)
    print("%d bundled cases on %s; each screen is 21x8 characters of the 128x64 OLED."
          % (len(files), args.runtime))  # fmt: skip
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (
        ("demo", "measure, score and recommend for the bundled cases; show the screens"),
        ("recommend", "one case as JSON on stdin -> the recommendation as JSON on stdout"),
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
        return _emit(2, "error: %s" % err)
    except BrokenPipeError:  # the reader went away (| head): not an error of ours
        sys.stdout = None
        return 0


if __name__ == "__main__":
    sys.exit(main())

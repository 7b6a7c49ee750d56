"""python -m simulator demo | tui | recommend | measure: the virtual bedside unit."""

import argparse
import sys
from pathlib import Path

from simulator import PACKAGE_DIR, use_firmware
from simulator.runtime import DEFAULT_HEAPSIZE, MicroPythonMissing, run_harness

SCENARIOS_DIR = PACKAGE_DIR / "scenarios"
_EXAMPLE = "simulator/scenarios/1_sensitised.json"


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


DEMO_HEAPSIZE = "1M"  # the simulated flash (192 KB) lives in the heap; the unit needs far less


def cmd_demo(args):
    """The main job: one clinic visit on the virtual unit, from a new patient to the
    laptop's database: its narrative, its screens, the records synced over Bluetooth."""
    use_firmware()
    from host_sync.transport import SyncError
    from simulator import clinic_day, display

    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob("[0-9][0-9]-*.png"):  # screens of an earlier run
            old.unlink()
    except OSError as err:
        return _emit(2, "error: cannot write the screens to %s (%s); give another --out" % (
            out_dir, err.strerror or err))  # fmt: skip
    screens = []

    def show(line):
        kind, _, rest = line.partition(" ")
        if kind == "say":
            print(rest, flush=True)
        elif kind == "$":
            print("  " + line, flush=True)
        elif kind == "frame":
            name, _, data = rest.partition(" ")
            buf = bytes.fromhex(data)
            display.save_png(buf, out_dir / (name + ".png"))
            screens.append((name, buf))
        elif kind == "data":  # what the screens showed and what the unit stored
            (out_dir / "visit.json").write_text(rest + "\n")

    try:
        clinic_day.run(out_dir, args.runtime, show)
    except (clinic_day.DemoError, SyncError) as err:
        return _emit(3, "error: the clinic visit stopped on %s: %s" % (args.runtime, err))
    sheet = display.contact_sheet(screens, out_dir / "contact-sheet.png", columns=6)
    print("The unit showed %d screens: one PNG each in %s/, all of them on %s (%s)." % (
        len(screens), out_dir, sheet, args.runtime))  # fmt: skip
    print("The laptop's database: %s (python -m host_sync export / report read it)." % (
        out_dir / "algodose.db"))  # fmt: skip
    return 0


def cmd_tui(args):
    from simulator import tui

    return tui.run()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m simulator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "demo", help="one clinic visit on the virtual unit: its story, a PNG of every screen"
    )
    p.add_argument("--out", default="demo-out", metavar="DIR", help="where the PNGs go")
    p.add_argument("--runtime", choices=("cpython", "micropython"), default="cpython")
    sub.add_parser(
        "tui", help="the virtual unit in this terminal: keys for the buttons and the probe"
    )
    p = sub.add_parser(
        "recommend", help="one case as JSON on stdin -> the recommendation as JSON on stdout"
    )
    p.add_argument("--runtime", choices=("cpython", "micropython"), default="cpython")
    p = sub.add_parser(
        "measure", help="run a measurement scenario -> per-trial and per-site results as JSON"
    )
    p.add_argument("--scenario", required=True, metavar="FILE", help="e.g. " + _EXAMPLE)
    p.add_argument("--runtime", choices=("cpython", "micropython"), default="cpython")
    args = parser.parse_args(argv)
    commands = {
        "recommend": cmd_recommend,
        "demo": cmd_demo,
        "measure": cmd_measure,
        "tui": cmd_tui,
    }
    try:
        return commands[args.command](args)
    except MicroPythonMissing as err:
        return _emit(2, "error: %s" % err)
    except BrokenPipeError:  # the reader went away (| head): not an error of ours
        sys.stdout = None
        return 0


if __name__ == "__main__":
    sys.exit(main())

# One measurement scenario (JSON on stdin) through the real firmware path: the pin-level fake
# HX711 on a virtual clock -> drivers.hx711 -> core.scale -> core.ppt -> core.qst; per-trial
# and per-site results out as one canonical JSON document. The same file runs on CPython
# (imported by `python -m simulator measure`) and as a script on `micropython`.
# Memory: on `micropython` the bytecode of this script, the fakes and the firmware (about
# 55 KB on the 64-bit unix port, where objects are about twice a 32-bit board's) sits in
# the heap, so the harness runs with HEAPSIZE rather than the 64 KB of a board whose code is
# frozen in flash. What a board must hold, the data, stays small: each site is written as
# soon as it is measured and only a summary of it is kept, and the fake chip gets the load
# profile of one trial at a time (tests/test_measure.py measures that live data, and runs
# the largest scenario the parser accepts at HEAPSIZE).
# Arguments: [--reference PATH] (default: data/qst_reference.json on the module path).
import json
import sys
from array import array

from fake_hx711 import FAULT_KINDS, PERIOD_US, PHASE_US, FakeHX711
from vclock import VirtualClock

from core import canonjson, ppt, qst
from core.scale import Scale, ScaleError, Window
from drivers.hx711 import FAULT_NAMES, HX711

HEAPSIZE = "96K"  # the bundled scenarios run from 84K, the largest allowed from 86K (2026-11)
MG_PER_KPA_X10 = 1019716  # mg on 1 cm2 per 0.1 kPa, x 1000 (0.1 kPa on 1 cm2 = 1.019716 gf)
# The session in virtual ms: tare from 0.5 s (2 s to find a still window), calibration mass
# on at 3.5 s, read from 4.8 s, off at 7 s, sites from 8.5 s. Each trial: 1 s rest, the ramp,
# after a stop press 0.2 s until the clinician reacts, a 0.3 s release, 1.5 s rest; 2 s to move
# the probe to the next site.
TARE_MS, MASS_ON_MS, MASS_READ_MS, MASS_OFF_MS, SITES_MS = 500, 3500, 4800, 7000, 8500
REST_MS, REACT_MS, RELEASE_MS, AFTER_MS, MOVE_MS = 1000, 200, 300, 1500, 2000
# The largest scenario: what runs at HEAPSIZE on micropython with every optional field set
# (tests/test_measure.py runs it). The decoded JSON is the peak (about 300 bytes a trial on
# the unix port), so the parser caps the trials and the texts; whitespace costs nothing,
# since the scenario is decoded from the stream without holding its text.
MAX_SITES, MAX_TRIALS = 8, 6  # 4 sites on both sides, 3 trials + 3 repeats each
MAX_TITLE, MAX_NOTE, MAX_SITE_NAME = 100, 1000, 40  # characters
_PER_TRIAL = 6  # packed per trial: rate, peak, stop press, fault kind, at_ms, for_ms (-1)


# The scenario's fields: section.key, kind, range or choices, default ("-": none, "!":
# required). Kinds: int (a whole number), x10 / x100 (a number, kept as an int x 10 / x 100),
# one (one of the choices). Text rather than a literal: it is kept as one string object.
FIELDS = """
patient.sex             one   F,M,U               U
patient.age             int   0..120              -
chip.offset_counts      int   -4000000..4000000   0
chip.counts_per_kg      int   2000..400000        215000
chip.noise_counts       int   0..5000             40
chip.seed               int   0..4294967295       1
calibration.mass_g      int   100..20000          2000
calibration.cal_id      int   0..65535            1
protocol.target_kpa_s   x10   1..500              50
protocol.tolerance_pct  int   0..99               20
protocol.onset_kpa      x10   1..100              10
protocol.ceiling_kpa    x10   20..2000            1000
protocol.min_valid      int   1..10               2
protocol.area_cm2       x100  0.1..10             1
site.side               one   L,R                 -
site.role               one   local,remote        -
trial.rate_kpa_s        x10   1..500              !
trial.peak_kpa          x10   1..2500             !
trial.end               one   stop,release        stop
fault.kind              one   unpowered,no_data_ready,stuck_high,stuck_low  !
fault.at_ms             int   0..600000           0
fault.for_ms            int   1..600000           -
"""

# The scenario's keys and words as literals: mpy-cross makes them qstrs, and micropython's JSON
# decoder then reuses those instead of allocating a string for each key of every trial (a
# decoded trial takes about 270 bytes instead of 650 on the unix port).
_WORDS = (
    "title", "note", "patient", "chip", "calibration", "protocol", "sites", "site", "side",
    "role", "trials", "rate_kpa_s", "peak_kpa", "end", "stop", "release", "fault", "kind",
    "at_ms", "for_ms", "unpowered", "no_data_ready", "stuck_high", "stuck_low", "local",
    "remote", "L", "R", "F", "M", "U", "sex", "age", "offset_counts", "counts_per_kg",
    "noise_counts", "seed", "mass_g", "cal_id", "target_kpa_s", "tolerance_pct", "onset_kpa",
    "ceiling_kpa", "min_valid", "area_cm2",
)  # fmt: skip


class ScenarioError(ValueError):
    pass


_NOT_JSON = "the scenario is not valid JSON (NaN and Infinity are not JSON either); check its "
_NOT_JSON += "brackets, commas, quotes"
_TOO_BIG = "the scenario is too big for the unit's memory; at most %d sites of %d trials"


def _fail(where, allowed, value):
    raise ScenarioError("%s: %s (got %s)" % (where, allowed, canonjson.dumps(value)[:40]))


def _finite(obj):
    """False when a non-finite number (NaN, Infinity) is anywhere in the decoded JSON: CPython
    decodes them, micropython refuses them as not JSON, so both refuse them here."""
    stack = [obj]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float and item - item != 0:  # inf - inf and nan - nan are nan
            return False
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return True


def _number(text):
    return float(text) if "." in text else int(text)


def _section(obj, section, where, extra=()):
    """obj checked against the FIELDS of section (and the keys in extra, checked by the
    caller): {key: value} with the defaults filled in."""
    if type(obj) is not dict:
        _fail(where, "an object", obj)
    out = {}
    allowed = list(extra)
    for line in FIELDS.split("\n"):
        row = line.split()
        if not row or not row[0].startswith(section + "."):
            continue
        key = row[0][len(section) + 1 :]
        allowed.append(key)
        out[key] = _value(obj.get(key), row[1], row[2], row[3], where + "." + key)
    for key in sorted(obj):  # sorted: the same first error on both runtimes
        if key not in allowed:
            _fail(where, "fields " + ", ".join(allowed), key)
    return out


def _value(value, kind, spec, default, where):
    if value is None:
        if default == "!":
            _fail(where, "required", None)
        if default == "-":
            return None
        value = default if kind == "one" else _number(default)
    if kind == "one":
        if type(value) is not str or value not in spec.split(","):
            _fail(where, "one of " + spec.replace(",", ", "), value)
        return value
    low, high = (_number(end) for end in spec.split(".."))
    whole = kind == "int"
    if type(value) is not int and (whole or type(value) is not float) or not low <= value <= high:
        what = "a whole number" if whole else "a number"
        _fail(where, "%s from %s to %s" % (what, low, high), value)
    return value if kind == "int" else int(value * (10 if kind == "x10" else 100) + 0.5)


def _fault(obj, where):
    if obj is None:
        return None
    fault = _section(obj, "fault", where)
    return fault["kind"], fault["at_ms"], fault["for_ms"]


def _text(obj, key, where, most, example):
    value = obj.get(key)
    if type(value) is not str or not 1 <= len(value) <= most:
        _fail(where, "%s, 1 to %d characters" % (example, most), value)
    return value


def parse_scenario(obj):
    """The scenario with its defaults, or ScenarioError naming the field and what is allowed.
    Keys as in FIELDS (x10 / x100 values scaled), plus title, cal_fault and sites; each
    site's trials packed in an array, _PER_TRIAL ints a trial (site_trials unpacks them)."""
    if type(obj) is not dict or type(obj.get("title")) is not str:
        _fail("scenario", 'an object with a "title" (text) and "sites"', obj)
    sections = ("patient", "chip", "calibration", "protocol")
    _section(obj, "scenario", "scenario", ("title", "note") + sections + ("sites",))
    out = {"title": _text(obj, "title", "title", MAX_TITLE, "text"), "sites": []}
    if "note" in obj:
        _text(obj, "note", "note", MAX_NOTE, "text")
    for section in sections:
        extra = ("fault",) if section == "calibration" else ()
        out.update(_section(obj.get(section, {}), section, section, extra))
    if out["ceiling_kpa"] <= out["onset_kpa"]:  # core.ppt.Trial needs onset < ceiling
        protocol = obj["protocol"]  # the ceiling is at least 20 kPa: both were given
        shown = canonjson.dumps(protocol["onset_kpa"])
        _fail(
            "protocol.ceiling_kpa", "above protocol.onset_kpa, " + shown, protocol["ceiling_kpa"]
        )
    out["cal_fault"] = _fault(obj.get("calibration", {}).get("fault"), "calibration.fault")
    sites = obj.get("sites")
    if type(sites) is not list or not 1 <= len(sites) <= MAX_SITES:
        _fail("sites", "a list of 1 to %d sites" % MAX_SITES, sites)
    roles = []
    for index, raw in enumerate(sites):
        where = "sites[%d]" % index
        site = _section(raw, "site", where, ("site", "trials"))
        name = 'a site name such as "upper_trapezius"'
        site["site"] = _text(raw, "site", where + ".site", MAX_SITE_NAME, name)
        if site["role"] is not None and site["role"] in roles:
            _fail(where + ".role", "each role on one site only", site["role"])
        roles.append(site["role"])
        trials = raw.get("trials")
        if type(trials) is not list or not 1 <= len(trials) <= MAX_TRIALS:
            _fail(where + ".trials", "a list of 1 to %d trials" % MAX_TRIALS, trials)
        packed = site["trials"] = array("i")
        for number, spec in enumerate(trials):
            at = "%s.trials[%d]" % (where, number)
            trial = _section(spec, "trial", at, ("fault",))
            fault = _fault(spec.get("fault"), at + ".fault") or ("none", 0, None)
            packed.append(trial["rate_kpa_s"])
            packed.append(trial["peak_kpa"])
            packed.append(1 if trial["end"] == "stop" else 0)
            packed.append(FAULT_KINDS.index(fault[0]))
            packed.append(fault[1])
            packed.append(-1 if fault[2] is None else fault[2])
        out["sites"].append(site)
    return out


def site_trials(packed):
    """(rate, peak, stop press, fault or None) of each trial packed by parse_scenario."""
    for i in range(0, len(packed), _PER_TRIAL):
        kind = packed[i + 3]
        fault = None
        if kind:
            for_ms = packed[i + 5]
            fault = (FAULT_KINDS[kind], packed[i + 4], None if for_ms < 0 else for_ms)
        yield packed[i], packed[i + 1], packed[i + 2] == 1, fault


def trial_plan(scenario, arm_ms, rate, peak, press):
    """What the clinician's hand does in one trial armed at arm_ms: the load knots for the
    fake chip, (ramp start ms, peak ms, end ms) and the time the next trial is armed."""
    start = arm_ms + REST_MS
    peak_at = start + (peak * 1000 + rate // 2) // rate
    lift = peak_at + (REACT_MS if press else 0)
    peak_mg = peak * scenario["area_cm2"] * MG_PER_KPA_X10 // 100000
    knots = [(arm_ms, 0), (start, 0), (peak_at, peak_mg), (lift, peak_mg), (lift + RELEASE_MS, 0)]
    end = lift + RELEASE_MS + AFTER_MS
    return knots, start, peak_at, end


def calibration_profile(scenario, chip):
    """Loads the chip with the calibration: the mass on and off, and any calibration fault.
    The load is back at zero before SITES_MS, when the first trial's profile replaces it."""
    mass_mg = scenario["mass_g"] * 1000
    knots = [(0, 0), (MASS_ON_MS, 0), (MASS_ON_MS + 300, mass_mg)]
    knots += [(MASS_OFF_MS, mass_mg), (MASS_OFF_MS + 300, 0)]
    chip.set_profile(knots)
    _add_fault(chip, scenario["cal_fault"], 0)


def _add_fault(chip, fault, origin_ms):
    if fault is not None:
        kind, at_ms, for_ms = fault
        chip.add_fault(
            kind, origin_ms + at_ms, None if for_ms is None else origin_ms + at_ms + for_ms
        )


class Unit:
    """The virtual bedside unit: fake chip and clock, the real driver, scale and trial engine."""

    def __init__(self, sc):
        self.clock = clock = VirtualClock()
        self.chip = FakeHX711(
            clock, sc["offset_counts"], sc["counts_per_kg"], sc["noise_counts"], sc["seed"]
        )
        self.hx = HX711(self.chip.dout, self.chip.pd_sck, clock)
        # The device is built for its load cell: its nominal counts per kg (the scenario's
        # chip) sets the stillness limit of the first tare, before any span is known.
        self.scale = Scale(sc["area_cm2"], cell_counts_per_kg=sc["counts_per_kg"])
        self.trial = ppt.Trial(
            sc["target_kpa_s"],
            sc["tolerance_pct"],
            sc["onset_kpa"],
            sc["ceiling_kpa"],
            ticks_diff=clock.ticks_diff,
        )
        self.sampler = ppt.Sampler(self.hx, self.scale, self.trial)

    def tick(self):
        """Sleeps to the chip's next data-ready, as the sampling task would (a timed-out read
        may have run past some), and returns the time in ms."""
        self.clock.sleep_us(PERIOD_US - (self.clock.now_us - PHASE_US) % PERIOD_US)
        return self.clock.now_us // 1000

    def idle_until(self, t_ms):
        while self.clock.now_us < t_ms * 1000:
            self.tick()
            counts = self.hx.read()
            if counts is None:
                self.scale.reset()  # as Sampler.step: nothing before a fault meets what follows
            elif self.scale.calibrated():
                self.scale.update(counts)

    def window(self, until_ms):
        """A full 1 s window of raw counts before until_ms, restarted after a fault, or None;
        and the last fault code."""
        window = Window(80)
        fault = 0
        while self.tick() < until_ms:
            counts = self.hx.read()
            if counts is None:
                fault = self.hx.fault
                window.reset()
            elif window.add(counts):
                return window, fault
        return None, fault

    def calibrate(self, sc):
        """The calibration result. cal_id and counts_per_kg are what the app logs in its
        calibration event (core.record EV_CALIBRATION: a = id, b = counts per kg) before the
        trials measured with it; here they head the output, which holds one calibration."""
        out = {"ok": False, "cal_id": sc["cal_id"], "mass_g": sc["mass_g"], "error": None}
        out["tare_counts"] = out["span_counts"] = out["counts_per_kg"] = None
        self.idle_until(TARE_MS)
        tare, fault = None, 0
        while tare is None and self.clock.now_us < MASS_ON_MS * 1000:
            tare, fault = self.window(MASS_ON_MS)
            tare = tare if tare is not None and tare.stable(self.scale.still_counts()) else None
        if tare is None:
            out["error"] = _cal_error("tare", fault, "keep the probe still and off the skin")
            return out
        self.scale.set_tare(tare.mean())
        out["tare_counts"] = tare.mean()
        self.idle_until(MASS_READ_MS)
        loaded, fault = self.window(MASS_OFF_MS)
        if loaded is None or not loaded.stable(self.scale.still_counts()):
            out["error"] = _cal_error("span", fault, "keep the calibration mass still")
            return out
        try:
            self.scale.calibrate(sc["mass_g"], loaded.mean(), sc["cal_id"])
        except ScaleError as err:
            out["error"] = str(err)  # names its step: "span: ..."
            return out
        out["span_counts"] = self.scale.span_counts
        out["counts_per_kg"] = self.scale.counts_per_kg()
        out["ok"] = True
        return out

    def run_trial(self, sc, arm_ms, rate, peak, press, fault):
        """One trial armed at arm_ms: its load profile goes to the chip once the previous
        one has ended (the load is zero by then). Returns (result, the next arm ms)."""
        self.idle_until(arm_ms)
        knots, start_ms, peak_ms, end_ms = trial_plan(sc, arm_ms, rate, peak, press)
        self.chip.set_profile(knots)
        _add_fault(self.chip, fault, start_ms)
        del knots
        trial = self.trial
        trial.arm(self.clock.ticks_ms())
        while self.clock.now_us < end_ms * 1000:
            stop = press and self.tick() >= peak_ms
            press = press and not stop  # one press
            self.sampler.step(self.clock.ticks_ms(), stop)
        if trial.state != ppt.DONE:
            trial.abort(self.clock.ticks_ms())
        result = trial.result()
        result["qc"] = ppt.flag_names(result["flags"])
        if result["fault"] is not None:
            result["fault"] = FAULT_NAMES[result["fault"]]
        return result, end_ms


def _cal_error(step, fault, advice):
    if fault:
        return "%s: sensor fault %s; check the HX711 wiring and power" % (step, FAULT_NAMES[fault])
    return "%s: reading not stable; %s" % (step, advice)


def measure(sc, table, write):
    """Runs the scenario, writing canonical JSON: the top-level keys in sorted order, each site
    as soon as it is measured."""
    unit = Unit(sc)
    calibration_profile(sc, unit.chip)
    calibration = unit.calibrate(sc)
    protocol = {"tolerance_pct": sc["tolerance_pct"], "min_valid": sc["min_valid"]}
    protocol["area_cm2_x100"] = sc["area_cm2"]
    for key in ("target_kpa_s", "onset_kpa", "ceiling_kpa"):
        protocol[key + "_x10"] = sc[key]
    write('{"calibration":')
    canonjson.dump(calibration, write)
    write(',"patient":{"age":%s,"sex":"%s"},"protocol":' % (canonjson.dumps(sc["age"]), sc["sex"]))
    canonjson.dump(protocol, write)
    write(',"reference":%s,"scenario":' % canonjson.dumps(table["version"]))
    write(canonjson.dumps(sc["title"]) + ',"sites":[')
    kept = []
    arm_ms = SITES_MS
    for spec in sc["sites"]:
        trials = []
        for rate, peak, press, fault in site_trials(spec["trials"]):
            if calibration["ok"]:
                result, arm_ms = unit.run_trial(sc, arm_ms, rate, peak, press, fault)
                trials.append(result)
        arm_ms += MOVE_MS
        site = ppt.site_summary(trials, sc["min_valid"])
        site.update(spec)
        site["trials"] = trials
        if not calibration["ok"]:
            site["reason"] = "not measured: no calibration"
        site["qst"] = qst.score(
            table,
            spec["site"],
            sc["sex"],
            sc["age"],
            site["ppt_kpa_x10"],
            ppt_min_kpa_x10=site["ppt_min_kpa_x10"],
        )
        write("," if kept else "")
        canonjson.dump(site, write)
        kept.append((spec["site"], spec["side"], spec["role"], site["ppt_kpa_x10"], site["qst"]))
        del site, trials
    summary = qst.compare(kept)
    summary["sensor"] = {"faults": unit.hx.faults, "conversions": unit.chip.conversions_read}
    write('],"summary":')
    canonjson.dump(summary, write)
    write("}")


def _default_reference():
    for root in sys.path:
        path = (root or ".") + "/data/qst_reference.json"
        try:
            open(path).close()
            return path
        except OSError:
            pass
    return None


def _prepare(source, reference):
    """(scenario, table, None), or (None, None, the error line). source: the scenario's text,
    or a stream to decode it from (never holding the text: the board's way)."""
    try:
        obj = json.loads(source) if type(source) is str else json.load(source)
        source = None
        if not _finite(obj):
            return None, None, _NOT_JSON
        scenario = parse_scenario(obj)
        obj = None  # only the parsed scenario stays: free the decoded one for the table
    except ScenarioError as err:
        return None, None, str(err)
    except ValueError:
        return None, None, _NOT_JSON
    except MemoryError:  # micropython only, and only for what the parser would refuse
        obj = None
        return None, None, _TOO_BIG % (MAX_SITES, MAX_TRIALS)
    except RuntimeError:  # CPython's RecursionError; MicroPython's recursion limit
        return None, None, "the scenario is nested too deeply"
    if reference is None:
        return None, None, "no QST reference table found; pass --reference PATH"
    try:
        return scenario, qst.load_reference(reference), None
    except OSError:
        return None, None, "cannot read the QST reference table %s" % reference
    except ValueError as err:  # bad JSON, or a bad row (QstError)
        return None, None, "QST reference table %s: %s" % (reference, err)


def main(argv, stdin, stdout, stderr):
    reference = _default_reference()
    if len(argv) == 2 and argv[0] == "--reference":
        reference = argv[1]
    elif argv:
        stderr.write("error: usage: measure [--reference PATH] < scenario.json\n")
        return 2
    scenario, table, error = _prepare(stdin, reference)
    if error is not None:
        stderr.write("error: " + error + "\n")
        return 2
    measure(scenario, table, stdout.write)
    stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], sys.stdin, sys.stdout, sys.stderr))

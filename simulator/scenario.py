"""Measurement scenarios (simulator/scenarios/*.json): what the simulated clinician and patient
do during a visit. Validated here, on CPython, into a plain plan the measure harness runs on
either runtime (the harness trusts it: the unit's heap is for the visit, not for parsing).
Every error names the field and what is allowed, in one line."""

import json

from simulator import use_firmware

use_firmware()  # the firmware's vocabulary and settings ranges are the scenario's too

from fake_hx711 import FAULT_KINDS  # noqa: E402

from core import settings as settings_mod  # noqa: E402
from core.vocab import (  # noqa: E402
    CONDITIONS,
    CONTRAINDICATIONS,
    FLAGS,
    ROLES,
    SEXES,
    SIDES,
    SITES,
)

MAX_SITES = 8
MAX_TRIALS = 6  # 3 trials and 3 repeats
MAX_TITLE, MAX_NOTE = 100, 1000
_TOP = ("title", "note", "patient", "chip", "calibration", "protocol", "sites")


class ScenarioError(ValueError):
    pass


def _shown(value):
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _fail(where, allowed, value):
    raise ScenarioError("%s: %s (got %s)" % (where, allowed, _shown(value)))


def _object(obj, where, keys):
    if not isinstance(obj, dict):
        _fail(where, "an object", obj)
    for key in sorted(obj):
        if key not in keys:
            _fail(where, "fields " + ", ".join(keys), key)
    return obj


def _int(obj, key, where, low, high, default):
    value = obj.get(key, default)
    if value is None and default is None and key not in obj:
        return None
    if type(value) is not int or not low <= value <= high:
        _fail(where + key, "a whole number from %d to %d" % (low, high), value)
    return value


def _scaled(obj, key, where, low, high, default, scale):
    value = obj.get(key, default)
    if type(value) not in (int, float) or not low <= value <= high:
        _fail(where + key, "a number from %s to %s" % (low, high), value)
    return int(value * scale + 0.5)


def _one(obj, key, where, choices, default):
    value = obj.get(key, default)
    if value is None and default is None:
        return None
    if type(value) is not str or value not in choices:
        _fail(where + key, "one of " + ", ".join(choices), value)
    return value


def _names(obj, key, where, vocab):
    value = obj.get(key, [])
    if type(value) is not list or any(type(v) is not str or v not in vocab for v in value):
        _fail(where + key, "a list of " + ", ".join(vocab), value)
    return value


def _text(obj, key, most, required):
    value = obj.get(key)
    if value is None and not required:
        return None
    if type(value) is not str or not 1 <= len(value) <= most:
        _fail(key, "text, 1 to %d characters" % most, value)
    return value


def _required(obj, key, where, choices):
    if key not in obj:
        _fail(where + key, "required, one of " + ", ".join(choices), None)
    return _one(obj, key, where, choices, None)


def _fault(obj, where):
    if obj is None:
        return None
    _object(obj, where, ("kind", "at_ms", "for_ms"))
    return {
        "kind": _required(obj, "kind", where + ".", FAULT_KINDS[1:]),
        "at_ms": _int(obj, "at_ms", where + ".", 0, 600000, 0),
        "for_ms": _int(obj, "for_ms", where + ".", 1, 600000, None),
    }


def parse(obj):
    """The plan of a decoded scenario, or ScenarioError."""
    if not isinstance(obj, dict) or type(obj.get("title")) is not str:
        _fail("scenario", 'an object with a "title" (text) and "sites"', obj)
    _object(obj, "scenario", _TOP)
    plan = {"title": _text(obj, "title", MAX_TITLE, True)}
    _text(obj, "note", MAX_NOTE, False)
    patient = _object(obj.get("patient", {}), "patient", (
        "sex", "age", "conditions", "flags", "contraindications", "overrides"))  # fmt: skip
    plan["patient"] = {
        "code": "SIM-0001",
        "sex": _one(patient, "sex", "patient.", SEXES, "U"),
        "age": _int(patient, "age", "patient.", 0, 120, 40),
        "conditions": _names(patient, "conditions", "patient.", CONDITIONS),
        "flags": _names(patient, "flags", "patient.", FLAGS),
        "contraindications": _names(patient, "contraindications", "patient.", CONTRAINDICATIONS),
        "overrides": _names(patient, "overrides", "patient.", CONTRAINDICATIONS),
        "sessions": 0,
        "last_dose": None,
    }
    chip = _object(obj.get("chip", {}), "chip", ("offset_counts", "counts_per_kg",
                                                 "noise_counts", "seed"))  # fmt: skip
    plan["chip"] = {
        "offset_counts": _int(chip, "offset_counts", "chip.", -4000000, 4000000, 0),
        "counts_per_kg": _int(chip, "counts_per_kg", "chip.", 2000, 400000, 215000),
        "noise_counts": _int(chip, "noise_counts", "chip.", 0, 5000, 40),
        "seed": _int(chip, "seed", "chip.", 0, 4294967295, 1),
    }
    cal = _object(obj.get("calibration", {}), "calibration", ("mass_g", "cal_id", "fault"))
    plan["calibration"] = {
        "mass_g": _int(cal, "mass_g", "calibration.", 100, 20000, 2000),
        "cal_id": _int(cal, "cal_id", "calibration.", 1, 65535, 1),
        "fault": _fault(cal.get("fault"), "calibration.fault"),
    }
    plan["settings"] = _protocol(obj.get("protocol", {}))
    plan["sites"] = _sites(obj.get("sites"))
    return plan


def _protocol(protocol):
    _object(protocol, "protocol", ("target_kpa_s", "tolerance_pct", "onset_kpa", "ceiling_kpa",
                                   "min_valid", "area_cm2"))  # fmt: skip
    where = "protocol."
    values = {
        "target_kpa_s_x10": _scaled(protocol, "target_kpa_s", where, 10, 100, 50, 10),
        "tolerance_pct": _int(protocol, "tolerance_pct", where, 5, 50, 20),
        "onset_kpa_x10": _scaled(protocol, "onset_kpa", where, 2, 50, 10, 10),
        "ceiling_kpa_x10": _scaled(protocol, "ceiling_kpa", where, 100, 2000, 1000, 10),
        "min_valid": _int(protocol, "min_valid", where, 1, 3, 2),
        "area_cm2_x100": _scaled(protocol, "area_cm2", where, 0.1, 10, 1, 100),
    }
    if values["ceiling_kpa_x10"] <= values["onset_kpa_x10"]:
        _fail("protocol.ceiling_kpa", "above protocol.onset_kpa", protocol.get("ceiling_kpa"))
    check = settings_mod.Settings()  # the device's own ranges, as its settings screen has them
    for name, value in values.items():
        try:
            check.set(name, value)
        except settings_mod.SettingsError as err:
            raise ScenarioError("protocol: " + str(err)) from None
    return values


def _sites(sites):
    if type(sites) is not list or not 1 <= len(sites) <= MAX_SITES:
        _fail("sites", "a list of 1 to %d sites" % MAX_SITES, sites)
    out = []
    seen = set()
    local = 0
    for index, raw in enumerate(sites):
        where = "sites[%d]." % index
        _object(raw, where[:-1], ("site", "side", "role", "trials"))
        name = _required(raw, "site", where, SITES)
        side = _one(raw, "side", where, SIDES, None)
        role = _one(raw, "role", where, ROLES, None)
        if (name, side) in seen:
            _fail(where + "site", "each site and side once", "%s %s" % (name, side or ""))
        seen.add((name, side))
        local += role == "local"
        if local > 1:
            _fail(where + "role", "one local site (the one to be needled)", role)
        trials = raw.get("trials")
        if type(trials) is not list or not 1 <= len(trials) <= MAX_TRIALS:
            _fail(where + "trials", "a list of 1 to %d trials" % MAX_TRIALS, trials)
        planned = []
        for number, spec in enumerate(trials):
            at = "%strials[%d]." % (where, number)
            _object(spec, at[:-1], ("rate_kpa_s", "peak_kpa", "end", "fault"))
            for key in ("rate_kpa_s", "peak_kpa"):
                if key not in spec:
                    _fail(at + key, "required", None)
            planned.append({
                "rate_kpa_s_x10": _scaled(spec, "rate_kpa_s", at, 1, 500, None, 10),
                "peak_kpa_x10": _scaled(spec, "peak_kpa", at, 1, 2500, None, 10),
                "press": _one(spec, "end", at, ("stop", "release"), "stop") == "stop",
                "fault": _fault(spec.get("fault"), at + "fault"),
            })  # fmt: skip
        out.append({"site": name, "side": side, "role": role, "trials": planned})
    return out


def load(text):
    """The plan of a scenario's text, or ScenarioError (not JSON, NaN, bad fields)."""

    def no_constants(name):
        raise ValueError(name)

    try:
        obj = json.loads(text, parse_constant=no_constants)
    except (ValueError, RecursionError):
        raise ScenarioError(
            "the scenario is not valid JSON (NaN and Infinity are not JSON either); check its "
            "brackets, commas, quotes"
        ) from None
    return parse(obj)

# The patient case the dosage rules read: validation of untrusted input (JSON from the
# laptop or the simulator) into a plain dict. Every error names the field and what is
# allowed, in one line. Types are checked with `type(x) is`, never isinstance: on
# MicroPython isinstance(True, int) is False, on CPython True.
from core import canonjson
from core.vocab import (
    AGE_MAX_YEARS,
    CONDITIONS,
    CONTRAINDICATIONS,
    DEPTHS,
    FLAGS,
    GAUGES_MM_X100,
    MANIPULATIONS,
    NEEDLES_MAX,
    NEEDLES_MIN,
    QST_CATEGORIES,
    QST_Z_LIMIT,
    REGIONS,
    RESPONSES,
    SEXES,
)

SESSIONS_MAX = 1000

_FIELDS = (
    "age",
    "conditions",
    "contraindications",
    "history",
    "override",
    "qst",
    "region",
    "sex",
) + FLAGS
_LAST_FIELDS = (
    "adjuncts",
    "aftercare",
    "depth",
    "gauge_mm",
    "manipulation",
    "needles",
    "rules",
    "ruleset",
    "sessions_per_week",
    "status",
    "warnings",
)
_LAST_DOSE_FIELDS = ("gauge_mm", "needles", "depth", "manipulation")


class CaseError(ValueError):
    pass


def _fail(field, allowed, value):
    try:
        shown = canonjson.dumps(value)
    except (TypeError, ValueError):
        shown = "a non-finite number"
    if type(value) is float and "." not in shown and "e" not in shown:
        shown += ".0"  # 4e1 is not the whole number 40: say it was a decimal
    if len(shown) > 40:
        shown = shown[:37] + "..."
    raise CaseError("%s: %s (got %s)" % (field, allowed, shown))


def _one_of(field, value, allowed):
    if type(value) is not str or value not in allowed:
        _fail(field, "one of " + ", ".join(allowed), value)
    return value


def _is_number(value):
    kind = type(value)
    return kind is int or (kind is float and value - value == 0)


def _whole(field, value, low, high):
    if type(value) is not int or not low <= value <= high:
        _fail(field, "a whole number from %d to %d" % (low, high), value)
    return value


def _bool(field, value):
    if type(value) is not bool:
        _fail(field, "true or false", value)
    return value


def _object(field, value, allowed):
    if type(value) is not dict:
        _fail(field, "an object", value)
    for key in value:
        if key not in allowed:
            raise CaseError(
                "%s: unknown field %s; allowed: %s"
                % (field, canonjson.dumps(key), ", ".join(sorted(allowed)))
            )
    return value


def _subset(field, value, allowed):
    if type(value) is not list:
        _fail(field, "a list of " + ", ".join(allowed), value)
    for item in value:
        _one_of(field, item, allowed)
    return tuple(value)


def _text_list(field, value):
    if type(value) is not list:
        _fail(field, "a list of text", value)
    for item in value:
        if type(item) is not str:
            _fail(field, "a list of text", value)


def parse_case(obj):
    if type(obj) is not dict:
        _fail("case", "a JSON object", obj)
    for key in obj:
        if key not in _FIELDS:
            raise CaseError(
                "unknown field %s; allowed: %s"
                % (canonjson.dumps(key), ", ".join(sorted(_FIELDS)))
            )
    if "age" not in obj:
        raise CaseError("age: required, a whole number of years from 0 to %d" % AGE_MAX_YEARS)
    case = {
        "age": _whole("age", obj["age"], 0, AGE_MAX_YEARS),
        "sex": _one_of("sex", obj.get("sex", "U"), SEXES),
        "conditions": _subset("conditions", obj.get("conditions", []), CONDITIONS),
        "contraindications": _subset(
            "contraindications", obj.get("contraindications", []), CONTRAINDICATIONS
        ),
        "override": _bool("override", obj.get("override", False)),
        "region": None,
        "qst_z": None,
        "qst_category": None,
        "history": None,
    }
    case["flags"] = tuple([flag for flag in FLAGS if _bool(flag, obj.get(flag, False))])
    if obj.get("region") is not None:
        case["region"] = _one_of("region", obj["region"], REGIONS)
    if obj.get("qst") is not None:
        _parse_qst(obj["qst"], case)
    if obj.get("history") is not None:
        case["history"] = _parse_history(obj["history"])
    return case


def _parse_qst(qst, case):
    _object("qst", qst, ("z", "category"))
    if len(qst) != 1:
        _fail("qst", 'either {"z": number} or {"category": high|normal|low}', qst)
    if "z" in qst:
        z = qst["z"]
        if not _is_number(z) or not -QST_Z_LIMIT <= z <= QST_Z_LIMIT:
            _fail("qst.z", "a number from -%d to %d" % (QST_Z_LIMIT, QST_Z_LIMIT), z)
        case["qst_z"] = z
    else:
        case["qst_category"] = _one_of("qst.category", qst["category"], QST_CATEGORIES)


def _parse_history(history):
    _object("history", history, ("sessions", "last_response", "last"))
    if "sessions" not in history:
        raise CaseError("history.sessions: required, sessions so far (0 for the first)")
    sessions = _whole("history.sessions", history["sessions"], 0, SESSIONS_MAX)
    response = history.get("last_response")
    if response is not None:
        _one_of("history.last_response", response, RESPONSES)
    last_dose = None
    if history.get("last") is not None:
        if sessions == 0:
            raise CaseError("history.last: given, but history.sessions is 0")
        last_dose = _parse_last(history["last"])
    return {"sessions": sessions, "last_response": response, "last_dose": last_dose}


def _parse_last(last):
    _object("history.last", last, _LAST_FIELDS)
    for key in _LAST_DOSE_FIELDS:
        if key not in last:
            raise CaseError("history.last.%s: required (a previous recommendation)" % key)
    given = [last[key] is not None for key in _LAST_DOSE_FIELDS]
    for key in ("warnings", "aftercare", "rules", "adjuncts"):
        if key in last:
            _text_list("history.last." + key, last[key])
    if not any(given):
        return None  # no dose was shown last time (contraindicated)
    if not all(given):
        _fail(
            "history.last", "gauge_mm, needles, depth and manipulation all set or all null", last
        )
    gauge = last["gauge_mm"]
    gauge_rung = -1
    if _is_number(gauge):
        for rung, mm_x100 in enumerate(GAUGES_MM_X100):
            if abs(gauge * 100 - mm_x100) < 0.1:
                gauge_rung = rung
    if gauge_rung < 0:
        allowed = ", ".join(["%d.%02d" % (g // 100, g % 100) for g in GAUGES_MM_X100])
        _fail("history.last.gauge_mm", "one of " + allowed, gauge)
    return (
        gauge_rung,
        _whole("history.last.needles", last["needles"], NEEDLES_MIN, NEEDLES_MAX),
        DEPTHS.index(_one_of("history.last.depth", last["depth"], DEPTHS)),
        MANIPULATIONS.index(
            _one_of("history.last.manipulation", last["manipulation"], MANIPULATIONS)
        ),
    )

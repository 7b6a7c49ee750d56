# The patient case the dosage rules read: validation of untrusted input (JSON from the
# laptop or the simulator) into a plain dict. Every error names the field and what is
# allowed, in one line. Types are checked with `type(x) is`, never isinstance: on
# MicroPython isinstance(True, int) is False, on CPython True.
from core import canonjson
from core.vocab import (
    ADJUNCTS,
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
# A first-trimester pregnancy under this age is taken as a typing error, not a patient.
PREGNANCY_AGE_MIN_YEARS = 10
_CAUTION_ONLY = "pregnancy_first_trimester"  # a caution, never overridden

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
_QST_FIELDS = ("z", "category", "censored")
_HISTORY_FIELDS = ("sessions", "last_response", "last")
# history.last is the dose actually given last session (the clinician may have given less
# than the recommendation), not a copy of the recommendation.
_LAST_DOSE_FIELDS = ("gauge_mm", "needles", "depth", "manipulation")
_LAST_FIELDS = _LAST_DOSE_FIELDS + ("adjuncts",)


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
    for i in range(len(value)):
        _one_of(field, value[i], allowed)
        if value.index(value[i]) != i:
            raise CaseError("%s: %s is given twice; give each once" % (field, value[i]))
    return tuple(value)


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
    contraindications = _subset(
        "contraindications", obj.get("contraindications", []), CONTRAINDICATIONS
    )
    case = {
        "age": _whole("age", obj["age"], 0, AGE_MAX_YEARS),
        "sex": _one_of("sex", obj.get("sex", "U"), SEXES),
        "conditions": _subset("conditions", obj.get("conditions", []), CONDITIONS),
        "contraindications": contraindications,
        "overrides": _overrides(obj.get("override", []), contraindications),
        "region": None,
        "qst_z": None,
        "qst_category": None,
        "qst_censored": False,
        "history": None,
    }
    case["flags"] = tuple([flag for flag in FLAGS if _bool(flag, obj.get(flag, False))])
    if obj.get("region") is not None:
        case["region"] = _one_of("region", obj["region"], REGIONS)
    if obj.get("qst") is not None:
        _parse_qst(obj["qst"], case)
    if obj.get("history") is not None:
        case["history"] = _parse_history(obj["history"])
    if _CAUTION_ONLY in contraindications:
        if case["sex"] == "M":
            raise CaseError(
                "contraindications: %s does not fit sex M; check both fields" % _CAUTION_ONLY
            )
        if case["age"] < PREGNANCY_AGE_MIN_YEARS:
            raise CaseError(
                "contraindications: %s does not fit age %d; check both fields"
                % (_CAUTION_ONLY, case["age"])
            )
    return case


def _overrides(value, contraindications):
    # One entry per contraindication the clinician overrides: never a blanket "yes".
    if type(value) is not list:
        _fail("override", 'a list of overridden contraindications, e.g. ["needle_phobia"]', value)
    overrides = _subset("override", value, CONTRAINDICATIONS)
    for name in overrides:
        if name == _CAUTION_ONLY:
            raise CaseError("override: %s is a caution, not a contraindication" % name)
        if name not in contraindications:
            raise CaseError("override: %s is not in contraindications; check both fields" % name)
    return overrides


def _parse_qst(qst, case):
    _object("qst", qst, _QST_FIELDS)
    if ("z" in qst) == ("category" in qst):
        _fail("qst", 'either {"z": number} or {"category": high|normal|low}', qst)
    censored = _bool("qst.censored", qst.get("censored", False))
    if "z" in qst:
        z = qst["z"]
        if not _is_number(z) or not -QST_Z_LIMIT <= z <= QST_Z_LIMIT:
            _fail("qst.z", "a number from -%d to %d" % (QST_Z_LIMIT, QST_Z_LIMIT), z)
        case["qst_z"] = z
    else:
        category = _one_of("qst.category", qst["category"], QST_CATEGORIES)
        if censored and category == "low":
            raise CaseError('qst: category "low" cannot come from censored trials')
        case["qst_category"] = category
    case["qst_censored"] = censored


def _parse_history(history):
    _object("history", history, _HISTORY_FIELDS)
    if "sessions" not in history:
        raise CaseError("history.sessions: required, sessions so far (0 for the first)")
    sessions = _whole("history.sessions", history["sessions"], 0, SESSIONS_MAX)
    response = history.get("last_response")
    if response is not None:
        _one_of("history.last_response", response, RESPONSES)
        if sessions == 0:
            raise CaseError("history.last_response: given, but history.sessions is 0")
    last_dose = None
    last_adjuncts = ()
    if history.get("last") is not None:
        if sessions == 0:
            raise CaseError("history.last: given, but history.sessions is 0")
        last_dose, last_adjuncts = _parse_last(history["last"])
    return {
        "sessions": sessions,
        "last_response": response,
        "last_dose": last_dose,
        "last_adjuncts": last_adjuncts,
    }


def _parse_last(last):
    _object("history.last", last, _LAST_FIELDS)
    for key in _LAST_DOSE_FIELDS:
        if key not in last:
            raise CaseError(
                "history.last.%s: required (the dose given; history.last null if none)" % key
            )
    gauge = last["gauge_mm"]
    gauge_rung = -1
    if _is_number(gauge):
        for rung in range(len(GAUGES_MM_X100)):
            if abs(gauge * 100 - GAUGES_MM_X100[rung]) < 0.1:
                gauge_rung = rung
    if gauge_rung < 0:
        allowed = ", ".join(["%d.%02d" % (g // 100, g % 100) for g in GAUGES_MM_X100])
        _fail("history.last.gauge_mm", "one of " + allowed, gauge)
    dose = (
        gauge_rung,
        _whole("history.last.needles", last["needles"], NEEDLES_MIN, NEEDLES_MAX),
        DEPTHS.index(_one_of("history.last.depth", last["depth"], DEPTHS)),
        MANIPULATIONS.index(
            _one_of("history.last.manipulation", last["manipulation"], MANIPULATIONS)
        ),
    )
    return dose, _subset("history.last.adjuncts", last.get("adjuncts", []), ADJUNCTS)

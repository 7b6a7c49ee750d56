# Dosage rules: the seeds' factors as an ordered table of data. Each rule that fires is
# listed in the result, so every recommendation can be explained and audited.
# "Start low, go slow": on every dose dimension the most conservative effect wins.
# Input is a case from core.case.parse_case (already validated); see docs/dosage-rules.md.
from micropython import const

RULESET = "2026.11-r1"

# Ladders, gentlest first. A dose is four rungs: (gauge index, needle count,
# depth index, manipulation index).
GAUGES_MM_X100 = (16, 18, 20, 25, 30)  # stock filament gauges, 0.16 to 0.30 mm (seed 000)
DEPTHS = ("superficial", "intermediate", "deep")
MANIPULATIONS = ("basic", "rotation", "tenting", "pistoning")
ADJUNCTS = ("microneedling", "e-stim")
NEEDLES_MIN = const(5)  # seed 000: "Begin with 5-10 per session"
NEEDLES_MAX = const(10)
SESSIONS_PER_WEEK = (1, 2)  # seed 000: "1-2 sessions weekly"
CHILD_AGE_YEARS = const(12)  # seed 001: "Children under 12 ... should be careful"

# --- Project choices: the seeds name no value for these. A clinic may tune them. ---
OLDER_AGE_YEARS = const(65)  # "older adults" heal more slowly (seed 000)
DEFAULT_DOSE = (3, 6, 1, 1)  # first session, no factor: 0.25 mm, 6, intermediate, rotation
QST_HIGH_Z = 1.0  # z >= this: sensitised (DESIGN 3, DFNS sign: positive = gain of function)
QST_LOW_Z = -1.0  # z <= this: robust
# One rung of progression per dimension (gauge, needles, depth, manipulation).
STEP_UP = (0, 2, 1, 1)  # gauge follows today's sensitivity, not progression
STEP_HOLD = (0, 0, 0, 0)
STEP_DOWN = (-1, -2, -1, -1)
# --- end of project choices ---

_GAUGE = const(0)
_NEEDLES = const(1)
_DEPTH = const(2)
_MANIP = const(3)
_FLOOR = (0, NEEDLES_MIN, 0, 0)
_CEILING = (len(GAUGES_MM_X100) - 1, NEEDLES_MAX, len(DEPTHS) - 1, len(MANIPULATIONS) - 1)

# Effect opcodes: (op, ...) tuples in the table.
_CAP = const(0)  # (_CAP, dim, rung): at most this rung
_RAISE = const(1)  # (_RAISE, dim, rung): start here on a first session (gauge: every session)
_STEP = const(2)  # (_STEP, vector): follow-up starts from the last dose moved by vector
_ADD = const(3)  # (_ADD, adjunct)
_DROP = const(4)  # (_DROP, adjunct): wins over _ADD
_WARN = const(5)  # (_WARN, text)
_CARE = const(6)  # (_CARE, text): extra after-care line
_CAUTION = const(7)  # status at least caution
_CONTRA = const(8)  # status contraindicated
_NO_DOSE = const(9)  # show no dose

_MINIMAL = ((_CAP, _GAUGE, 0), (_CAP, _NEEDLES, NEEDLES_MIN), (_CAP, _DEPTH, 0), (_CAP, _MANIP, 0))
_FEWER_BASIC = ((_CAP, _NEEDLES, NEEDLES_MIN), (_CAP, _MANIP, 0))
_LESS_INTENSE = ((_CAP, _NEEDLES, NEEDLES_MIN), (_CAP, _DEPTH, 1), (_CAP, _MANIP, 1))


def _contra(text):
    return ((_CONTRA,), (_WARN, "Avoid needling: " + text))


# (rule id, trigger, effects). A trigger is a tuple of clauses that must all hold; a clause
# is a fact tag, or a tuple of tags of which any one will do. Tags come from _facts().
RULES = (
    ("CI-NEEDLE-PHOBIA", ("needle_phobia",), _contra("needle phobia")),
    ("CI-INJECTION", ("injection_reaction",), _contra("abnormal injection reactions")),
    ("CI-LYMPHEDEMA", ("lymphedema",), _contra("lymphedema")),
    ("CI-BLEEDING", ("bleeding_disorder",), _contra("blood-clotting disorder")),
    ("CI-IMMUNODEF", ("immunodeficiency",), _contra("immunodeficiency")),
    (
        "CI-GATE",
        ("contraindicated", "no_override"),
        ((_NO_DOSE,), (_WARN, "No dose: needling needs a recorded clinician override")),
    ),
    (
        "CI-OVERRIDE",
        ("contraindicated", "override"),
        _MINIMAL + ((_WARN, "Clinician override recorded: minimal dose"),),
    ),
    ("CA-CHILD", ("child",), ((_CAUTION,), (_WARN, "Under 12: conservative dose")) + _MINIMAL),
    (
        "CA-PREGNANCY-T1",
        ("pregnancy_first_trimester",),
        ((_CAUTION,), (_WARN, "First trimester: conservative dose, no e-stim"), (_DROP, "e-stim"))
        + _MINIMAL,
    ),
    ("F-OLDER", ("older",), _FEWER_BASIC),
    ("F-SLOW-HEALING", (("diabetes", "cancer"),), _FEWER_BASIC),
    (
        "F-INFLAMMATION",
        (("crohns", "fibromyalgia"),),
        (
            (_CAP, _GAUGE, 0),
            (_CAP, _MANIP, 0),
            (_WARN, "Systemic inflammation: no pistoning, rotation or tenting"),
        ),
    ),
    ("F-SENSITIVE", (("fibromyalgia", "chronic_fatigue"),), ((_CAP, _GAUGE, 0),)),
    (
        "F-ACUTE",
        ("acute_injury",),
        ((_CAP, _DEPTH, 0), (_CAP, _MANIP, 0), (_ADD, "microneedling")),
    ),
    ("F-ILLNESS", ("recent_illness",), _LESS_INTENSE),
    ("F-STRESS", ("high_stress",), _LESS_INTENSE),
    (
        "F-EXERCISE",
        ("recent_exercise",),
        ((_CAP, _NEEDLES, NEEDLES_MIN), (_CAP, _DEPTH, 1), (_CAP, _MANIP, 0), (_ADD, "e-stim")),
    ),
    ("Q-HIGH", ("qst_high",), ((_CAP, _MANIP, 0),)),
    # Sensitised: start superficial, then depth progresses one rung a session (seed 000).
    ("Q-HIGH-START", ("qst_high", "first_session"), ((_CAP, _DEPTH, 0),)),
    ("Q-LOW", ("qst_low",), ((_RAISE, _GAUGE, 4), (_RAISE, _DEPTH, 2), (_RAISE, _MANIP, 3))),
    ("F-CHRONIC-START", ("chronic", "first_session"), ((_CAP, _MANIP, 0),)),
    (
        "S-THORAX",
        ("thorax",),
        (
            (_CAP, _DEPTH, 0),
            (_WARN, "Thorax: pneumothorax risk, depth capped at superficial"),
            (_CARE, "Breathless or chest pain in the next days: seek care now."),
        ),
    ),
    ("P-RESPONSE-NONE", ("follow_up", "response_none"), ((_STEP, STEP_UP),)),
    ("P-TOLERATED", ("follow_up", "response_tolerated"), ((_STEP, STEP_UP),)),
    (
        "P-FLARE",
        ("follow_up", "response_flare"),
        ((_STEP, STEP_DOWN), (_WARN, "Flare after the last session: one rung down")),
    ),
    (
        "P-HOLD",
        ("follow_up", "response_unknown"),
        ((_STEP, STEP_HOLD), (_WARN, "No response recorded: last dose repeated")),
    ),
    (
        "P-NO-LAST-DOSE",
        ("returning", "no_last_dose"),
        ((_WARN, "No last dose given: first-session dose"),),
    ),
)

# Seeds 001, 002: printed with every dose.
AFTERCARE = (
    "No NSAIDs or ice for 24 h.",
    "Sore 24-48 h, like after a hard workout.",
    "Bruising may show; fades in days.",
    "No strenuous activity today; stretching is fine.",
)

_STATUSES = ("ok", "caution", "contraindicated")


def qst_category(qst_z):
    if qst_z >= QST_HIGH_Z:
        return "high"
    if qst_z <= QST_LOW_Z:
        return "low"
    return "normal"


def _facts(case):
    tags = set(case["conditions"])
    tags.update(case["contraindications"])
    for flag in ("acute_injury", "recent_illness", "high_stress", "recent_exercise", "chronic"):
        if case[flag]:
            tags.add(flag)
    for ci in case["contraindications"]:
        if ci != "pregnancy_first_trimester":
            tags.add("contraindicated")
    tags.add("override" if case["override"] else "no_override")
    if case["age"] < CHILD_AGE_YEARS:
        tags.add("child")
    if case["age"] >= OLDER_AGE_YEARS:
        tags.add("older")
    if case["region"] == "thorax":
        tags.add("thorax")
    category = case["qst_category"]
    if case["qst_z"] is not None:
        category = qst_category(case["qst_z"])
    if category is not None:
        tags.add("qst_" + category)
    history = case["history"]
    if history is None or history["sessions"] == 0:
        tags.add("first_session")
    else:
        tags.add("returning")
        if history["last_dose"] is None:
            tags.add("first_session")
            tags.add("no_last_dose")
        else:
            tags.add("follow_up")
            response = history["last_response"]
            tags.add("response_" + (response if response is not None else "unknown"))
    return tags


def _fires(trigger, tags):
    for clause in trigger:
        if type(clause) is str:
            if clause not in tags:
                return False
        else:
            for tag in clause:
                if tag in tags:
                    break
            else:
                return False
    return True


def recommend(case):
    tags = _facts(case)
    caps = list(_CEILING)
    raises = list(DEFAULT_DOSE)
    step = None
    status = 0
    show_dose = True
    added = []
    dropped = []
    warnings = []
    aftercare = list(AFTERCARE)
    fired = []
    for rule_id, trigger, effects in RULES:
        if not _fires(trigger, tags):
            continue
        fired.append(rule_id)
        for effect in effects:
            op = effect[0]
            if op == _CAP:
                if effect[2] < caps[effect[1]]:
                    caps[effect[1]] = effect[2]
            elif op == _RAISE:
                if effect[2] > raises[effect[1]]:
                    raises[effect[1]] = effect[2]
            elif op == _STEP:
                step = effect[1]
            elif op == _ADD:
                added.append(effect[1])
            elif op == _DROP:
                dropped.append(effect[1])
            elif op == _WARN:
                warnings.append(effect[1])
            elif op == _CARE:
                aftercare.append(effect[1])
            elif op == _CAUTION:
                status = max(status, 1)
            elif op == _CONTRA:
                status = 2
            elif op == _NO_DOSE:
                show_dose = False
    result = {
        "status": _STATUSES[status],
        "rules": fired,
        "ruleset": RULESET,
        "warnings": warnings,
    }
    if not show_dose:
        result.update(
            gauge_mm=None,
            needles=None,
            depth=None,
            manipulation=None,
            adjuncts=[],
            sessions_per_week=None,
            aftercare=[],
        )
        return result
    last = case["history"]["last_dose"] if step is not None else None
    dose = _dose(raises, caps, step, last)
    result.update(
        gauge_mm=GAUGES_MM_X100[dose[_GAUGE]] / 100,
        needles=dose[_NEEDLES],
        depth=DEPTHS[dose[_DEPTH]],
        manipulation=MANIPULATIONS[dose[_MANIP]],
        adjuncts=[a for a in ADJUNCTS if a in added and a not in dropped],
        sessions_per_week=list(SESSIONS_PER_WEEK),
        aftercare=aftercare,
    )
    return result


def _dose(raises, caps, step, last):
    # First session: start at the default, lifted by any raise. Follow-up: start from the
    # last dose moved one rung by the response; gauge is chosen afresh from today's
    # factors, and after a flare it is also held one rung below the last gauge.
    dose = [0, 0, 0, 0]
    for dim in range(4):
        if last is None or dim == _GAUGE:
            value = raises[dim]
            if last is not None and step[dim] < 0:
                value = min(value, last[dim] + step[dim])
        else:
            value = last[dim] + step[dim]
        dose[dim] = max(_FLOOR[dim], min(value, caps[dim]))
    return dose

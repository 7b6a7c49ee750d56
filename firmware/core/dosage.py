# Dosage rules: the seeds' factors as an ordered table of data. Each rule that fires is
# listed in the result, so every recommendation can be explained and audited.
# "Start low, go slow": on every dose dimension the most conservative effect wins.
# Input is a case from core.case.parse_case (already validated); see docs/dosage-rules.md.
from micropython import const

from core.vocab import (
    ADJUNCTS,
    DEPTHS,
    GAUGES_MM_X100,
    MANIPULATIONS,
    NEEDLES_MAX,
    NEEDLES_MIN,
    STATUSES,
    qst_category,
)

RULESET = "2026.11-r1"

# A dose is four rungs: (gauge index, needle count, depth index, manipulation index),
# on the ladders of core.vocab.
SESSIONS_PER_WEEK = (1, 2)  # seed 000: "1-2 sessions weekly"
CHILD_AGE_YEARS = const(12)  # seed 001: "Children under 12 ... should be careful"

# --- Project choices: the seeds name no value for these. A clinic may tune them. ---
OLDER_AGE_YEARS = const(65)  # "older adults" heal more slowly (seed 000)
DEFAULT_DOSE = (3, 6, 1, 1)  # first session, no factor: 0.25 mm, 6, intermediate, rotation
# QST category cut-offs: core.vocab.QST_HIGH_Z_X100 and QST_LOW_Z_X100 (z >= 1.0 high,
# z <= -1.0 low), shared with core.qst so the device scores and doses alike.
# --- end of project choices ---

_GAUGE = const(0)
_NEEDLES = const(1)
_DEPTH = const(2)
_MANIP = const(3)
_FLOOR = (0, NEEDLES_MIN, 0, 0)
_CEILING = (len(GAUGES_MM_X100) - 1, NEEDLES_MAX, len(DEPTHS) - 1, len(MANIPULATIONS) - 1)

# Effects are (op, dimension or 0, value) triples of ints; text rides in the row itself.
_CAP = const(0)  # at most this rung
_RAISE = const(1)  # start at this rung on a first session (gauge: every session)
_STEP = const(2)  # on a follow-up, move the last dose's rung by this much
_ADD = const(3)  # adjunct index into ADJUNCTS
_DROP = const(4)  # adjunct index; wins over _ADD
_STATUS = const(5)  # at least this index into STATUSES
_NO_DOSE = const(6)  # show no dose
_MICRONEEDLING = const(0)
_ESTIM = const(1)
_CAUTION = const(1)
_CONTRA = const(2)

_MINIMAL = ((_CAP, _GAUGE, 0), (_CAP, _NEEDLES, NEEDLES_MIN), (_CAP, _DEPTH, 0), (_CAP, _MANIP, 0))
_FEWER_BASIC = ((_CAP, _NEEDLES, NEEDLES_MIN), (_CAP, _MANIP, 0))
# Project choice: "reduce intensity" = fewest needles, no deep needling, up to rotation.
_LESS_INTENSE = ((_CAP, _NEEDLES, NEEDLES_MIN), (_CAP, _DEPTH, 1), (_CAP, _MANIP, 1))
_CONTRAINDICATED = ((_STATUS, 0, _CONTRA),)
# One rung of progression (project choice): gauge follows today's sensitivity instead.
_STEP_UP = ((_STEP, _NEEDLES, 2), (_STEP, _DEPTH, 1), (_STEP, _MANIP, 1))
_STEP_DOWN = ((_STEP, _GAUGE, -1), (_STEP, _NEEDLES, -2), (_STEP, _DEPTH, -1), (_STEP, _MANIP, -1))

# (rule id, trigger, effects, warning or None, extra after-care line or None).
# A trigger is a tuple of clauses that must all hold; a clause is a fact tag, or a tuple of
# tags of which any one will do. Tags come from _facts().
RULES = (
    (
        "CI-NEEDLE-PHOBIA",
        ("needle_phobia",),
        _CONTRAINDICATED,
        "Avoid needling: needle phobia",
        None,
    ),
    (
        "CI-INJECTION",
        ("injection_reaction",),
        _CONTRAINDICATED,
        "Avoid needling: abnormal injection reactions",
        None,
    ),
    ("CI-LYMPHEDEMA", ("lymphedema",), _CONTRAINDICATED, "Avoid needling: lymphedema", None),
    (
        "CI-BLEEDING",
        ("bleeding_disorder",),
        _CONTRAINDICATED,
        "Avoid needling: blood-clotting disorder",
        None,
    ),
    (
        "CI-IMMUNODEF",
        ("immunodeficiency",),
        _CONTRAINDICATED,
        "Avoid needling: immune deficiency",
        None,
    ),
    (
        "CI-GATE",
        ("contraindicated", "no_override"),
        ((_NO_DOSE, 0, 0),),
        "No dose: needling needs a recorded clinician override",
        None,
    ),
    (
        "CI-OVERRIDE",
        ("contraindicated", "override"),
        _MINIMAL,
        "Clinician override recorded: minimal dose",
        None,
    ),
    (
        "CA-CHILD",
        ("child",),
        ((_STATUS, 0, _CAUTION),) + _MINIMAL,
        "Under 12: conservative dose",
        None,
    ),
    (
        "CA-PREGNANCY-T1",
        ("pregnancy_first_trimester",),
        ((_STATUS, 0, _CAUTION), (_DROP, 0, _ESTIM)) + _MINIMAL,
        "First trimester: conservative dose, no e-stim",
        None,
    ),
    ("F-OLDER", ("older",), _FEWER_BASIC, None, None),
    ("F-SLOW-HEALING", (("diabetes", "cancer"),), _FEWER_BASIC, None, None),
    (
        "F-INFLAMMATION",
        (("crohns", "fibromyalgia"),),
        ((_CAP, _GAUGE, 0), (_CAP, _MANIP, 0)),
        "Systemic inflammation: no pistoning, rotation or tenting",
        None,
    ),
    ("F-SENSITIVE", (("fibromyalgia", "chronic_fatigue"),), ((_CAP, _GAUGE, 0),), None, None),
    (
        "F-ACUTE",
        ("acute_injury",),
        ((_CAP, _DEPTH, 0), (_CAP, _MANIP, 0), (_ADD, 0, _MICRONEEDLING)),
        None,
        None,
    ),
    ("F-ILLNESS", ("recent_illness",), _LESS_INTENSE, None, None),
    ("F-STRESS", ("high_stress",), _LESS_INTENSE, None, None),
    (
        "F-EXERCISE",
        ("recent_exercise",),
        # Project choice: "light needling" = fewest needles, no deep needling, basic only.
        ((_CAP, _NEEDLES, NEEDLES_MIN), (_CAP, _DEPTH, 1), (_CAP, _MANIP, 0), (_ADD, 0, _ESTIM)),
        None,
        None,
    ),
    ("Q-HIGH", ("qst_high",), ((_CAP, _MANIP, 0),), None, None),
    # Sensitised: start superficial, then depth progresses one rung a session (seed 000).
    ("Q-HIGH-START", ("qst_high", "first_session"), ((_CAP, _DEPTH, 0),), None, None),
    (
        "Q-LOW",
        ("qst_low",),
        ((_RAISE, _GAUGE, 4), (_RAISE, _DEPTH, 2), (_RAISE, _MANIP, 3)),
        None,
        None,
    ),
    ("F-CHRONIC-START", ("chronic", "first_session"), ((_CAP, _MANIP, 0),), None, None),
    (
        "S-THORAX",
        ("thorax",),
        ((_CAP, _DEPTH, 0),),
        "Thorax: pneumothorax risk, depth capped at superficial",
        "Breathless or chest pain in the next days: seek care now.",
    ),
    ("P-RESPONSE-NONE", ("follow_up", "response_none"), _STEP_UP, None, None),
    ("P-TOLERATED", ("follow_up", "response_tolerated"), _STEP_UP, None, None),
    (
        "P-FLARE",
        ("follow_up", "response_flare"),
        _STEP_DOWN,
        "Flare after the last session: one rung down",
        None,
    ),
    (
        "P-HOLD",
        ("follow_up", "response_unknown"),
        (),
        "No response recorded: last dose repeated",
        None,
    ),
    (
        "P-NO-LAST-DOSE",
        ("returning", "no_last_dose"),
        (),
        "No last dose given: first-session dose",
        None,
    ),
)

# Seeds 001, 002: printed with every dose.
AFTERCARE = (
    "No NSAIDs or ice for 24 h.",
    "Sore 24-48 h, like after a hard workout.",
    "Bruising may show; fades in days.",
    "No strenuous activity today; stretching is fine.",
)


def _facts(case):
    tags = set(case["conditions"])
    tags.update(case["contraindications"])
    tags.update(case["flags"])
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
        category = qst_category(case["qst_z"] * 100)
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
    raises = [rung for rung in DEFAULT_DOSE]
    steps = [0, 0, 0, 0]
    status = 0
    show_dose = True
    adjuncts = [False] * len(ADJUNCTS)
    dropped = [False] * len(ADJUNCTS)
    warnings = []
    aftercare = [line for line in AFTERCARE]
    fired = []
    for rule_id, trigger, effects, warning, care in RULES:
        if not _fires(trigger, tags):
            continue
        fired.append(rule_id)
        if warning is not None:
            warnings.append(warning)
        if care is not None:
            aftercare.append(care)
        for op, dim, value in effects:
            if op == _CAP:
                caps[dim] = min(caps[dim], value)
            elif op == _RAISE:
                raises[dim] = max(raises[dim], value)
            elif op == _STEP:
                steps[dim] = value
            elif op == _ADD:
                adjuncts[value] = True
            elif op == _DROP:
                dropped[value] = True
            elif op == _STATUS:
                status = max(status, value)
            elif op == _NO_DOSE:
                show_dose = False
    result = {
        "status": STATUSES[status],
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
    last = case["history"]["last_dose"] if "follow_up" in tags else None
    dose = _dose(raises, caps, steps, last)
    result.update(
        gauge_mm=GAUGES_MM_X100[dose[_GAUGE]] / 100,
        needles=dose[_NEEDLES],
        depth=DEPTHS[dose[_DEPTH]],
        manipulation=MANIPULATIONS[dose[_MANIP]],
        adjuncts=[ADJUNCTS[i] for i in range(len(ADJUNCTS)) if adjuncts[i] and not dropped[i]],
        sessions_per_week=list(SESSIONS_PER_WEEK),
        aftercare=aftercare,
    )
    return result


def _dose(raises, caps, steps, last):
    # First session: start at the default, lifted by any raise. Follow-up: start from the
    # last dose moved one rung by the response; gauge is chosen afresh from today's
    # factors, and after a flare it is also held one rung below the last gauge.
    dose = [0, 0, 0, 0]
    for dim in range(4):
        if last is None or dim == _GAUGE:
            value = raises[dim]
            if last is not None and steps[dim] < 0:
                value = min(value, last[dim] + steps[dim])
        else:
            value = last[dim] + steps[dim]
        dose[dim] = max(_FLOOR[dim], min(value, caps[dim]))
    return dose

# Dosage rules, ruleset r2: the seeds' "Start low, go slow" as the model (docs/dosage-rules.md).
# Needles, depth and manipulation are ladders of rungs; the gauge follows the patient type.
# Every session, today's factors and TODAY's QST set a ceiling on each (the lowest wins). A
# first session starts on the start rungs; a follow-up moves from the dose actually given:
# one rung of one ladder up after "tolerated" or "none", one rung down on every ladder after
# a flare; the result is always clipped to today's ceilings. The rules are an ordered table
# of data; each that fires is listed in the result, and each dimension names the rule that
# set it, in words too (reasons).
# Input is a case from core.case.parse_case (already validated).
from micropython import const

from core.vocab import (
    ADJUNCTS,
    AFTERCARE_ICE,
    DEPTHS,
    GAUGES_MM_X100,
    MANIPULATIONS,
    NEEDLES_MAX,
    NEEDLES_MIN,
    QST_HIGH_Z_X100,
    QST_LOW_Z_X100,
    STATUSES,
    qst_category,
)

RULESET = "2026.12-r2"

SESSIONS_PER_WEEK = (1, 2)  # seed 000: "1-2 sessions weekly"
CHILD_AGE_YEARS = const(12)  # seed 001: "Children under 12 ... should be careful"
DIMENSIONS = ("gauge_mm", "needles", "depth", "manipulation")
# Clinic settings a caller may pass as recommend(case, config); these are the defaults.
DEFAULT_CONFIG = {
    "qst_high_z_x100": QST_HIGH_Z_X100,
    "qst_low_z_x100": QST_LOW_Z_X100,
    "aftercare_ice": "avoid",
}

# --- Project choices: the seeds name no value for these. A clinic may tune them. ---
OLDER_AGE_YEARS = const(65)  # "older adults" heal more slowly (seed 000)
# Lung risk (seed 001: pneumothorax). Thorax: over the ribs. Over the lung apex: the neck, the
# shoulder girdle and the upper trapezius. An unknown region is treated as the thorax.
THORAX_REGIONS = ("thorax",)
LUNG_APEX_REGIONS = ("head_neck", "shoulder", "upper_trapezius")
# Which ladder may climb at a follow-up: they take turns by session number, in this order.
# A ladder at the top of what today's QST allows passes its turn on; a ladder held down by a
# patient factor keeps it (the dose holds), so adding a factor never moves the climb elsewhere.
_CLIMB_ORDER = (2, 3, 1)  # depth, manipulation, needles (the gauge follows the patient type)
# --- end of project choices ---

_GAUGE = const(0)
_NEEDLES = const(1)
_DEPTH = const(2)
_MANIP = const(3)
_BOTTOM = (0, NEEDLES_MIN, 0, 0)
_TOP = (len(GAUGES_MM_X100) - 1, NEEDLES_MAX, len(DEPTHS) - 1, len(MANIPULATIONS) - 1)

# An effect is one small int, op << 8 | dimension << 4 | value, built by the helpers below:
# a tuple of small ints costs a fraction of the heap of a tuple of tuples (make bench).
_CAP = const(0)  # a ceiling from a patient factor: at most this rung today
_QST_CAP = const(1)  # a ceiling from today's QST; it also bounds whose turn it is to climb
_START = const(2)  # first session: start at most at this rung
_ADD = const(3)  # adjunct index into ADJUNCTS
_DROP = const(4)  # adjunct index; wins over _ADD
_DROP_ALL = const(5)  # no adjuncts at all
_STATUS = const(6)  # at least this index into STATUSES
_NO_DOSE = const(7)  # show no dose
_CLIMB = const(8)  # follow-up: one rung up on the ladder whose turn it is
_KEEP = const(9)  # follow-up: the ladders that did not climb stay where they were
_DOWN = const(10)  # follow-up: one rung down on every ladder
_HOLD = const(11)  # follow-up: the last dose again
_MICRONEEDLING = const(0)
_ESTIM = const(1)
_CAUTION = const(1)
_CONTRAINDICATED = const(2)


def _op(op, dim=0, value=0):
    return op << 8 | dim << 4 | value


def _cap(dim, rung):
    return _op(_CAP, dim, rung)


def _qst_cap(dim, rung):
    return _op(_QST_CAP, dim, rung)


def _start(dim, rung):
    return _op(_START, dim, rung)


def _add(adjunct):
    return _op(_ADD, 0, adjunct)


def _drop(adjunct):
    return _op(_DROP, 0, adjunct)


def _status(status):
    return _op(_STATUS, 0, status)


_MINIMAL = (_cap(_GAUGE, 0), _cap(_NEEDLES, NEEDLES_MIN), _cap(_DEPTH, 0), _cap(_MANIP, 0))
_CONTRA = (_status(_CONTRAINDICATED),)
_CAREFUL = (_status(_CAUTION), _drop(_ESTIM)) + _MINIMAL
_FEWER_BASIC = (_cap(_NEEDLES, NEEDLES_MIN), _cap(_MANIP, 0))
# Project choice: "reduce intensity" = fewest needles, never deep, up to rotation, no 0.30.
_LESS_INTENSE = (_cap(_GAUGE, 3), _cap(_NEEDLES, NEEDLES_MIN), _cap(_DEPTH, 1), _cap(_MANIP, 1))
# Project choice: "light needling" = fewest needles, superficial, basic, no 0.30.
_LIGHT = (_cap(_GAUGE, 3), _cap(_NEEDLES, NEEDLES_MIN), _cap(_DEPTH, 0), _cap(_MANIP, 0))
_LUNG_CARE = "Short of breath or chest pain in the next days: get care now."
_CONDITIONS_CHRONIC = ("diabetes", "cancer", "crohns", "fibromyalgia", "chronic_fatigue")

# (rule id, trigger, effects, warning or None, extra after-care line or None, phrase).
# A trigger is a tuple of clauses that must all hold; a clause is a fact tag, or a tuple of
# tags of which any one will do (tags: _facts). The phrase says why, after the value it set:
# "0.16 mm: a sensitive patient"; "a|b|c|d|e" gives one per dimension (DIMENSIONS order) and
# a last one for anything else.
# Order matters: when several rules set the same rung, the first one is named as the reason.
RULES = (
    ("CI-NEEDLE-PHOBIA", ("needle_phobia",), _CONTRA, "Avoid needling: needle phobia", None,
     "needle phobia"),
    ("CI-INJECTION", ("injection_reaction",), _CONTRA,
     "Avoid needling: abnormal injection reactions", None, "injection reactions"),
    ("CI-LYMPHEDEMA", ("lymphedema",), _CONTRA, "Avoid needling: lymphedema", None,
     "lymphedema"),
    ("CI-BLEEDING", ("bleeding_disorder",), _CONTRA, "Avoid needling: blood-clotting disorder",
     None, "blood-clotting disorder"),
    ("CI-IMMUNODEF", ("immunodeficiency",), _CONTRA, "Avoid needling: immune deficiency", None,
     "immune deficiency"),
    ("CI-GATE", ("not_overridden",), (_op(_NO_DOSE),),
     "No dose until the clinician overrides each one", None, "contraindicated"),
    ("CI-OVERRIDE", ("overridden",), _MINIMAL + (_op(_DROP_ALL),),
     "Override: minimal dose, no adjuncts", None, "clinician override"),
    ("CA-CHILD", ("child",), _CAREFUL, "Under 12: minimal dose, no e-stim", None, "under 12"),
    ("CA-PREGNANCY-T1", ("pregnancy_first_trimester",), _CAREFUL,
     "First trimester: minimal dose, no e-stim", None, "first trimester"),
    ("S-THORAX", ("thorax",), (_cap(_DEPTH, 0), _cap(_MANIP, 1)),
     "Thorax: lung below; superficial, no tenting or pistoning", _LUNG_CARE, "thorax, lung below"),
    ("S-LUNG-APEX", ("lung_apex",), (_cap(_DEPTH, 1),), "Over the lung apex: never deep",
     _LUNG_CARE, "over the lung apex"),
    ("S-NO-REGION", ("no_region",), (_cap(_DEPTH, 0), _cap(_MANIP, 1)),
     "No region given: capped as thorax; enter the region", _LUNG_CARE, "region not given"),
    ("F-OLDER", ("older",), _FEWER_BASIC, None, None, "65 or over, slow healing"),
    ("F-SLOW-HEALING", (_CONDITIONS_CHRONIC,), _FEWER_BASIC, None, None,
     "slow-healing illness"),
    ("F-SENSITIVE", (("fibromyalgia", "chronic_fatigue"),), (_cap(_GAUGE, 0),), None, None,
     "a sensitive patient"),
    ("F-INFLAMMATION", (("crohns", "fibromyalgia"),), (_cap(_GAUGE, 0), _cap(_MANIP, 0)),
     "Systemic inflammation: no pistoning, rotation or tenting", None, "systemic inflammation"),
    ("F-NO-QST", (("crohns", "fibromyalgia", "chronic_fatigue"), "no_qst"),
     (_cap(_DEPTH, 0),), "No QST: depth stays superficial until PPT is measured", None,
     "no QST to guide depth"),
    ("F-ACUTE", ("acute_injury",),
     (_cap(_GAUGE, 3), _cap(_DEPTH, 0), _cap(_MANIP, 0), _add(_MICRONEEDLING)),
     None, None, "acute injury"),
    ("F-ILLNESS", ("recent_illness",), _LESS_INTENSE, None, None, "recent illness"),
    ("F-STRESS", ("high_stress",), _LESS_INTENSE, None, None, "high stress"),
    ("F-EXERCISE", ("recent_exercise",), _LIGHT + (_add(_ESTIM),), None, None,
     "light, after hard exercise"),
    ("Q-HIGH", ("qst_high",), (_cap(_GAUGE, 0), _cap(_DEPTH, 0), _cap(_MANIP, 0)), None,
     None, "high QST, sensitised"),
    ("Q-CENSORED", ("qst_censored_low",), (), "QST censored at the ceiling: not counted as low",
     None, "QST censored"),
    ("Q-NOT-LOW", ("qst_not_low",),
     (_qst_cap(_GAUGE, 3), _qst_cap(_DEPTH, 1), _qst_cap(_MANIP, 2)), None, None,
     "0.30 needs a low QST|QST not low|deep needs a low QST|pistoning needs low QST|QST not low"),
    ("Q-LOW", ("qst_low",), (_start(_GAUGE, 4),), None, None, "low QST, resilient"),
    ("F-CHRONIC-START", ("chronic", "start"), (_start(_MANIP, 0),), None, None,
     "chronic: start basic"),
    ("START", ("start",), (_start(_NEEDLES, 6), _start(_DEPTH, 1), _start(_MANIP, 0)),
     None, None, "starting dose"),
    ("P-NO-LAST-DOSE", ("no_last", "start"), (), "No last dose entered: starting dose again",
     None, "starting dose"),
    ("P-FLARE-NO-LAST", ("no_last", "response_flare"), _MINIMAL,
     "Flare, no last dose entered: minimal dose", None, "flare, last dose unknown"),
    ("P-NONE", ("follow_up", "response_none"), (_op(_CLIMB),), None, None,
     "no change, up one rung"),
    ("P-TOLERATED", ("follow_up", "response_tolerated"), (_op(_CLIMB),), None, None,
     "tolerated, up one rung"),
    ("P-KEEP", ("follow_up", ("response_none", "response_tolerated")), (_op(_KEEP),), None,
     None, "as last session"),
    ("P-FLARE", ("follow_up", "response_flare"), (_op(_DOWN),),
     "Flare after the last session: one rung down", None, "flare last session"),
    ("P-HOLD", ("follow_up", "response_unknown"), (_op(_HOLD),),
     "No response entered: last dose repeated", None, "no response entered"),
)  # fmt: skip

# Seeds 001, 002, 004: printed with every dose. The ice line is a clinic setting.
AFTERCARE = (
    "No NSAIDs for 24 h; keep taking prescribed medicines.",
    "Sore 24-48 h, like after a hard workout.",
    "Bruising may show; fades in days.",
    "No strenuous activity today; stretching is fine.",
)
AFTERCARE_ICE_LINES = ("No ice on the area for 24 h.", "Ice on the area may ease soreness.")


def _z_x100(z):
    # z to 0.01 as the device scores it (half away from zero), so a typed z and a measured
    # one meet the same cut-off; integers also compare alike on single-precision boards.
    scaled = z * 100
    return int(scaled + 0.5) if scaled >= 0 else -int(0.5 - scaled)


def _settings(config):
    if config is None:
        return QST_HIGH_Z_X100, QST_LOW_Z_X100, 0
    for key in config:
        if key not in DEFAULT_CONFIG:
            raise ValueError("config: unknown setting %s" % key)
    high = config.get("qst_high_z_x100", QST_HIGH_Z_X100)
    low = config.get("qst_low_z_x100", QST_LOW_Z_X100)
    if type(high) is not int or type(low) is not int or not low < 0 < high:
        raise ValueError("config: need whole numbers qst_low_z_x100 < 0 < qst_high_z_x100")
    ice = config.get("aftercare_ice", "avoid")
    if ice not in AFTERCARE_ICE:
        raise ValueError("config: aftercare_ice is one of " + ", ".join(AFTERCARE_ICE))
    return high, low, AFTERCARE_ICE.index(ice)


def _facts(case, high_x100, low_x100):
    tags = set(case["conditions"])
    tags.update(case["contraindications"])
    tags.update(case["flags"])
    contraindicated = False
    pending = False
    for name in case["contraindications"]:
        if name != "pregnancy_first_trimester":
            contraindicated = True
            pending = pending or name not in case["overrides"]
    if contraindicated:
        tags.add("not_overridden" if pending else "overridden")
    if case["age"] < CHILD_AGE_YEARS:
        tags.add("child")
    if case["age"] >= OLDER_AGE_YEARS:
        tags.add("older")
    region = case["region"]
    if region is None:
        tags.add("no_region")
    elif region in THORAX_REGIONS:
        tags.add("thorax")
    elif region in LUNG_APEX_REGIONS:
        tags.add("lung_apex")
    category = case["qst_category"]
    if case["qst_z"] is not None:
        category = qst_category(_z_x100(case["qst_z"]), high_x100, low_x100)
    if category == "low" and case["qst_censored"]:
        # A patient who never pressed the stop button is not proof of robustness.
        tags.add("qst_censored_low")
        category = "normal"
    if category is None:
        tags.add("no_qst")
    else:
        tags.add("qst_" + category)
    if category != "low":
        tags.add("qst_not_low")
    history = case["history"]
    if history is None or history["sessions"] == 0:
        tags.add("start")
        return tags
    response = history["last_response"]
    tags.add("response_" + (response if response is not None else "unknown"))
    if history["last_dose"] is not None:
        tags.add("follow_up")
    else:
        tags.add("no_last")
        if response != "flare":
            tags.add("start")
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


def _climb_dim(last, sessions, turn_top):
    # The ladder whose turn it is this session, passed on while a ladder is at the top of
    # what today's QST allows; -1 when every ladder is there.
    turns = len(_CLIMB_ORDER)
    first = (sessions - 1) % turns
    for i in range(turns):
        dim = _CLIMB_ORDER[(first + i) % turns]
        if last[dim] < turn_top[dim]:
            return dim
    return -1


def recommend(case, config=None):
    high_x100, low_x100, ice = _settings(config)
    tags = _facts(case, high_x100, low_x100)
    caps = list(_TOP)
    cap_rule = [-1, -1, -1, -1]
    turn_top = list(_TOP)
    starts = list(_TOP)
    start_rule = [-1, -1, -1, -1]
    move = -1  # _CLIMB, _DOWN or _HOLD on a follow-up
    move_rule = -1
    keep_rule = -1
    status = 0
    show_dose = True
    adjunct_rule = [-1] * len(ADJUNCTS)
    dropped = [False] * len(ADJUNCTS)
    warnings = []
    aftercare = [AFTERCARE[0], AFTERCARE_ICE_LINES[ice]]  # the ice line second
    for i in range(1, len(AFTERCARE)):
        aftercare.append(AFTERCARE[i])
    fired = []
    for index in range(len(RULES)):
        rule_id, trigger, effects, warning, care, phrase = RULES[index]
        if not _fires(trigger, tags):
            continue
        fired.append(rule_id)
        if warning is not None:
            if trigger[0] in case["overrides"]:  # a contraindication's row, overridden
                warning = "Override recorded: " + phrase
            warnings.append(warning)
        if care is not None and care not in aftercare:
            aftercare.append(care)
        for effect in effects:
            op = effect >> 8
            dim = effect >> 4 & 15
            value = effect & 15
            if op == _CAP or op == _QST_CAP:
                if value < caps[dim]:
                    caps[dim] = value
                    cap_rule[dim] = index
                if op == _QST_CAP:
                    turn_top[dim] = min(turn_top[dim], value)
            elif op == _START:
                if value < starts[dim] or start_rule[dim] < 0:
                    starts[dim] = value
                    start_rule[dim] = index
            elif op == _ADD:
                if adjunct_rule[value] < 0:
                    adjunct_rule[value] = index
            elif op == _DROP:
                dropped[value] = True
            elif op == _DROP_ALL:
                dropped = [True] * len(ADJUNCTS)
            elif op == _STATUS:
                status = max(status, value)
            elif op == _NO_DOSE:
                show_dose = False
            elif op == _KEEP:
                keep_rule = index
            else:  # _CLIMB, _DOWN, _HOLD
                move = op
                move_rule = index
    if not show_dose:
        return _result(status, fired, warnings, case, None, [], [], [])
    # Where the dose comes from: the start rungs, or the last dose moved by the response.
    # The gauge is the patient type's (sensitive 0.16 by a cap, resilient 0.30 by Q-LOW) at
    # every session; it never rises after a flare or without a response.
    climbed = -1
    dose = starts
    source = start_rule
    if move >= 0:
        history = case["history"]
        last = history["last_dose"]
        dose = list(last)
        source = [move_rule] * 4
        if move == _DOWN:
            for dim in range(4):
                dose[dim] = max(_BOTTOM[dim], last[dim] - 1)
        elif move == _CLIMB:
            climbed = _climb_dim(last, history["sessions"], turn_top)
            for dim in range(4):
                source[dim] = move_rule if dim == climbed else keep_rule
            if climbed >= 0:
                dose[climbed] += 1
        if move == _CLIMB or dose[_GAUGE] > starts[_GAUGE]:
            dose[_GAUGE] = starts[_GAUGE]
            source[_GAUGE] = start_rule[_GAUGE]
    # Clip to today's ceilings. The reason is the ceiling where it binds (or holds a rung
    # that did not climb), else whatever set the rung.
    for dim in range(4):
        cap = caps[dim]
        if dose[dim] > cap or (dose[dim] == cap and cap < _TOP[dim] and dim != climbed):
            dose[dim] = cap
            source[dim] = cap_rule[dim]
    shown = (
        GAUGES_MM_X100[dose[_GAUGE]] / 100,
        dose[_NEEDLES],
        DEPTHS[dose[_DEPTH]],
        MANIPULATIONS[dose[_MANIP]],
    )
    reasons = []
    for dim in range(4):
        reasons.append(_reason(DIMENSIONS[dim], shown[dim], source[dim]))
    adjuncts = []
    for i in range(len(ADJUNCTS)):
        if adjunct_rule[i] >= 0 and not dropped[i]:
            adjuncts.append(ADJUNCTS[i])
            reasons.append(_reason(ADJUNCTS[i], ADJUNCTS[i], adjunct_rule[i]))
    return _result(status, fired, warnings, case, shown, adjuncts, aftercare, reasons)


def _result(status, fired, warnings, case, shown, adjuncts, aftercare, reasons):
    # One dict literal: built at its final size, never grown (heap per evaluation, make bench).
    # The immutable parts are shared tuples, not fresh lists.
    return {
        "status": STATUSES[status],
        "gauge_mm": None if shown is None else shown[_GAUGE],
        "needles": None if shown is None else shown[_NEEDLES],
        "depth": None if shown is None else shown[_DEPTH],
        "manipulation": None if shown is None else shown[_MANIP],
        "adjuncts": adjuncts,
        "sessions_per_week": None if shown is None else SESSIONS_PER_WEEK,
        "warnings": warnings,
        "aftercare": aftercare,
        "reasons": reasons,
        "rules": fired,
        "ruleset": RULESET,
        "overrides": case["overrides"],
    }


def _reason(dimension, value, index):
    rule_id = None if index < 0 else RULES[index][0]
    return {
        "dimension": dimension,
        "rule": rule_id,
        "text": reason_text(dimension, value, rule_id),
    }


def reason_text(dimension, value, rule_id):
    """The plain sentence for one dose dimension (or adjunct) set to value by rule_id, e.g.
    reason_text("gauge_mm", 0.16, "F-SENSITIVE") -> "0.16 mm: a sensitive patient". Pure, so
    a record may keep only the rule id and the laptop rebuild the words."""
    phrase = "ladder default"
    for row in RULES:
        if row[0] == rule_id:
            phrase = row[5]
            break
    if "|" in phrase:  # one per dimension, then one for anything else: slice out just that
        skip = DIMENSIONS.index(dimension) if dimension in DIMENSIONS else phrase.count("|")
        start = 0
        for _ in range(skip):
            start = phrase.index("|", start) + 1
        end = phrase.find("|", start)
        phrase = phrase[start:] if end < 0 else phrase[start:end]
    if dimension == "gauge_mm":
        mm_x100 = int(value * 100 + 0.5)
        return "%d.%02d mm: %s" % (mm_x100 // 100, mm_x100 % 100, phrase)
    if dimension == "needles":
        return "%d needles: %s" % (value, phrase)
    return "%s: %s" % (value, phrase)

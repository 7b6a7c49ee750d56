"""Random dosage cases, well-formed or broken in one field, from a caller's random.Random.

One generator serves the hypothesis properties (fed by st.randoms), the seeded parity run and
the record vectors. Well-formed means core.case accepts it: no contradiction between fields.
"""

from core import case as case_mod
from core import dosage

TRUE_CONTRAINDICATIONS = tuple(
    c for c in case_mod.CONTRAINDICATIONS if c != "pregnancy_first_trimester"
)
QST_EDGES = (1.0, 0.99, -1.25, -1.24, 1.005, -1.245)  # the cut-offs and their neighbours


def _some(rng, vocabulary, p=0.25):
    return [item for item in vocabulary if rng.random() < p]


def random_dose(rng):
    """A dose as given: history.last."""
    dose = {
        "gauge_mm": rng.choice(dosage.GAUGES_MM_X100) / 100,
        "needles": rng.randint(dosage.NEEDLES_MIN, dosage.NEEDLES_MAX),
        "depth": rng.choice(dosage.DEPTHS),
        "manipulation": rng.choice(dosage.MANIPULATIONS),
    }
    if rng.random() < 0.3:
        dose["adjuncts"] = _some(rng, dosage.ADJUNCTS, 0.5)
    return dose


def random_qst(rng):
    if rng.random() < 0.6:
        z = rng.choice([rng.uniform(-10, 10), rng.uniform(-2.5, 2.5), rng.choice(QST_EDGES)])
        qst = {"z": rng.choice([z, round(z, 2), int(z)])}
    else:
        qst = {"category": rng.choice(case_mod.QST_CATEGORIES)}
    if rng.random() < 0.2 and qst.get("category") != "low":
        qst["censored"] = rng.random() < 0.7
    return qst


def random_history(rng):
    sessions = rng.choice([0, 1, 2, 3, 4, rng.randint(1, 1000)])
    history = {"sessions": sessions}
    if sessions and rng.random() < 0.8:
        history["last_response"] = rng.choice(case_mod.RESPONSES)
    if sessions and rng.random() < 0.8:
        history["last"] = random_dose(rng)
    elif sessions and rng.random() < 0.3:
        history["last"] = None
    return history


def random_case(rng):
    case = {"age": rng.choice([rng.randint(0, 120), rng.choice([0, 9, 10, 11, 12, 64, 65, 120])])}
    if rng.random() < 0.7:
        case["sex"] = rng.choice(case_mod.SEXES)
    if rng.random() < 0.5:
        case["conditions"] = _some(rng, case_mod.CONDITIONS)
    for flag in case_mod.FLAGS:
        if rng.random() < 0.4:
            case[flag] = rng.random() < 0.5
    if rng.random() < 0.85:
        case["region"] = rng.choice(case_mod.REGIONS + (None,))
    if rng.random() < 0.7:
        case["qst"] = random_qst(rng)
    if rng.random() < 0.3:
        present = _some(rng, case_mod.CONTRAINDICATIONS, 0.2)
        if case["age"] < case_mod.PREGNANCY_AGE_MIN_YEARS or case.get("sex") == "M":
            present = [c for c in present if c != "pregnancy_first_trimester"]
        case["contraindications"] = present
        overridable = [c for c in present if c in TRUE_CONTRAINDICATIONS]
        if overridable and rng.random() < 0.5:
            case["override"] = rng.choice([overridable, _some(rng, overridable, 0.5)])
    if rng.random() < 0.6:
        case["history"] = random_history(rng)
    return case


def _history(**fields):
    return lambda c, r: c.update(history=dict({"sessions": 1}, **fields))


def _last(**fields):
    return lambda c, r: c.update(history={"sessions": 2, "last": dict(random_dose(r), **fields)})


# (text the error line must contain, how to break a case so that exactly this is wrong)
BREAKERS = (
    ("age", lambda c, r: c.update(age=r.choice([-1, 121, "40", 40.5, True, None, [40]]))),
    ("age", lambda c, r: c.pop("age")),
    ("sex", lambda c, r: c.update(sex=r.choice(["X", "f", 1, True]))),
    ("conditions", lambda c, r: c.update(conditions=r.choice(["diabetes", ["asthma"], [1], {}]))),
    ("conditions", lambda c, r: c.update(conditions=["cancer", "cancer"])),
    ("chronic", lambda c, r: c.update(chronic=r.choice(["yes", 1, 0, None, []]))),
    ("acute_injury", lambda c, r: c.update(acute_injury=r.choice(["true", 1.0]))),
    ("region", lambda c, r: c.update(region=r.choice(["knee", "THORAX", 3]))),
    ("qst", lambda c, r: c.update(qst=r.choice([{}, {"z": 1, "category": "high"}, [1], 2]))),
    ("qst", lambda c, r: c.update(qst={"category": "low", "censored": True})),
    ("qst.z", lambda c, r: c.update(qst={"z": r.choice(["1", 11, -10.5, True, None])})),
    ("qst.category", lambda c, r: c.update(qst={"category": r.choice(["medium", "HIGH", 1])})),
    ("qst.censored", lambda c, r: c.update(qst={"z": 0.5, "censored": r.choice([1, "yes"])})),
    ("contraindications", lambda c, r: c.update(contraindications=r.choice([["pregnancy"], "x"]))),
    ("override", lambda c, r: c.update(override=r.choice(["needle_phobia", True, 1, None, {}]))),
    (
        "override",
        lambda c, r: c.update(contraindications=["lymphedema"], override=["bleeding_disorder"]),
    ),
    (
        "override",
        lambda c, r: c.update(
            age=30, sex="F", contraindications=["pregnancy_first_trimester"],
            override=["pregnancy_first_trimester"],
        ),
    ),  # fmt: skip
    (
        "contraindications",
        lambda c, r: c.update(age=30, sex="M", contraindications=["pregnancy_first_trimester"]),
    ),
    (
        "contraindications",
        lambda c, r: c.update(age=9, sex="F", contraindications=["pregnancy_first_trimester"]),
    ),
    ("history", lambda c, r: c.update(history=r.choice([[], "1", {"visits": 1}]))),
    ("history.sessions", lambda c, r: c.update(history={"sessions": r.choice([-1, 1001, "2"])})),
    ("history.sessions", lambda c, r: c.update(history={"last_response": "none"})),
    ("history.last_response", _history(last_response="ok")),
    ("history.last_response", _history(sessions=0, last_response="flare")),
    ("history.last.gauge_mm", _last(gauge_mm=0.22)),
    ("history.last.gauge_mm", _last(gauge_mm="0.16")),
    ("history.last.needles", _last(needles=11)),
    ("history.last.needles", _last(needles=6.0)),
    ("history.last.depth", _last(depth="max")),
    ("history.last.adjuncts", _last(adjuncts=["cupping"])),
    ("history.last", _last(status="ok")),
    ("history.last", lambda c, r: c.update(history={"sessions": 2, "last": {"needles": 6}})),
    ("history.last", lambda c, r: c.update(history={"sessions": 0, "last": random_dose(r)})),
    ("unknown field", lambda c, r: c.update({r.choice(["weight", "Age", ""]): 1})),
)  # fmt: skip


def broken_case(rng, index=None):
    """A case wrong in exactly one place (BREAKERS[index], or any); returns (case, text the
    error line must contain)."""
    case = random_case(rng)
    field, breaker = BREAKERS[index] if index is not None else rng.choice(BREAKERS)
    # Break only what random_case did not already make invalid elsewhere.
    for key in ("qst", "history", "override", "contraindications"):
        case.pop(key, None)
    breaker(case, rng)
    return case, field

"""Random dosage cases, well-formed or broken in one field, from a caller's random.Random.

One generator serves the hypothesis properties (fed by st.randoms) and the seeded parity run.
"""

from core import case as case_mod
from core import dosage


def _some(rng, vocabulary, p=0.25):
    return [item for item in vocabulary if rng.random() < p]


def random_dose(rng):
    return {
        "gauge_mm": rng.choice(dosage.GAUGES_MM_X100) / 100,
        "needles": rng.randint(dosage.NEEDLES_MIN, dosage.NEEDLES_MAX),
        "depth": rng.choice(dosage.DEPTHS),
        "manipulation": rng.choice(dosage.MANIPULATIONS),
    }


def random_case(rng):
    case = {"age": rng.choice([rng.randint(0, 120), rng.choice([0, 11, 12, 64, 65, 120])])}
    if rng.random() < 0.7:
        case["sex"] = rng.choice(case_mod.SEXES)
    if rng.random() < 0.5:
        case["conditions"] = _some(rng, case_mod.CONDITIONS)
    for flag in case_mod.FLAGS:
        if rng.random() < 0.4:
            case[flag] = rng.random() < 0.5
    if rng.random() < 0.7:
        case["region"] = rng.choice(case_mod.REGIONS + (None,))
    roll = rng.random()
    if roll < 0.4:
        z = rng.choice([rng.uniform(-10, 10), rng.uniform(-2.5, 2.5), 1.0, -1.0, 0.999, -0.999])
        case["qst"] = {"z": rng.choice([z, round(z, 2), int(z)])}
    elif roll < 0.7:
        case["qst"] = {"category": rng.choice(case_mod.QST_CATEGORIES)}
    if rng.random() < 0.3:
        case["contraindications"] = _some(rng, case_mod.CONTRAINDICATIONS, 0.2)
    if rng.random() < 0.2:
        case["override"] = rng.random() < 0.5
    if rng.random() < 0.5:
        sessions = rng.choice([0, 1, 2, rng.randint(1, 1000)])
        history = {"sessions": sessions}
        if rng.random() < 0.7:
            history["last_response"] = rng.choice(case_mod.RESPONSES)
        if sessions and rng.random() < 0.8:
            history["last"] = random_dose(rng)
            if rng.random() < 0.1:
                history["last"] = dict.fromkeys(history["last"])
                history["last"]["status"] = "contraindicated"
        case["history"] = history
    return case


# (field named in the error, how to break a case so that exactly this field is wrong)
BREAKERS = (
    ("age", lambda c, r: c.update(age=r.choice([-1, 121, "40", 40.5, True, None, [40]]))),
    ("age", lambda c, r: c.pop("age")),
    ("sex", lambda c, r: c.update(sex=r.choice(["X", "f", 1, True]))),
    ("conditions", lambda c, r: c.update(conditions=r.choice(["diabetes", ["asthma"], [1], {}]))),
    ("chronic", lambda c, r: c.update(chronic=r.choice(["yes", 1, 0, None, []]))),
    ("acute_injury", lambda c, r: c.update(acute_injury=r.choice(["true", 1.0]))),
    ("region", lambda c, r: c.update(region=r.choice(["knee", "THORAX", 3]))),
    ("qst", lambda c, r: c.update(qst=r.choice([{}, {"z": 1, "category": "high"}, [1], 2]))),
    ("qst.z", lambda c, r: c.update(qst={"z": r.choice(["1", 11, -10.5, True, None])})),
    ("qst.category", lambda c, r: c.update(qst={"category": r.choice(["medium", "HIGH", 1])})),
    ("contraindications", lambda c, r: c.update(contraindications=r.choice([["pregnancy"], "x"]))),
    ("override", lambda c, r: c.update(override=r.choice(["true", 1, None]))),
    ("history", lambda c, r: c.update(history=r.choice([[], "1", {"visits": 1}]))),
    ("history.sessions", lambda c, r: c.update(history={"sessions": r.choice([-1, 1001, "2"])})),
    ("history.sessions", lambda c, r: c.update(history={"last_response": "none"})),
    (
        "history.last_response",
        lambda c, r: c.update(history={"sessions": 1, "last_response": r.choice(["ok", 2])}),
    ),
    (
        "history.last.gauge_mm",
        lambda c, r: c.update(
            history={
                "sessions": 1,
                "last": dict(random_dose(r), gauge_mm=r.choice([0.22, "0.16"])),
            }
        ),
    ),
    (
        "history.last.needles",
        lambda c, r: c.update(
            history={"sessions": 1, "last": dict(random_dose(r), needles=r.choice([4, 11, 6.0]))}
        ),
    ),
    (
        "history.last.depth",
        lambda c, r: c.update(history={"sessions": 2, "last": dict(random_dose(r), depth="max")}),
    ),
    ("history.last", lambda c, r: c.update(history={"sessions": 0, "last": random_dose(r)})),
    ("unknown field", lambda c, r: c.update({r.choice(["weight", "Age", ""]): 1})),
)


def broken_case(rng):
    """A case wrong in exactly one place; returns (case, text the error line must contain)."""
    case = random_case(rng)
    field, breaker = rng.choice(BREAKERS)
    # Break only what random_case did not already make invalid elsewhere.
    for key in ("qst", "history") if field.startswith(("qst", "history")) else ():
        case.pop(key, None)
    breaker(case, rng)
    return case, field

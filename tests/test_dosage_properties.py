"""Properties of the dosage engine over generated cases (hypothesis, CPython).

The same generator feeds the parity run on micropython (test_parity.py).
"""

import json

from casegen import broken_case, random_case
from hypothesis import given, settings
from hypothesis import strategies as st

from core import case as case_mod
from core import dosage
from simulator.harness.recommend import recommend_text

RULE_IDS = [rule_id for rule_id, *_ in dosage.RULES]
TRUE_CONTRAINDICATIONS = set(case_mod.CONTRAINDICATIONS) - {"pregnancy_first_trimester"}


def run(case):
    code, line = recommend_text(json.dumps(case))
    assert code == 0, line
    return json.loads(line)


def rungs(result):
    """A dose as comparable rungs; bigger is more intense."""
    return (
        dosage.GAUGES_MM_X100.index(round(result["gauge_mm"] * 100)),
        result["needles"],
        dosage.DEPTHS.index(result["depth"]),
        dosage.MANIPULATIONS.index(result["manipulation"]),
    )


@settings(max_examples=400)
@given(st.randoms(use_true_random=False))
def test_any_well_formed_case_gives_a_valid_recommendation(rng):
    case = random_case(rng)
    result = run(case)
    contraindicated = bool(TRUE_CONTRAINDICATIONS & set(case.get("contraindications", [])))
    caution = case["age"] < 12 or "pregnancy_first_trimester" in case.get("contraindications", [])
    assert result["status"] == (
        "contraindicated" if contraindicated else "caution" if caution else "ok"
    )
    assert result["ruleset"] == dosage.RULESET
    assert result["rules"] == [r for r in RULE_IDS if r in result["rules"]]  # table order, once
    if contraindicated and not case.get("override", False):
        for field in ("gauge_mm", "needles", "depth", "manipulation", "sessions_per_week"):
            assert result[field] is None
        assert result["adjuncts"] == [] and result["aftercare"] == []
        assert "CI-GATE" in result["rules"]
        return
    assert 0.16 <= result["gauge_mm"] <= 0.30
    assert round(result["gauge_mm"] * 100) in dosage.GAUGES_MM_X100
    assert dosage.NEEDLES_MIN <= result["needles"] <= dosage.NEEDLES_MAX
    assert result["depth"] in dosage.DEPTHS
    assert result["manipulation"] in dosage.MANIPULATIONS
    assert result["sessions_per_week"] == [1, 2]
    assert result["adjuncts"] == [a for a in dosage.ADJUNCTS if a in result["adjuncts"]]
    assert result["aftercare"][: len(dosage.AFTERCARE)] == list(dosage.AFTERCARE)
    if contraindicated:
        assert "CI-OVERRIDE" in result["rules"] and rungs(result) == (0, 5, 0, 0)
    if case.get("region") == "thorax":
        assert result["depth"] == "superficial"
    if caution:
        assert rungs(result) == (0, 5, 0, 0)


# Adding one of these to any case may only make each dose dimension gentler.
RISK_FACTORS = (
    [("conditions", c) for c in case_mod.CONDITIONS]
    + [(flag, True) for flag in case_mod.FLAGS]
    + [("region", "thorax"), ("age", 70), ("age", 8), ("qst", {"category": "high"})]
    + [("contraindications", "pregnancy_first_trimester")]
)


@settings(max_examples=300)
@given(st.randoms(use_true_random=False), st.sampled_from(RISK_FACTORS))
def test_adding_a_risk_factor_never_intensifies_the_dose(rng, factor):
    case = random_case(rng)
    case.pop("contraindications", None)
    if case.get("qst", {}).get("category") == "low" or case.get("qst", {}).get("z", 0) <= -1:
        case.pop("qst")  # only a low QST raises a dose; replacing it is not "adding"
    if factor[0] == "age" and (case["age"] < 12) != (factor[1] < 12):
        case["age"] = 40  # from an adult baseline
    before = run(case)
    key, value = factor
    if key in ("conditions", "contraindications"):
        case[key] = sorted(set(case.get(key, [])) | {value})
    else:
        case[key] = value
    after = run(case)
    for dim, (b, a) in enumerate(zip(rungs(before), rungs(after), strict=True)):
        assert a <= b, (factor, dim, before, after)


@settings(max_examples=400)
@given(st.randoms(use_true_random=False))
def test_a_case_broken_in_one_field_gives_one_clean_error_line(rng):
    case, field = broken_case(rng)
    code, line = recommend_text(json.dumps(case))
    assert code == 2
    assert line.startswith("error: ") and "\n" not in line
    assert field in line
    assert "Traceback" not in line


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(JSON_VALUES)
def test_any_json_value_gives_a_result_or_one_error_line(value):
    code, line = recommend_text(json.dumps(value))
    assert (code, line.startswith("error: ")) in ((0, False), (2, True))


@settings(max_examples=200)
@given(st.text(max_size=80))
def test_any_text_gives_a_result_or_one_error_line(text):
    code, line = recommend_text(text)
    assert code in (0, 2) and "\n" not in line

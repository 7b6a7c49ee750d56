"""Properties of the dosage engine ("start low, go slow") over generated cases.

Hypothesis drives the CPython engine in process; the same checks then run on micropython's
answers to a seeded batch (one interpreter run), so both runtimes are held to them. The
expected values are the seeds' and the issue's, written here, never taken from the code.
"""

import json
import random

import pytest
from casegen import BREAKERS, TRUE_CONTRAINDICATIONS, broken_case, random_case, random_dose
from hypothesis import given, settings
from hypothesis import strategies as st

from core import case as case_mod
from core import dosage, draw
from simulator.harness.recommend import recommend_text
from simulator.runtime import run_harness

RULE_IDS = [rule_id for rule_id, *_ in dosage.RULES]
GAUGE, NEEDLES, DEPTH, MANIP = range(4)
LADDERS = (NEEDLES, DEPTH, MANIP)  # the gauge follows the patient type, it is not climbed
TOP = (4, 10, 2, 3)
MINIMAL = (0, 5, 0, 0)
DEEP, INTERMEDIATE, SUPERFICIAL = 2, 1, 0
ROTATION, BASIC = 1, 0
LUNG_APEX = ("head_neck", "shoulder", "upper_trapezius")
NSAID_LINE = "No NSAIDs for 24 h; keep taking prescribed medicines."
NO_ICE_LINE = "No ice on the area for 24 h."
ICE_LINE = "Ice on the area may ease soreness."
OVERRIDDEN_WORDS = {  # what the warnings call each contraindication
    "needle_phobia": "needle phobia",
    "injection_reaction": "injection reactions",
    "lymphedema": "lymphedema",
    "bleeding_disorder": "blood-clotting disorder",
    "immunodeficiency": "immune deficiency",
}


def run(case, config=None):
    code, line = recommend_text(json.dumps(case), config)
    assert code == 0, line
    return json.loads(line)


def rungs(dose):
    """A dose (a result, or a history.last) as rungs; bigger is more intense."""
    return (
        dosage.GAUGES_MM_X100.index(round(dose["gauge_mm"] * 100)),
        dose["needles"],
        dosage.DEPTHS.index(dose["depth"]),
        dosage.MANIPULATIONS.index(dose["manipulation"]),
    )


def history_of(case):
    history = case.get("history") or {"sessions": 0}
    return history["sessions"], history.get("last_response"), history.get("last")


def qst_is_high(case):
    qst = case.get("qst") or {}
    return qst.get("category") == "high" or qst.get("z", 0) >= 1.0


def check_case(case, result):
    """Every property one case and its result must have, whatever the runtime."""
    present = set(case.get("contraindications", []))
    overrides = set(case.get("override", []))
    contraindicated = bool(present & set(TRUE_CONTRAINDICATIONS))
    caution = case["age"] < 12 or "pregnancy_first_trimester" in present
    assert result["status"] == (
        "contraindicated" if contraindicated else "caution" if caution else "ok"
    )
    assert result["ruleset"] == dosage.RULESET
    assert result["rules"] == [r for r in RULE_IDS if r in result["rules"]]  # table order, once
    assert result["overrides"] == case.get("override", [])
    if contraindicated and not present & set(TRUE_CONTRAINDICATIONS) <= overrides:
        for field in ("gauge_mm", "needles", "depth", "manipulation", "sessions_per_week"):
            assert result[field] is None
        assert result["adjuncts"] == result["aftercare"] == result["reasons"] == []
        assert "CI-GATE" in result["rules"]
        return
    dose = rungs(result)
    assert 0 <= dose[GAUGE] <= 4 and 5 <= dose[NEEDLES] <= 10
    assert result["sessions_per_week"] == [1, 2]
    assert result["adjuncts"] == [a for a in dosage.ADJUNCTS if a in result["adjuncts"]]
    assert NSAID_LINE in result["aftercare"] and NO_ICE_LINE in result["aftercare"]
    # Reasons: one per dimension, then one per adjunct, each rebuilt from its rule alone.
    shown = [(dim, result[dim]) for dim in dosage.DIMENSIONS]
    shown += [(adjunct, adjunct) for adjunct in result["adjuncts"]]
    assert [r["dimension"] for r in result["reasons"]] == [dim for dim, _ in shown]
    for reason, (dim, value) in zip(result["reasons"], shown, strict=True):
        assert reason["rule"] in result["rules"]
        assert reason["text"] == dosage.reason_text(dim, value, reason["rule"])
    if contraindicated:  # every one overridden
        assert dose == MINIMAL and result["adjuncts"] == []
        named = [w for w in result["warnings"] if w.startswith("Override recorded: ")]
        assert sorted(named) == sorted(
            "Override recorded: " + OVERRIDDEN_WORDS[name] for name in overrides
        )
    if caution:
        assert dose == MINIMAL and "e-stim" not in result["adjuncts"]
    if qst_is_high(case):
        assert dose[DEPTH] == SUPERFICIAL and dose[MANIP] == BASIC
    region = case.get("region")
    if region in ("thorax", None):
        assert dose[DEPTH] == SUPERFICIAL and dose[MANIP] <= ROTATION
    if region in LUNG_APEX:
        assert dose[DEPTH] < DEEP
    if region is None or region in ("thorax",) + LUNG_APEX:
        assert any("get care now" in line for line in result["aftercare"])
    qst = case.get("qst") or {}
    if qst.get("censored"):
        assert "Q-LOW" not in result["rules"]
    if "Q-LOW" not in result["rules"]:
        assert dose[GAUGE] < 4 and dose[DEPTH] < DEEP and dose[MANIP] < 3
    sessions, response, last = history_of(case)
    if sessions == 0 or last is None:  # a first session, or nothing given to go on from
        assert sum(dose[dim] == TOP[dim] for dim in LADDERS) <= 1
        assert dose[DEPTH] <= INTERMEDIATE and dose[MANIP] == BASIC and dose[NEEDLES] <= 6
        if response == "flare":
            assert dose == MINIMAL
        return
    before = rungs(last)
    raised = [dim for dim in LADDERS if dose[dim] > before[dim]]
    if response in ("tolerated", "none"):
        assert len(raised) <= 1
        assert all(dose[dim] == before[dim] + 1 for dim in raised)
    else:  # a flare, or no response entered: nothing goes up, the gauge included
        assert raised == [] and dose[GAUGE] <= before[GAUGE]
    if response == "flare":
        for dim in range(4):
            bottom = MINIMAL[dim]
            assert dose[dim] <= max(bottom, before[dim] - 1)


@settings(max_examples=500, deadline=None)
@given(st.randoms(use_true_random=False))
def test_any_well_formed_case_keeps_every_property(rng):
    case = random_case(rng)
    check_case(case, run(case))


def without_low_qst(case):
    # Only a low QST raises a ceiling; a case that has one cannot be "added" a risk to.
    qst = case.get("qst") or {}
    if qst.get("category") == "low" or qst.get("z", 0) <= -1.25:
        case.pop("qst")
    return case


def add_factor(case, factor):
    key, value = factor
    if key in ("conditions", "contraindications"):
        case[key] = sorted(set(case.get(key, [])) | {value})
    elif key == "qst":
        case["qst"] = dict(case["qst"], **value) if "censored" in value else value
    else:
        case[key] = value
    return case


# Adding one of these to any case may only make each dose dimension gentler.
RISK_FACTORS = (
    [("conditions", c) for c in case_mod.CONDITIONS]
    + [(flag, True) for flag in case_mod.FLAGS]
    + [("region", "thorax"), ("age", 70), ("age", 8)]
    + [("qst", {"category": "high"}), ("qst", {"censored": True})]
    + [("contraindications", "pregnancy_first_trimester")]
)


def risk_pair(rng, factor):
    """(case, the same case with one more risk factor), both well-formed."""
    case = random_case(rng)
    case.pop("contraindications", None)
    case.pop("override", None)
    key, value = factor
    if key == "qst" and "censored" in value:  # the same z, now known to be censored
        case["qst"] = {"z": rng.choice([rng.uniform(-4, 3), -1.25, -1.24, 1.0])}
    else:
        without_low_qst(case)
    if key == "age" and (case["age"] < 12) != (value < 12):
        case["age"] = 40  # from an adult baseline
    if key == "contraindications":
        case["age"], case["sex"] = max(case["age"], 12), "F"
    return case, add_factor(json.loads(json.dumps(case)), factor)


def check_not_raised(before, after, why):
    if before["needles"] is None:
        assert after["needles"] is None, why
        return
    if after["needles"] is None:
        return
    for dim, (b, a) in enumerate(zip(rungs(before), rungs(after), strict=True)):
        assert a <= b, (why, dim, before, after)


@settings(max_examples=400, deadline=None)
@given(st.randoms(use_true_random=False), st.sampled_from(RISK_FACTORS))
def test_adding_a_risk_factor_never_raises_any_dimension(rng, factor):
    case, riskier = risk_pair(rng, factor)
    check_not_raised(run(case), run(riskier), factor)


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_moving_to_a_lung_apex_region_never_raises_any_dimension(rng):
    case = without_low_qst(random_case(rng))
    case["region"] = rng.choice(["upper_limb", "lumbar", "hip", "lower_limb"])
    riskier = dict(case, region=rng.choice(LUNG_APEX))
    check_not_raised(run(case), run(riskier), riskier["region"])


@pytest.mark.parametrize("region", ["thorax", None, *LUNG_APEX])
@settings(max_examples=40, deadline=None)
@given(
    rng=st.randoms(use_true_random=False),
    z=st.sampled_from([-10, -2.0, -1.25, 0.0]),
    sessions=st.integers(0, 6),
    response=st.sampled_from([*case_mod.RESPONSES, None]),
)
def test_lung_risk_regions_are_never_deep_and_the_thorax_never_past_rotation(
    region, rng, z, sessions, response
):
    # An adult with no other factor, the ceilings a low QST lifts, after the deepest dose:
    # only the region can hold it back.
    case = {"age": 40, "region": region, "qst": {"z": z}, "history": {"sessions": sessions}}
    if sessions:
        last = dict(random_dose(rng), depth="deep", manipulation="pistoning")
        case["history"].update(last=last, last_response=response)
    result = run(case)
    assert result["depth"] != "deep"
    if region in ("thorax", None):
        assert result["depth"] == "superficial"
        assert result["manipulation"] in ("basic", "rotation")


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_an_override_never_adds_an_adjunct(rng):
    case = random_case(rng)
    name = rng.choice(TRUE_CONTRAINDICATIONS)
    case["contraindications"] = [name]
    case["override"] = [name]
    case[rng.choice(["acute_injury", "recent_exercise"])] = True
    result = run(case)
    assert result["adjuncts"] == [] and result["status"] == "contraindicated"
    assert rungs(result) == MINIMAL


@pytest.mark.parametrize("breaker", range(len(BREAKERS)))
@settings(max_examples=10, deadline=None)
@given(rng=st.randoms(use_true_random=False))
def test_a_case_broken_in_one_field_gives_one_clean_error_line(breaker, rng):
    case, field = broken_case(rng, breaker)
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


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_any_json_value_gives_a_result_or_one_error_line(value):
    code, line = recommend_text(json.dumps(value))
    assert (code, line.startswith("error: ")) in ((0, False), (2, True))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_text_gives_a_result_or_one_error_line(text):
    code, line = recommend_text(text)
    assert code in (0, 2) and "\n" not in line


# --- the four case studies of seed 000 ---


def course(zs, response="tolerated", **patient):
    """A course of sessions, each given as recommended and answered with `response`."""
    results = []
    for number, z in enumerate(zs):
        case = dict(patient, qst={"z": z})
        if results:
            given_dose = {
                k: results[-1][k] for k in ("gauge_mm", "needles", "depth", "manipulation")
            }
            case["history"] = {"sessions": number, "last_response": response, "last": given_dose}
        results.append(run(case))
    return results


LOW_BACK = {"age": 45, "sex": "M", "chronic": True, "region": "lumbar"}
FALLING_QST = (1.3, 0.6, 0.2, -0.3, -1.4, -1.5, -1.6, -1.7)  # twice weekly, 4 weeks


def test_chronic_low_back_reaches_deep_by_week_4_one_rung_a_session():
    results = course(FALLING_QST, **LOW_BACK)
    assert results[0]["depth"] == "superficial" and results[0]["manipulation"] == "basic"
    for before, after in zip(results, results[1:], strict=False):
        b, a = rungs(before), rungs(after)
        assert sum(a[dim] - b[dim] for dim in LADDERS) == 1  # one rung of one ladder, each time
    depths = [r["depth"] for r in results]
    assert "deep" in depths and depths.index("deep") == 4  # week 3: once the QST is low


def test_chronic_low_back_is_guided_by_the_qst():
    # The same course with the QST never reaching "low" never goes deep; a ladder at what a
    # normal QST allows passes its turn on, so each session still climbs one rung.
    results = course((1.3, 0.6, 0.2, -0.3, -1.0, -1.1, -1.2, -1.24), **LOW_BACK)
    assert all(r["depth"] != "deep" and r["manipulation"] != "pistoning" for r in results)
    totals = [sum(rungs(r)[dim] for dim in LADDERS) for r in results]
    assert totals == list(range(totals[0], totals[0] + len(results)))
    assert rungs(results[-1]) == (3, 10, INTERMEDIATE, 2)  # 0.25, 10, intermediate, tenting
    # and a sensitised week keeps it superficial whatever came before
    assert course((-2.0, -2.0, -2.0, -2.0, -2.0, 1.0), **LOW_BACK)[-1]["depth"] == "superficial"


def test_fibromyalgia_post_marathon_and_ankle_sprain():
    fibro = run({"age": 52, "sex": "F", "conditions": ["fibromyalgia"], "region": "shoulder",
                 "qst": {"z": 1.6}})  # fmt: skip
    assert fibro["gauge_mm"] == 0.16 and fibro["manipulation"] == "basic"  # "minimal"
    runner = run({"age": 34, "recent_exercise": True, "region": "lower_limb"})
    assert runner["adjuncts"] == ["e-stim"] and runner["depth"] == "superficial"
    assert runner["needles"] == 5 and runner["manipulation"] == "basic"  # "light needling"
    ankle = run({"age": 27, "acute_injury": True, "region": "lower_limb", "qst": {"z": -2}})
    assert ankle["depth"] == "superficial" and ankle["adjuncts"] == ["microneedling"]
    assert ankle["gauge_mm"] < 0.3  # no remodelling gauge on fresh trauma


# --- cut-offs, exactly at the edge ---

LUMBAR = {"age": 40, "region": "lumbar"}


@pytest.mark.parametrize(
    "z, category",
    [(1.0, "high"), (0.99, "normal"), (-1.24, "normal"), (-1.25, "low"), (10, "high")],
)
def test_qst_cut_offs(z, category):
    result = run(dict(LUMBAR, qst={"z": z}))
    assert ("Q-HIGH" in result["rules"]) == (category == "high")
    assert ("Q-LOW" in result["rules"]) == (category == "low")
    assert ("Q-NOT-LOW" in result["rules"]) == (category != "low")


@pytest.mark.parametrize(
    "z, config, category",
    [
        (1.95, {"qst_high_z_x100": 196}, "normal"),
        (1.96, {"qst_high_z_x100": 196}, "high"),
        (-1.95, {"qst_low_z_x100": -196}, "normal"),
        (-1.96, {"qst_low_z_x100": -196}, "low"),
        (-1.0, {"qst_low_z_x100": -100}, "low"),
    ],
)
def test_qst_cut_offs_are_clinic_settings(z, config, category):
    result = run(dict(LUMBAR, qst={"z": z}), config)
    assert ("Q-HIGH" in result["rules"]) == (category == "high")
    assert ("Q-LOW" in result["rules"]) == (category == "low")


def test_a_censored_bound_is_never_low_even_far_below_the_cut_off():
    for z in (-1.25, -10):
        result = run(dict(LUMBAR, qst={"z": z, "censored": True}))
        assert "Q-LOW" not in result["rules"] and "Q-CENSORED" in result["rules"]
        assert result["gauge_mm"] == 0.25
    assert "Q-CENSORED" not in run(dict(LUMBAR, qst={"z": -1.24, "censored": True}))["rules"]


@pytest.mark.parametrize("age, older", [(64, False), (65, True)])
def test_older_from_65(age, older):
    result = run(dict(LUMBAR, age=age))
    assert ("F-OLDER" in result["rules"]) == older
    assert result["needles"] == (5 if older else 6)


@pytest.mark.parametrize("age, child", [(11, True), (12, False)])
def test_child_under_12(age, child):
    result = run(dict(LUMBAR, age=age, recent_exercise=True))
    assert (result["status"] == "caution") == child
    assert result["adjuncts"] == ([] if child else ["e-stim"])


@pytest.mark.parametrize("age, accepted", [(9, False), (10, True)])
def test_first_trimester_from_age_10(age, accepted):
    code, line = recommend_text(
        json.dumps(dict(LUMBAR, age=age, sex="F", contraindications=["pregnancy_first_trimester"]))
    )
    assert code == (0 if accepted else 2), line


@pytest.mark.parametrize("sessions, turn", [(1, "depth"), (2, "manipulation"), (3, "needles"),
                                            (4, "depth")])  # fmt: skip
def test_the_ladders_take_turns(sessions, turn):
    last = {"gauge_mm": 0.25, "needles": 6, "depth": "superficial", "manipulation": "basic"}
    case = dict(LUMBAR, history={"sessions": sessions, "last_response": "none", "last": last})
    result = run(case)
    changed = [dim for dim in ("needles", "depth", "manipulation") if result[dim] != last[dim]]
    assert changed == [turn]


def test_after_care_ice_line_is_a_clinic_setting():
    assert NO_ICE_LINE in run(LUMBAR)["aftercare"]
    allowed = run(LUMBAR, {"aftercare_ice": "allow"})["aftercare"]
    assert ICE_LINE in allowed and NO_ICE_LINE not in allowed
    for config in ({"aftercare_ice": "sometimes"}, {"qst_low_z_x100": 50}, {"colour": 1}):
        with pytest.raises(ValueError, match="config"):
            dosage.recommend(case_mod.parse_case(LUMBAR), config)


def test_every_reason_fits_three_rows_of_the_screen():
    values = {
        "gauge_mm": [g / 100 for g in dosage.GAUGES_MM_X100],
        "needles": list(range(5, 11)),
        "depth": list(dosage.DEPTHS),
        "manipulation": list(dosage.MANIPULATIONS),
    }
    values.update({adjunct: [adjunct] for adjunct in dosage.ADJUNCTS})
    for rule_id in RULE_IDS + [None]:
        for dim, choices in values.items():
            for value in choices:
                text = dosage.reason_text(dim, value, rule_id)
                rows = draw.wrap(text, draw.COLUMNS, "- ", "  ")  # as core.ui lays a reason out
                assert len(rows) <= 3, text


# --- the same properties on micropython: generated here, evaluated in one interpreter run ---


def micropython_batch(seed=7, singles=250, pairs=150):
    rng = random.Random(seed)
    cases = [random_case(rng) for _ in range(singles)]
    for _ in range(pairs):
        cases.extend(risk_pair(rng, rng.choice(RISK_FACTORS)))
    return cases


def test_the_properties_hold_on_micropython_too():
    cases = micropython_batch()
    stdin = "".join(json.dumps(c) + "\n" for c in cases)
    code, out, err = run_harness("recommend", stdin=stdin, args=["--batch"], runtime="micropython")
    assert code == 0, err
    results = []
    for line in out.splitlines():
        status, _, payload = line.partition(" ")
        assert status == "0", payload
        results.append(json.loads(payload))
    assert len(results) == len(cases)
    for case, result in zip(cases, results, strict=True):
        check_case(case, result)
    singles = 250
    for i in range(singles, len(cases), 2):
        check_not_raised(results[i], results[i + 1], cases[i + 1])


def test_a_dose_given_is_read_back_as_the_same_rungs():
    rng = random.Random(3)
    for _ in range(50):
        dose = random_dose(rng)
        parsed = case_mod.parse_case({"age": 40, "history": {"sessions": 1, "last": dose}})
        assert parsed["history"]["last_dose"] == rungs(dose)

"""The command line a clinician or maintainer types: exit codes and one-line errors."""

import json

import pytest
from simcli import simulator

from simulator.runtime import RUNTIMES


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_recommend_prints_one_json_recommendation(runtime):
    case = {"age": 52, "sex": "F", "conditions": ["fibromyalgia"], "qst": {"z": 1.6}}
    proc = simulator("recommend", "--runtime", runtime, stdin=json.dumps(case))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["gauge_mm"] == 0.16
    assert proc.stdout.count("\n") == 1 and proc.stderr == ""


BAD_INPUTS = [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    ('{"age": 40, "weight": 80}', 'unknown field "weight"'),
    ('{"age": 130}', "age: a whole number from 0 to 120"),
    ('{"age": "forty"}', "age: a whole number"),
    ('{"sex": "F"}', "age: required"),
    ('{"age": 40, "conditions": ["asthma"]}', "conditions: one of diabetes, cancer"),
    ('{"age": 40, "chronic": "yes"}', "chronic: true or false"),
    ('[{"age": 40}]', "case: a JSON object"),
]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("stdin,message", BAD_INPUTS)
def test_bad_input_exits_2_with_one_line_and_no_traceback(runtime, stdin, message):
    proc = simulator("recommend", "--runtime", runtime, stdin=stdin)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_demo_measures_scores_and_recommends(runtime):
    proc = simulator("demo", "--runtime", runtime)
    assert proc.returncode == 0, proc.stderr
    # The bedside visit: the measured local z reaches the dosage rules.
    assert "upper_trapezius R   147.4 155.2 150.1         150.9   2.6  +2.01  high" in proc.stdout
    assert '"qst": {"z": 2.01}' in proc.stdout
    for title in ("fibromyalgia", "post-marathon", "low back", "ankle sprain"):
        assert title in proc.stdout
    assert "|0.16 mm            6 |" in proc.stdout  # the dose page: gauge and needle count
    assert "|Technique   pistoning|" in proc.stdout  # week 4 of the low back case
    assert "|NO DOSE              |" in proc.stdout

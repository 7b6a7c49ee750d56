"""Golden vectors for the dosage rules, run on CPython and on the micropython interpreter.

Each vector names the fields (and the exact rule ids) a clinician can check against the
seeds, with a one-line rationale (`note`); the expected values were written by hand, not
recorded from the code. The full output must be byte-identical on the two runtimes.
"""

import json
from pathlib import Path

import pytest

from simulator.runtime import RUNTIMES, run_harness

VECTORS = json.loads((Path(__file__).parent / "vectors" / "dosage_cases.json").read_text())


def _batch(runtime):
    stdin = "".join(json.dumps(v["case"]) + "\n" for v in VECTORS)
    code, out, err = run_harness("recommend", stdin=stdin, args=["--batch"], runtime=runtime)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == len(VECTORS)
    return lines


@pytest.fixture(scope="module")
def outputs():
    return {runtime: _batch(runtime) for runtime in RUNTIMES}


def test_runtimes_agree_byte_for_byte(outputs):
    for vector, cp, mp in zip(VECTORS, outputs["cpython"], outputs["micropython"], strict=True):
        assert cp == mp, vector["name"]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("index", range(len(VECTORS)), ids=[v["name"] for v in VECTORS])
def test_vector(outputs, runtime, index):
    vector = VECTORS[index]
    code, _, payload = outputs[runtime][index].partition(" ")
    assert code == "0", payload
    result = json.loads(payload)
    for field, expected in vector["expect"].items():
        assert result[field] == expected, "%s: %s" % (vector["name"], field)


def test_every_vector_says_why_and_names_are_unique():
    assert all(len(v["note"]) > 10 for v in VECTORS)
    assert len({v["name"] for v in VECTORS}) == len(VECTORS)


def test_every_rule_in_the_table_is_exercised_by_a_vector(outputs):
    from core import dosage

    fired = set()
    for line in outputs["cpython"]:
        fired.update(json.loads(line.partition(" ")[2])["rules"])
    assert fired == {rule_id for rule_id, *_ in dosage.RULES}

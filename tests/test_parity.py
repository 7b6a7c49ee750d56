"""Byte-identical recommendations on CPython and on the micropython interpreter (64 KB heap)."""

import json
import random

from casegen import broken_case, random_case

from simulator.runtime import RUNTIMES, run_harness

WELL_FORMED = 300
BROKEN = 100


def generated_lines(seed=2026):
    rng = random.Random(seed)
    cases = [random_case(rng) for _ in range(WELL_FORMED)]
    cases += [broken_case(rng)[0] for _ in range(BROKEN)]
    return "".join(json.dumps(c) + "\n" for c in cases)


def test_generated_cases_give_identical_bytes_on_both_runtimes():
    stdin = generated_lines()
    results = {}
    for runtime in RUNTIMES:
        code, out, err = run_harness("recommend", stdin=stdin, args=["--batch"], runtime=runtime)
        assert code == 0, err
        results[runtime] = out.splitlines()
    cpython, micropython = results["cpython"], results["micropython"]
    assert len(cpython) == len(micropython) == WELL_FORMED + BROKEN
    mismatches = [i for i, (a, b) in enumerate(zip(cpython, micropython, strict=True)) if a != b]
    assert not mismatches, "first mismatch at case %d:\n%s\n%s" % (
        mismatches[0],
        cpython[mismatches[0]],
        micropython[mismatches[0]],
    )
    ok = sum(line.startswith("0 ") for line in cpython)
    assert ok >= WELL_FORMED  # every well-formed case gave a recommendation
    assert sum(line.startswith("2 error: ") for line in cpython) == BROKEN

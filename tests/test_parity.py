"""Byte-identical recommendations on CPython and on the micropython interpreter (64 KB heap)."""

import json
import random

from casegen import broken_case, random_case

from simulator.runtime import RUNTIMES, run_harness

WELL_FORMED = 300
BROKEN = 100
MANGLED = 300


def generated_lines(seed=2026):
    rng = random.Random(seed)
    cases = [random_case(rng) for _ in range(WELL_FORMED)]
    cases += [broken_case(rng)[0] for _ in range(BROKEN)]
    return "".join(json.dumps(c) + "\n" for c in cases)


def mangled_lines(seed=11):
    """Well-formed cases with a few characters changed: text MicroPython's lenient json might
    read as something else (a missing comma, a stray digit, a cut string)."""
    rng = random.Random(seed)
    noise = '{}[]",:0123456789.eE+- truefalsnul\\/'
    lines = []
    for _ in range(MANGLED):
        text = json.dumps(random_case(rng))
        at = rng.randint(0, len(text))
        junk = "".join(rng.choice(noise) for _ in range(rng.randint(0, 2)))
        lines.append(text[:at] + junk + text[at + rng.randint(0, 2) :] + "\n")
    return "".join(lines)


def both(stdin):
    results = {}
    for runtime in RUNTIMES:
        code, out, err = run_harness("recommend", stdin=stdin, args=["--batch"], runtime=runtime)
        assert code == 0, err
        results[runtime] = out.splitlines()
    cpython, micropython = results["cpython"], results["micropython"]
    mismatches = [i for i, (a, b) in enumerate(zip(cpython, micropython, strict=True)) if a != b]
    assert not mismatches, "first mismatch at line %d:\n%s\n%s" % (
        mismatches[0],
        cpython[mismatches[0]],
        micropython[mismatches[0]],
    )
    return cpython


def test_generated_cases_give_identical_bytes_on_both_runtimes():
    cpython = both(generated_lines())
    assert len(cpython) == WELL_FORMED + BROKEN
    ok = sum(line.startswith("0 ") for line in cpython)
    assert ok >= WELL_FORMED  # every well-formed case gave a recommendation
    assert sum(line.startswith("2 error: ") for line in cpython) == BROKEN


def test_mangled_text_gives_identical_bytes_on_both_runtimes():
    stdin = mangled_lines()
    cpython = both(stdin)
    assert len(cpython) == MANGLED
    refused = sum(line.startswith("2 error: input ") for line in cpython)
    assert refused >= MANGLED // 3  # most mangling breaks the JSON itself
    # what CPython's own json refuses, both runtimes refuse
    for text, line in zip(stdin.splitlines(), cpython, strict=True):
        try:
            json.loads(text)
        except ValueError:
            assert line.startswith("2 error: input "), (text, line)

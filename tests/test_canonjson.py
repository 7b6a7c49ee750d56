"""Canonical JSON: the bytes both runtimes print, equal to CPython's sorted compact JSON."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import canonjson
from simulator.runtime import run_micropython

# Non-integral floats of at most 6 significant digits: %.6g prints them as repr does.
SIX_DIGIT_FLOATS = st.integers(-(10**6), 10**6).filter(lambda n: n % 1000).map(lambda n: n / 1000)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | SIX_DIGIT_FLOATS | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=20,
)


@given(VALUES)
def test_matches_cpython_sorted_compact_ascii_json(value):
    assert canonjson.dumps(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))


def test_floats_print_six_significant_digits():
    assert canonjson.dumps([0.16, 1.0, -0.0, 1 / 3, 1e22]) == "[0.16,1,-0,0.333333,1e+22]"


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), {1: 2}, b"x", {"a": object()}])
def test_refuses_what_json_cannot_say(bad):
    with pytest.raises((TypeError, ValueError)):
        canonjson.dumps(bad)


def test_micropython_prints_the_same_bytes():
    value = {
        "zeta": [1, -2, 0.16, 0.3, 1 / 3, 1e-7, 123456789.0, -0.0, None, True, False],
        "alpha": {"é": 'a"b\\c\n\t\x01 😀', "": []},
        "mid": "plain text",
    }
    code = "from core import canonjson\nprint(canonjson.dumps(%r))\n" % (value,)
    proc = run_micropython(code=code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip("\n") == canonjson.dumps(value)

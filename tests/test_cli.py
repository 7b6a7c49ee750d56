"""The command line a clinician or maintainer types: exit codes and one-line errors."""

import io
import json

import pytest
from casegen import random_case
from hypothesis import given, settings
from hypothesis import strategies as st
from simcli import simulator

from simulator.harness import recommend
from simulator.runtime import RUNTIMES


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_recommend_prints_one_json_recommendation(runtime):
    case = {"age": 52, "sex": "F", "conditions": ["fibromyalgia"], "qst": {"z": 1.6}}
    proc = simulator("recommend", "--runtime", runtime, stdin=json.dumps(case))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["gauge_mm"] == 0.16
    assert result["reasons"][0] == {
        "dimension": "gauge_mm",
        "rule": "F-SENSITIVE",
        "text": "0.16 mm: a sensitive patient",
    }
    assert proc.stdout.count("\n") == 1 and proc.stderr == ""


CASE = '{"age": 40, "region": "lumbar"}'
LAST = '"last": {"gauge_mm": 0.25, "needles": 6, "depth": "deep", "manipulation": "basic"'
BAD_INPUTS = [
    # Text CPython's json refuses, and MicroPython's lenient json would read as something else.
    ("{not json", "not valid JSON (line 1, column 2: expected a key"),
    ("", "not valid JSON (line 1, column 1: expected a value)"),
    ('{"age":4 0}', "not valid JSON (line 1, column 10: expected ',' or '}')"),
    ('{"age" 40}', "column 8: expected ':' after the key"),
    ('{"age":40,,}', "column 11: expected a key"),
    ('{"age":40,}', "column 11: expected a key"),
    ("[1,]", "column 4: expected a value"),
    ('{"age":40}\x00', "column 11: expected the end after one value"),
    ('{"age": 040}', "column 10: expected ',' or '}'"),
    ('{"age": 40.}', "column 12: expected a digit"),
    ('{"age": NaN}', "column 9: expected a value"),
    ('{"age": -Infinity}', "column 10: expected a digit"),
    ('{"age": 40, "sex": "\\x46"}', "column 21: an unknown escape"),
    ('{"age": 40, "sex": "\\ud800"}', "a \\u escape of a UTF-16 surrogate"),
    ('{"age": 40, "sex": "F\tM"}', "column 22: a control character in a string"),
    ('{"age": 1' + "0" * 30 + "}", "a number over 24 characters"),
    ('{"age": 40, "age": 4}', 'input gives "age" twice; give each field once'),
    ('{"age": 40, "\\u0061ge": 4}', 'input gives "\\u0061ge" twice'),
    ("\n\n  [", "not valid JSON (line 3, column 4: expected a value)"),
    # Bytes that are not UTF-8 text (MicroPython's decoder takes overlong and surrogate forms).
    (b'{"age": 40, "sex": "\xff"}', "input is not UTF-8 text (byte 21); save it as UTF-8"),
    (b'{"age": 40, "sex": "\xc0\x80"}', "input is not UTF-8 text (byte 21)"),
    (b'{"age": 40, "sex": "\xed\xa0\x80"}', "input is not UTF-8 text (byte 21)"),
    (b'{"age": 40, "sex": "\xf4\x90\x80\x80"}', "input is not UTF-8 text (byte 21)"),
    (b'{"age": 40, "sex": "\xe2\x82"}', "input is not UTF-8 text (byte 21)"),
    (b"\xef\xbb\xbf" + CASE.encode(), "not valid JSON (line 1, column 1: expected a value)"),
    # Megabytes, and nesting deeper than a case needs (CPython's json would recurse).
    (b" " * 3_000_000 + CASE.encode(), "input is over 4096 bytes; give one case"),
    (b"\xff" * 1_000_000, "input is over 4096 bytes"),
    ("[" * 2000 + "]" * 2000, "input is nested deeper than 8 levels"),
    ('{"a":' * 9 + "1" + "}" * 9, "input is nested deeper than 8 levels"),
    # Well-formed JSON that is not a case.
    ('{"age": 40, "weight": 80}', 'unknown field "weight"'),
    ('{"age": 130}', "age: a whole number from 0 to 120"),
    ('{"age": "forty"}', "age: a whole number"),
    ('{"age": 4e1}', "age: a whole number from 0 to 120 (got 40.0)"),
    ('{"age": 40, "history": {"sessions": 1.0}}', "history.sessions: a whole number from 0"),
    ('{"age": 1e400}', "age: a whole number from 0 to 120 (got a non-finite number)"),
    ('{"sex": "F"}', "age: required"),
    ('{"age": 40, "conditions": ["asthma"]}', "conditions: one of diabetes, cancer"),
    ('{"age": 40, "conditions": ["cancer", "cancer"]}', "conditions: cancer is given twice"),
    ('{"age": 40, "chronic": "yes"}', "chronic: true or false"),
    ('[{"age": 40}]', "case: a JSON object"),
    ('{"age": 40, "override": true}', "override: a list of overridden contraindications, e.g. ["),
    # Contradictions between fields: one line naming both.
    (
        '{"age": 30, "sex": "M", "contraindications": ["pregnancy_first_trimester"]}',
        "contraindications: pregnancy_first_trimester does not fit sex M; check both fields",
    ),
    (
        '{"age": 8, "contraindications": ["pregnancy_first_trimester"]}',
        "contraindications: pregnancy_first_trimester does not fit age 8; check both fields",
    ),
    (
        '{"age": 40, "contraindications": ["lymphedema"], "override": ["bleeding_disorder"]}',
        "override: bleeding_disorder is not in contraindications; check both fields",
    ),
    (
        '{"age": 30, "sex": "F", "contraindications": ["pregnancy_first_trimester"],'
        ' "override": ["pregnancy_first_trimester"]}',
        "override: pregnancy_first_trimester is a caution, not a contraindication",
    ),
    (
        '{"age": 40, "history": {"sessions": 0, "last_response": "flare"}}',
        "history.last_response: given, but history.sessions is 0",
    ),
    (
        '{"age": 40, "history": {"sessions": 2, %s, "status": "ok"}}}' % LAST,
        'history.last: unknown field "status"; allowed: adjuncts, depth, gauge_mm,',
    ),
    (
        '{"age": 40, "history": {"sessions": 2, %s, "adjuncts": ["cupping"]}}}' % LAST,
        "history.last.adjuncts: one of microneedling, e-stim",
    ),
    (
        '{"age": 40, "history": {"sessions": 2, "last": {"gauge_mm": 0.22}}}',
        "history.last.needles: required (the dose given; history.last null if none)",
    ),
    (
        '{"age": 40, "qst": {"category": "low", "censored": true}}',
        'qst: category "low" cannot come from censored trials',
    ),
]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("stdin,message", BAD_INPUTS, ids=lambda x: repr(x)[:40])
def test_bad_input_exits_2_with_one_line_and_no_traceback(runtime, stdin, message):
    proc = simulator("recommend", "--runtime", runtime, stdin=stdin)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert message in lines[0]


def test_out_of_memory_on_micropython_exits_2_with_one_line():
    # A 4 KB case whose list of 2000 numbers does not fit beside the firmware in the 64 KB
    # heap of the micropython runtime: a real MemoryError, caught where it happens.
    text = '{"age": 40, "conditions": [' + ",".join(["1"] * 2000) + "]}"
    assert len(text) <= recommend.MAX_BYTES
    proc = simulator("recommend", "--runtime", "micropython", stdin=text)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == "error: out of memory reading the case; give a smaller case\n"


def test_out_of_memory_on_cpython_exits_2_with_one_line(monkeypatch):
    # CPython cannot be made to run out of memory on a 4 KB input, so the MemoryError is
    # injected (a mock, the only one here) at each step the harness takes with the input.
    def exhausted(*args, **kwargs):
        raise MemoryError

    for module, name in ((recommend.json, "loads"), (recommend.strictjson, "check")):
        with monkeypatch.context() as patch:
            patch.setattr(module, name, exhausted)
            out, err = io.StringIO(), io.StringIO()
            code = recommend.main([], io.BytesIO(CASE.encode()), out, err)
        assert (code, out.getvalue()) == (2, "")
        assert err.getvalue() == "error: out of memory reading the case; give a smaller case\n"


# The edges of what the command reads, exactly at each limit (the same code on both runtimes).
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_limits_are_exact(runtime):
    padded = CASE + " " * (recommend.MAX_BYTES - len(CASE))
    assert simulator("recommend", "--runtime", runtime, stdin=padded).returncode == 0
    over = simulator("recommend", "--runtime", runtime, stdin=padded + " ")
    assert over.returncode == 2 and "over 4096 bytes" in over.stderr
    nested = '{"age": 40, "history": ' + '{"a":' * 7 + "1" + "}" * 7 + "}"  # 8 levels
    assert "unknown field" in simulator("recommend", "--runtime", runtime, stdin=nested).stderr
    number = '{"age": 4' + "0" * 19 + "e-19}"  # 24 characters: still a number, 4.0
    assert "(got 4.0)" in simulator("recommend", "--runtime", runtime, stdin=number).stderr
    longer = number.replace("e-19", "e-020")
    assert "a number over 24" in simulator("recommend", "--runtime", runtime, stdin=longer).stderr


def test_the_utf8_check_agrees_with_cpythons_strict_decoder():
    # Every lead byte with every second byte, and the edges of table 3-7 for longer forms.
    samples = [bytes([a, b]) for a in range(0x80, 0x100) for b in range(0x00, 0x100, 7)]
    for lead in (0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5):
        for second in (0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0):
            samples += [bytes([lead, second, third]) for third in (0x7F, 0x80, 0xBF, 0xC0)]
            samples += [bytes([lead, second, 0x80, last]) for last in (0x7F, 0x80, 0xBF)]
    for sample in samples:
        data = b'"' + sample + b'"'
        try:
            data.decode("utf-8")
            expected = True
        except UnicodeDecodeError:
            expected = False
        try:
            recommend.strictjson.check(data)
            accepted = True
        except recommend.strictjson.JsonTextError:
            accepted = False
        assert accepted == expected, sample.hex()


JSONISH = st.text(alphabet='{}[]",:0123456789.eE+- \t\ntruefalsnuNIy\\/bx', max_size=40)


@settings(max_examples=500, deadline=None)
@given(
    rng=st.randoms(use_true_random=False),
    noise=JSONISH,
    at=st.integers(0, 1000),
    cut=st.integers(0, 2),
    mangle=st.booleans(),
)
def test_what_cpythons_json_refuses_is_refused_and_nothing_more(rng, noise, at, cut, mangle):
    text = noise
    if mangle:  # a well-formed case with a few characters changed
        case = json.dumps(random_case(rng))
        at %= len(case) + 1
        text = case[:at] + noise[:2] + case[at + cut :]
    try:
        json.loads(text)
        cpython_reads = True
    except (ValueError, RecursionError):
        cpython_reads = False
    try:
        recommend.strictjson.check(text.encode())
        message = None
    except recommend.strictjson.JsonTextError as err:
        message = str(err)
    if not cpython_reads:
        assert message is not None, text
    elif message is not None:  # refused on purpose: text the two runtimes read differently
        if "expected a value" in message or "expected a digit" in message:
            assert "NaN" in text or "Infinity" in text, (text, message)
        else:
            assert any(why in message for why in ("twice", "surrogate", "over 24")), message

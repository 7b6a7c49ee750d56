# Strict JSON check for text from outside (stdin, a file) before MicroPython's json reads it.
# MicroPython's json is lenient and silently reads malformed text as something else
# ({"age":4 0} as age 4, [1,] as [1], "\x41" as "x41"), so both runtimes first check the raw
# bytes against the JSON grammar (RFC 8259) as CPython's json reads it, and refuse what either
# runtime would read differently: NaN and Infinity, a key given twice (CPython keeps the last
# one; a person meant one of them), a \u escape of a UTF-16 surrogate (MicroPython does not
# pair them), a number too long to mean anything, and nesting deeper than a case needs (CPython
# recurses, MicroPython does not). Works on bytes: indexing a MicroPython str that holds
# non-ASCII text walks it from the start, bytes index in constant time.
# Runs on CPython and on micropython (the recommend harness imports it on both).
import json

MAX_DEPTH = 8  # a case nests 4 deep (case > history > last > adjuncts)
MAX_NUMBER_CHARS = 24

_WS = b" \t\n\r"
_DIGITS = b"0123456789"
_HEX = b"0123456789abcdefABCDEF"
_ESCAPES = b'"\\/bfnrt'
_LITERALS = (b"true", b"false", b"null")
_QUOTE = 0x22
_BACKSLASH = 0x5C


class JsonTextError(ValueError):
    """The text is not JSON both runtimes read alike; str() is one line saying where."""


# Unicode table 3-7, well-formed UTF-8: (first byte from, to, bytes that follow, the second
# byte's range); every later byte is 80..BF.
_UTF8 = (
    (0xC2, 0xDF, 1, 0x80, 0xBF),
    (0xE0, 0xE0, 2, 0xA0, 0xBF),
    (0xE1, 0xEC, 2, 0x80, 0xBF),
    (0xED, 0xED, 2, 0x80, 0x9F),
    (0xEE, 0xEF, 2, 0x80, 0xBF),
    (0xF0, 0xF0, 3, 0x90, 0xBF),
    (0xF1, 0xF3, 3, 0x80, 0xBF),
    (0xF4, 0xF4, 3, 0x80, 0x8F),
)


def _utf8(data):
    # Well-formed UTF-8 as CPython's strict decoder reads it; MicroPython's decoder also takes
    # overlong forms (C0 80 as NUL), encoded surrogates and code points over U+10FFFF, so both
    # runtimes check here instead.
    n = len(data)
    at = 0
    while at < n:
        byte = data[at]
        if byte < 0x80:
            at += 1
            continue
        ok = False
        need = 0
        for first, last, need, low, high in _UTF8:
            if first <= byte <= last:
                ok = at + need < n and low <= data[at + 1] <= high
                for k in range(2, need + 1):
                    ok = ok and 0x80 <= data[at + k] <= 0xBF
                break
        if not ok:
            raise JsonTextError("is not UTF-8 text (byte %d); save it as UTF-8" % (at + 1))
        at += need + 1


def _fail(data, at, what):
    line = data.count(b"\n", 0, at) + 1
    column = at - (data.rfind(b"\n", 0, at) + 1) + 1
    raise JsonTextError("is not valid JSON (line %d, column %d: %s)" % (line, column, what))


def _skip(data, at):
    n = len(data)
    while at < n and data[at] in _WS:
        at += 1
    return at


def _string(data, at):
    # data[at] is the opening quote; returns the index after the closing one.
    n = len(data)
    at += 1
    while at < n:
        byte = data[at]
        if byte == _QUOTE:
            return at + 1
        if byte < 0x20:
            _fail(data, at, "a control character in a string; escape it")
        if byte == _BACKSLASH:
            at += 1
            if at >= n:
                break
            if data[at] == 0x75:  # u
                digits = data[at + 1 : at + 5]
                if len(digits) != 4 or any(d not in _HEX for d in digits):
                    _fail(data, at - 1, "\\u needs four hex digits")
                code = int(digits, 16)
                if 0xD800 <= code <= 0xDFFF:
                    _fail(data, at - 1, "a \\u escape of a UTF-16 surrogate; write the character")
                at += 4
            elif data[at] not in _ESCAPES:
                _fail(data, at - 1, "an unknown escape")
        at += 1
    _fail(data, n, "a string that is never closed")
    return n  # not reached


def _key(data, at, keys):
    # An object member's key and its colon; returns the index of the value.
    if at >= len(data) or data[at] != _QUOTE:
        _fail(data, at, "expected a key in double quotes")
    end = _string(data, at)
    token = data[at:end].decode()
    key = json.loads(token) if "\\" in token else token[1:-1]
    if key in keys:
        raise JsonTextError("gives %s twice; give each field once" % token)
    keys.add(key)
    at = _skip(data, end)
    if at >= len(data) or data[at] != 0x3A:  # :
        _fail(data, at, "expected ':' after the key")
    return _skip(data, at + 1)


def _digits(data, at):
    start = at
    while at < len(data) and data[at] in _DIGITS:
        at += 1
    if at == start:
        _fail(data, at, "expected a digit")
    return at


def _number(data, at):
    start = at
    if data[at] == 0x2D:  # -
        at += 1
    if at < len(data) and data[at] == 0x30:  # a lone 0: no leading zeros
        at += 1
    else:
        at = _digits(data, at)
    if at < len(data) and data[at] == 0x2E:  # .
        at = _digits(data, at + 1)
    if at < len(data) and data[at] in b"eE":
        at += 1
        if at < len(data) and data[at] in b"+-":
            at += 1
        at = _digits(data, at)
    if at - start > MAX_NUMBER_CHARS:
        _fail(data, start, "a number over %d characters" % MAX_NUMBER_CHARS)
    return at


def check(data, max_depth=MAX_DEPTH):
    """Raises JsonTextError unless data (bytes) is UTF-8 text of exactly one JSON value that
    CPython's json and MicroPython's json read alike; then json.loads(data) is safe on both.
    Iterative: deep nesting is refused, never recursed into."""
    _utf8(data)
    n = len(data)
    stack = []  # per open container: its set of keys (object) or None (array)
    at = _skip(data, 0)
    while True:
        # A value starts at `at`.
        if at >= n:
            _fail(data, at, "expected a value")
        byte = data[at]
        if byte == 0x7B or byte == 0x5B:  # { [
            if len(stack) >= max_depth:
                raise JsonTextError("is nested deeper than %d levels" % max_depth)
            at = _skip(data, at + 1)
            if byte == 0x7B:
                stack.append(set())
                if at >= n or data[at] != 0x7D:  # }
                    at = _key(data, at, stack[-1])
                    continue
            else:
                stack.append(None)
                if at >= n or data[at] != 0x5D:  # ]
                    continue
            at += 1
            stack.pop()
        elif byte == _QUOTE:
            at = _string(data, at)
        elif byte == 0x2D or byte in _DIGITS:
            at = _number(data, at)
        else:
            for word in _LITERALS:
                if data[at : at + len(word)] == word:
                    at += len(word)
                    break
            else:
                _fail(data, at, "expected a value")
        # A value ended: close containers, or find the next member.
        while True:
            at = _skip(data, at)
            if not stack:
                if at != n:
                    _fail(data, at, "expected the end after one value")
                return
            keys = stack[-1]
            if at < n and data[at] == 0x2C:  # ,
                at = _skip(data, at + 1)
                if keys is not None:
                    at = _key(data, at, keys)
                break
            closer = 0x5D if keys is None else 0x7D
            if at < n and data[at] == closer:
                stack.pop()
                at += 1
                continue
            _fail(data, at, "expected ',' or '%s'" % chr(closer))

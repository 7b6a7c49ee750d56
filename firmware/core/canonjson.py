# Canonical JSON: sorted keys, no spaces, ASCII only, floats to 6 significant digits.
# MicroPython's json has no sort_keys and orders dicts by hash, so both runtimes use this
# to emit the same bytes. 6 digits also survive the boards' single-precision floats.

# The short escapes CPython's json uses, so both print the same bytes.
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def dumps(obj):
    parts = []
    _emit(obj, parts.append)
    return "".join(parts)


def dump(obj, write):
    """Writes dumps(obj) piece by piece (write(str) per piece): never the whole document."""
    _emit(obj, write)


def _emit(obj, put):
    kind = type(obj)
    if obj is None:
        put("null")
    elif obj is True:
        put("true")
    elif obj is False:
        put("false")
    elif kind is int:
        put(str(obj))
    elif kind is float:
        if obj - obj != 0:  # inf and nan have no JSON form
            raise ValueError("canonjson: non-finite float")
        put("{:.6g}".format(obj))
    elif kind is str:
        _emit_str(obj, put)
    elif kind is dict:
        put("{")
        sep = ""
        for key in sorted(obj):
            if type(key) is not str:
                raise TypeError("canonjson: keys must be str")
            put(sep)
            _emit_str(key, put)
            put(":")
            _emit(obj[key], put)
            sep = ","
        put("}")
    elif kind is list or kind is tuple:
        put("[")
        sep = ""
        for item in obj:
            put(sep)
            _emit(item, put)
            sep = ","
        put("]")
    else:
        raise TypeError("canonjson: cannot encode " + kind.__name__)


def _emit_str(text, put):
    plain = '"' not in text and "\\" not in text
    if plain:
        for byte in text.encode():  # ints: no allocation per character
            if byte < 32 or byte > 126:
                plain = False
                break
    if plain:  # the common case: one part for the whole string
        put('"')
        put(text)
        put('"')
        return
    put('"')
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            put(_ESCAPES[ch])
        elif 32 <= code < 127:
            put(ch)
        elif code < 0x10000:
            put("\\u%04x" % code)
        else:  # outside the BMP: a UTF-16 surrogate pair, as JSON requires
            code -= 0x10000
            put("\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF)))
    put('"')

# Binary records: what the store keeps on flash and the laptop decodes (DESIGN 5,
# docs/storage.md). Little-endian. Every record:
#   0 u8  type           (TYPE_*)
#   1 u8  version | flags (bits 0-3 version, bit 7 clock valid, bits 4-6 zero)
#   2 u8  length          (whole record, header to CRC)
#   3 u32 seq             (never reused)
#   7 u16 boot            (boot counter, low 16 bits)
#   9 u32 uptime ms       (since that boot)
#  13 u32 wall-clock s    (Unix time; present only when the clock-valid bit is set)
#  13|17  payload         (per type, below)
#  -4 u32 CRC32           (binascii.crc32 of every byte before it)
# Vocabularies are stored as indexes and bitmasks over the tuples in core.vocab (and rule
# ids over core.dosage.RULES): they may grow at the end, never be reordered (tests pin them).
# Encoding goes into the caller's buffer (struct.pack_into); decoding validates everything
# and raises RecordError, so a caller never sees garbage as a reading.
import binascii
import struct

from micropython import const

from core.vocab import (
    ADJUNCTS,
    CONDITIONS,
    CONTRAINDICATIONS,
    DEPTHS,
    END_NAMES,
    FLAGS,
    MANIPULATIONS,
    QST_CATEGORIES,
    REGIONS,
    RESPONSES,
    ROLES,
    SEXES,
    SIDES,
    SITES,
    STATUSES,
)

TYPE_SESSION = const(1)
TYPE_TRIAL = const(2)
TYPE_SITE = const(3)
TYPE_RECOMMENDATION = const(4)
TYPE_RESPONSE = const(5)
TYPE_CURVE = const(6)
TYPE_EVENT = const(7)
TYPE_DOSE = const(8)  # the dose actually given (the clinician may give less than recommended)
TYPE_NAMES = (
    None,
    "session",
    "trial",
    "site",
    "recommendation",
    "response",
    "curve",
    "event",
    "dose",
)

# Field order of the tuple each encode() takes; decode() returns them under these names.
FIELDS = (
    (),
    (
        "code",
        "age",
        "sex",
        "conditions",
        "flags",
        "contraindications",
        "overrides",
        "region",
        "qst_z_x100",
        "qst_category",
        "sessions",
        "last_response",
        "last_dose",
    ),
    # trial: core.ppt.Trial.result()'s names, plus where and which trial it was
    (
        "site",
        "side",
        "trial",
        "end",
        "flags",
        "ppt_kpa_x10",
        "peak_kpa_x10",
        "rate_kpa_s_x10",
        "ramp_ms",
    ),
    # site: core.ppt.site_summary()'s names, its role, and core.qst.score()'s
    (
        "site",
        "side",
        "role",
        "n_trials",
        "n_valid",
        "n_censored",
        "ppt_kpa_x10",
        "ppt_min_kpa_x10",
        "cv_pct_x10",
        "z_x100",
        "z_max_x100",
        "category",
    ),
    # recommendation: core.dosage.recommend()'s names
    (
        "status",
        "gauge_mm",
        "needles",
        "depth",
        "manipulation",
        "adjuncts",
        "sessions_per_week",
        "overrides",
        "reasons",
        "rules",
        "ruleset",
    ),
    ("response", "session_seq"),
    ("trial_seq", "part", "interval_ms", "samples_kpa_x10"),
    ("code", "detail", "a", "b"),
    # dose: what was given, answering the recommendation record recommendation_seq
    ("recommendation_seq", "gauge_mm", "needles", "depth", "manipulation", "adjuncts"),
)

# Names are stored as 1 + their index in the core.vocab tuple (0: none): site, side, role;
# how a trial ended as its index in END_NAMES (3 bits), its QC flags as core.ppt's byte.
END_MAX = const(7)
TRIAL_MAX = const(7)  # the trial number is 3 bits; larger numbers are stored as 7
RAMP_MAX_MS = const(65534)  # u16 (65535: none); a longer ramp is stored as 65534
CURVE_MAX_SAMPLES = const(100)
CODE_MAX_CHARS = const(16)

EV_BOOT = const(1)  # detail: reset cause (the app's code); a: records found at mount
EV_FAULT = const(2)  # detail: fault code (sensor, ...); a, b: fault data
EV_TIME_SET = const(3)  # a: clock before (0 when it was not valid), b: clock set to (Unix s)
EV_OVERRIDE = const(4)  # a: seq of the session start the clinician overrode
EV_STORE = const(5)  # detail: ST_*; a: seq or segment where found; b: bytes involved
# a: calibration id; b: |span| in counts per kg; detail 1: the cell is wired reversed
# (a negative span). The trials after it were measured with this calibration.
EV_CALIBRATION = const(6)
EV_EXCLUDED = const(7)  # a: seq of a trial the clinician discarded (it is taken again)
EV_ABORT = const(8)  # a: seq of the session start of a visit ended before its dose
EV_CRASH = const(9)  # detail: 1 MemoryError, 2 any other error in a task; a: task number
ST_CORRUPT = const(1)  # bytes that fail the CRC were skipped inside a segment
ST_TORN = const(2)  # the end of a segment is an incomplete record (a cut on a non-atomic fs)
ST_STATE = const(3)  # the state file was missing or bad: rebuilt from the log
ST_EMPTY = const(4)  # an empty segment (a cut before its first flush) was removed
ST_IO = const(5)  # a write to the log failed with an I/O error; b: errno
ST_ORDER = const(6)  # a record with a sequence number not above the previous was skipped
ST_STRAY = const(
    7
)  # names in the log directory that are not the store's were skipped; b: how many

_VERSION = const(1)  # every type is at version 1
_CLOCK_VALID = const(0x80)
_NONE8 = const(0xFF)
_NONE16 = const(0xFFFF)
_NONE_I16 = const(-32768)
_U32 = const(0xFFFFFFFF)
RULESET_MAX_CHARS = const(32)
_RULE_BYTES_MAX = const(31)  # a rule mask of up to 248 rules

# Layouts. Every size and offset below is derived from these formats (or checked against
# them), so a field added to one cannot leave a byte unwritten (encode packs each whole).
_HEADER = "<BBBIHI"  # type, version | flags, length, seq, boot, uptime ms
_WALL = "<I"  # wall-clock s, only with the clock-valid bit
_CRC = "<I"
_TRIAL = "<BBBHHhH"  # site, side | end << 2 | trial << 5, flags, ppt, peak, rate, ramp ms
_SITE = "<BBBBBHHHhhB"  # site, side | role << 2, n trials / valid / censored, ppt, ppt min,
# cv, z, z max, category
_EVENT = "<BBII"
_RESPONSE = "<BI"
_CURVE = "<IBHB"  # then count x _SAMPLE
_SAMPLE = "<H"
# Session: u8 code length and the code, then _SESSION (its last 4 bytes: the last dose).
_SESSION = "<BBBBBBBhBHBBBBB"
# Recommendation: _RECOMMENDATION, u8 n and n bytes of rule mask, u8 n and n reason rules
# (1 + rule index, 0 none: one per dose dimension, then one per adjunct given), u8 length
# and the ruleset.
_RECOMMENDATION = "<BBBBBBBB"
_DOSE = "<IBBBBB"  # recommendation seq, gauge, needles, depth, manipulation, adjuncts
_REASONS_MAX = const(4 + 2)  # the four dimensions and every adjunct

HEADER_BYTES = struct.calcsize(_HEADER)
# The header's seq (after type, version | flags, length) and boot: consts, so the device
# keeps no names for them (tests/test_record.py checks them against _HEADER).
_SEQ_AT = const(3)
_BOOT_AT = const(7)
WALL_BYTES = struct.calcsize(_WALL)
CRC_BYTES = struct.calcsize(_CRC)
_SESSION_BYTES = struct.calcsize(_SESSION)
_CURVE_BYTES = struct.calcsize(_CURVE)
_SAMPLE_BYTES = struct.calcsize(_SAMPLE)
_RECOMMENDATION_BYTES = struct.calcsize(_RECOMMENDATION)
# Per type: the payload size when fixed (0 = variable), and the least and most it can be.
_PAYLOAD = (
    0,
    0,
    struct.calcsize(_TRIAL),
    struct.calcsize(_SITE),
    0,
    struct.calcsize(_RESPONSE),
    0,
    struct.calcsize(_EVENT),
    struct.calcsize(_DOSE),
)
_PAYLOAD_MIN = (
    0,
    1 + 1 + _SESSION_BYTES,
    _PAYLOAD[TYPE_TRIAL],
    _PAYLOAD[TYPE_SITE],
    _RECOMMENDATION_BYTES + 1 + 1 + 1 + 1,
    _PAYLOAD[TYPE_RESPONSE],
    _CURVE_BYTES + _SAMPLE_BYTES,
    _PAYLOAD[TYPE_EVENT],
    _PAYLOAD[TYPE_DOSE],
)
_PAYLOAD_MAX = (
    0,
    1 + CODE_MAX_CHARS + _SESSION_BYTES,
    _PAYLOAD[TYPE_TRIAL],
    _PAYLOAD[TYPE_SITE],
    _RECOMMENDATION_BYTES + 1 + _RULE_BYTES_MAX + 1 + _REASONS_MAX + 1 + RULESET_MAX_CHARS,
    _PAYLOAD[TYPE_RESPONSE],
    _CURVE_BYTES + _SAMPLE_BYTES * CURVE_MAX_SAMPLES,
    _PAYLOAD[TYPE_EVENT],
    _PAYLOAD[TYPE_DOSE],
)
# The longest record encode() writes (a full curve with a valid clock): every buffer that
# holds MAX_BYTES holds any record.
MAX_BYTES = HEADER_BYTES + WALL_BYTES + max(_PAYLOAD_MAX) + CRC_BYTES
EVENT_MAX_BYTES = HEADER_BYTES + WALL_BYTES + _PAYLOAD[TYPE_EVENT] + CRC_BYTES


class RecordError(ValueError):
    pass


def _bad(what, value):
    raise RecordError("%s: out of range (got %r)" % (what, value))


def _int(what, value, low, high):
    if type(value) is not int or not low <= value <= high:
        _bad(what, value)
    return value


def _index(what, value, vocab, none_code):
    # A name from vocab, or None when none_code >= 0: stored as 0 / 1 + index.
    if value is None and none_code >= 0:
        return none_code
    if type(value) is not str or value not in vocab:
        _bad(what, value)
    return vocab.index(value) + (1 if none_code == 0 else 0)


def _mask(what, names, vocab):
    if type(names) is not list and type(names) is not tuple:
        _bad(what, names)
    bits = 0
    for name in names:
        if type(name) is not str or name not in vocab:
            _bad(what, name)
        bits |= 1 << vocab.index(name)
    return bits


def _names(what, bits, vocab):
    if bits >> len(vocab):
        raise RecordError("%s: unknown bits 0x%x" % (what, bits))
    return [vocab[i] for i in range(len(vocab)) if bits >> i & 1]


def _ascii(what, text, low, high):
    if type(text) is not str or not low <= len(text) <= high:
        _bad(what, text)
    for ch in text:
        if not " " < ch <= "~":
            _bad(what, text)
    return text


def _code(code):
    # A pseudonymous patient code, never a name: A-Z 0-9 - only, with at least one digit.
    _ascii("code", code, 1, CODE_MAX_CHARS)
    digit = False
    for ch in code:
        if "0" <= ch <= "9":
            digit = True
        elif not ("A" <= ch <= "Z" or ch == "-"):
            _bad("code", code)
    if not digit:
        _bad("code", code)
    return code


def _rule_bytes():
    return (len(_this_ruleset()[1]) + 7) // 8


def _payload_size(rtype, fields):
    fixed = _PAYLOAD[rtype]
    if fixed:
        return fixed
    if rtype == TYPE_SESSION:
        return 1 + len(fields[0]) + _SESSION_BYTES
    if rtype == TYPE_RECOMMENDATION:
        reasons = fields[8]
        n = 0 if type(reasons) is not list and type(reasons) is not tuple else len(reasons)
        return _RECOMMENDATION_BYTES + 1 + _rule_bytes() + 1 + n + 1 + len(fields[10])
    return _CURVE_BYTES + _SAMPLE_BYTES * len(fields[3])  # curve


def size(rtype, wall_s, fields):
    """Bytes encode() will write for this record."""
    if type(rtype) is not int or not TYPE_SESSION <= rtype <= TYPE_DOSE:
        raise RecordError("type: unknown record type %r" % (rtype,))
    if type(fields) is not tuple or len(fields) != len(FIELDS[rtype]):
        raise RecordError(
            "%s: fields must be a tuple of %d" % (TYPE_NAMES[rtype], len(FIELDS[rtype]))
        )
    n = HEADER_BYTES + _payload_size(rtype, fields) + CRC_BYTES
    return n + WALL_BYTES if wall_s is not None else n


def encode(buf, off, rtype, seq, boot, uptime_ms, wall_s, fields):
    """Writes one record into buf at off; returns its length. wall_s None: clock not valid.

    Raises RecordError for a value out of range, before writing anything past off.
    """
    n = size(rtype, wall_s, fields)
    if off < 0 or off + n > len(buf):
        raise RecordError("buffer: no room for %d bytes at %d" % (n, off))
    _int("seq", seq, 1, _U32)
    _int("boot", boot, 0, 0xFFFF)
    _int("uptime_ms", uptime_ms, 0, _U32)
    flags = _VERSION
    p = off + HEADER_BYTES
    if wall_s is not None:
        _int("wall_s", wall_s, 0, _U32)
        flags |= _CLOCK_VALID
        p += WALL_BYTES
    # Validate and pack the payload first: a bad field leaves no header behind.
    if rtype == TYPE_TRIAL:
        _pack_trial(buf, p, fields)
    elif rtype == TYPE_SITE:
        _pack_site(buf, p, fields)
    elif rtype == TYPE_EVENT:
        code, detail, a, b = fields
        struct.pack_into(
            _EVENT,
            buf,
            p,
            _int("code", code, 1, 255),
            _int("detail", detail, 0, 255),
            _int("a", a, 0, _U32),
            _int("b", b, 0, _U32),
        )
    elif rtype == TYPE_RESPONSE:
        struct.pack_into(
            _RESPONSE,
            buf,
            p,
            _index("response", fields[0], RESPONSES, -1),
            _int("session_seq", fields[1], 0, _U32),
        )
    elif rtype == TYPE_CURVE:
        _pack_curve(buf, p, fields)
    elif rtype == TYPE_SESSION:
        _pack_session(buf, p, fields)
    elif rtype == TYPE_DOSE:
        _pack_dose(buf, p, fields)
    else:
        _pack_recommendation(buf, p, fields)
    struct.pack_into(_HEADER, buf, off, rtype, flags, n, seq, boot, uptime_ms)
    if wall_s is not None:
        struct.pack_into(_WALL, buf, off + HEADER_BYTES, wall_s)
    end = off + n - CRC_BYTES
    # A memoryview slice is the one allocation here; pass a memoryview to avoid a second.
    view = buf if type(buf) is memoryview else memoryview(buf)
    struct.pack_into(_CRC, buf, end, binascii.crc32(view[off:end]))
    return n


def _opt(what, value, low, high, none):
    # An optional int: None is stored as the none code.
    return none if value is None else _int(what, value, low, high)


def _clamp(what, value, low, high, none):
    # An int measured by the device: never refused for its size (a trial must never be lost
    # to a counter overflow), only for not being an int; None is the none code.
    if value is None:
        return none
    _int(what, value, -0x40000000, 0x3FFFFFFF)
    return low if value < low else high if value > high else value


def _pack_trial(buf, p, fields):
    site, side, trial, end, qc, ppt, peak, rate, ramp_ms = fields
    _int("trial", trial, 0, 0x3FFFFFFF)
    struct.pack_into(
        _TRIAL,
        buf,
        p,
        _index("site", site, SITES, 0),
        _index("side", side, SIDES, 0)
        | _index("end", end, END_NAMES, -1) << 2
        | min(trial, TRIAL_MAX) << 5,
        _int("flags", qc, 0, 255),
        _clamp("ppt_kpa_x10", ppt, 0, _NONE16 - 1, _NONE16),
        _clamp("peak_kpa_x10", peak, 0, _NONE16 - 1, _NONE16),
        _clamp("rate_kpa_s_x10", rate, -32767, 32767, _NONE_I16),
        _clamp("ramp_ms", ramp_ms, 0, RAMP_MAX_MS, _NONE16),
    )


def _pack_site(buf, p, fields):
    site, side, role, trials, valid, censored, ppt, ppt_min, cv, z, z_max, category = fields
    _int("n_trials", trials, 0, 255)
    _int("n_valid", valid, 0, trials)
    _int("n_censored", censored, 0, trials - valid)
    struct.pack_into(
        _SITE,
        buf,
        p,
        _index("site", site, SITES, 0),
        _index("side", side, SIDES, 0) | _index("role", role, ROLES, 0) << 2,
        trials,
        valid,
        censored,
        _clamp("ppt_kpa_x10", ppt, 0, _NONE16 - 1, _NONE16),
        _clamp("ppt_min_kpa_x10", ppt_min, 0, _NONE16 - 1, _NONE16),
        _clamp("cv_pct_x10", cv, 0, _NONE16 - 1, _NONE16),
        _clamp("z_x100", z, -32767, 32767, _NONE_I16),
        _clamp("z_max_x100", z_max, -32767, 32767, _NONE_I16),
        _index("category", category, QST_CATEGORIES, 0),
    )


def _pack_curve(buf, p, fields):
    trial_seq, part, interval_ms, samples = fields
    if type(samples) is not list and type(samples) is not tuple:
        _bad("samples_kpa_x10", samples)
    if not 1 <= len(samples) <= CURVE_MAX_SAMPLES:
        _bad("samples_kpa_x10 count", len(samples))
    for sample in samples:
        _int("samples_kpa_x10", sample, 0, 0xFFFF)
    struct.pack_into(
        _CURVE,
        buf,
        p,
        _int("trial_seq", trial_seq, 0, _U32),
        _int("part", part, 0, 255),
        _int("interval_ms", interval_ms, 1, 0xFFFF),
        len(samples),
    )
    p += _CURVE_BYTES
    for sample in samples:
        struct.pack_into(_SAMPLE, buf, p, sample)
        p += _SAMPLE_BYTES


def _pack_session(buf, p, fields):
    (code, age, sex, conditions, flags, contra, overrides, region, z, category, sessions,
     response, last_dose) = fields  # fmt: skip
    code = _code(code)
    if last_dose is None:
        dose = (_NONE8, _NONE8, _NONE8, _NONE8)
    else:
        if type(last_dose) is not list and type(last_dose) is not tuple or len(last_dose) != 4:
            _bad("last_dose", last_dose)
        for rung in last_dose:
            _int("last_dose", rung, 0, 254)
        dose = last_dose
    contra_bits = _mask("contraindications", contra, CONTRAINDICATIONS)
    override_bits = _mask("overrides", overrides, CONTRAINDICATIONS)
    if override_bits & ~contra_bits:
        _bad("overrides", overrides)  # only a contraindication the patient has is overridden
    values = (
        _int("age", age, 0, 254),
        _index("sex", sex, SEXES, -1),
        _mask("conditions", conditions, CONDITIONS),
        _mask("flags", flags, FLAGS),
        contra_bits,
        override_bits,
        _index("region", region, REGIONS, 0),
        _NONE_I16 if z is None else _int("qst_z_x100", z, -32767, 32767),
        _index("qst_category", category, QST_CATEGORIES, 0),
        _NONE16 if sessions is None else _int("sessions", sessions, 0, 0xFFFE),
        _index("last_response", response, RESPONSES, 0),
        dose[0],
        dose[1],
        dose[2],
        dose[3],
    )
    buf[p] = len(code)
    p += 1
    for i in range(len(code)):
        buf[p + i] = ord(code[i])
    struct.pack_into(_SESSION, buf, p + len(code), *values)


def _gauge(gauge_mm):
    # mm as the dosage rules give it (0.16) -> u8 mm x 100 (0: none)
    if gauge_mm is None:
        return 0
    if type(gauge_mm) is not float and type(gauge_mm) is not int:
        _bad("gauge_mm", gauge_mm)
    return _int("gauge_mm", int(gauge_mm * 100 + 0.5), 1, 254)


def _dose_values(gauge, needles, depth, manipulation, adjuncts):
    return (
        _gauge(gauge),
        _opt("needles", needles, 1, 254, 0),
        _index("depth", depth, DEPTHS, 0),
        _index("manipulation", manipulation, MANIPULATIONS, 0),
        _mask("adjuncts", adjuncts, ADJUNCTS),
    )


def _pack_dose(buf, p, fields):
    seq = _int("recommendation_seq", fields[0], 0, _U32)
    struct.pack_into(_DOSE, buf, p, seq, *_dose_values(*fields[1:]))


def _pack_recommendation(buf, p, fields):
    (status, gauge, needles, depth, manipulation, adjuncts, per_week, overrides, reasons,
     rules, ruleset) = fields  # fmt: skip
    _ascii("ruleset", ruleset, 1, RULESET_MAX_CHARS)
    if per_week is None:
        week = 0
    else:
        if type(per_week) is not list and type(per_week) is not tuple or len(per_week) != 2:
            _bad("sessions_per_week", per_week)
        week = _int("sessions_per_week", per_week[0], 1, 15)
        week |= _int("sessions_per_week", per_week[1], per_week[0], 15) << 4
    if type(rules) is not list and type(rules) is not tuple:
        _bad("rules", rules)
    ids = _rule_ids(ruleset)
    if ids is None:
        raise RecordError(
            "ruleset: only this firmware's ruleset %s can be encoded" % _this_ruleset()[0]
        )
    bits = _mask("rules", rules, ids)
    if type(reasons) is not list and type(reasons) is not tuple or len(reasons) > _REASONS_MAX:
        _bad("reasons", reasons)
    for reason in reasons:  # validated before anything is written
        if type(reason) is not dict or (reason["rule"] is not None and reason["rule"] not in ids):
            _bad("reasons", reason)
    head = (_index("status", status, STATUSES, -1),)
    head += _dose_values(gauge, needles, depth, manipulation, adjuncts)
    head += (week, _mask("overrides", overrides, CONTRAINDICATIONS))
    struct.pack_into(_RECOMMENDATION, buf, p, *head)
    p += _RECOMMENDATION_BYTES
    nbytes = _rule_bytes()
    buf[p] = nbytes
    p += 1
    for i in range(nbytes):
        buf[p + i] = bits >> (8 * i) & 0xFF
    p += nbytes
    buf[p] = len(reasons)
    p += 1
    for reason in reasons:
        rule = reason["rule"]
        buf[p] = 0 if rule is None else ids.index(rule) + 1
        p += 1
    buf[p] = len(ruleset)
    p += 1
    for i in range(len(ruleset)):
        buf[p + i] = ord(ruleset[i])


_RULESET = None


def _this_ruleset():
    # (name, rule ids) of this firmware's table. Imported on first use: the rule table is
    # the largest module, and only the code that runs the rules records recommendations.
    global _RULESET
    if _RULESET is None:
        from core import dosage

        _RULESET = (dosage.RULESET, tuple([rule[0] for rule in dosage.RULES]))
    return _RULESET


def _rule_ids(ruleset):
    # The rule bitmask is over RULES order of the ruleset named in the record; only this
    # firmware's table is known here (the host keeps older tables by ruleset name).
    name, ids = _this_ruleset()
    return ids if ruleset == name else None


def check(buf, off, end):
    """Length of the valid record at buf[off:end], 0 if none starts there, -1 if incomplete.

    Checks type, version, length and CRC, not the payload: what the store needs to scan.
    """
    if end - off < 3:
        return -1
    rtype = buf[off]
    flags = buf[off + 1]
    n = buf[off + 2]
    if not TYPE_SESSION <= rtype <= TYPE_DOSE or flags & 0x7F != _VERSION:
        return 0
    low = HEADER_BYTES + CRC_BYTES + (WALL_BYTES if flags & _CLOCK_VALID else 0)
    if not low + _PAYLOAD_MIN[rtype] <= n <= low + _PAYLOAD_MAX[rtype]:
        return 0
    if end - off < n:
        return -1
    crc = binascii.crc32(memoryview(buf)[off : off + n - CRC_BYTES])
    if crc != struct.unpack_from(_CRC, buf, off + n - CRC_BYTES)[0]:
        return 0
    return n


def seq_of(buf, off):
    return struct.unpack_from("<I", buf, off + _SEQ_AT)[0]


def boot_of(buf, off):
    return buf[off + _BOOT_AT] | buf[off + _BOOT_AT + 1] << 8


def header(buf, off=0):
    """(type, seq, boot, uptime_ms, wall_s) of the record at buf[off:]; wall_s None when
    the clock was not valid. Checks nothing: check() says whether a record is there."""
    rtype, flags, _, seq, boot, uptime_ms = struct.unpack_from(_HEADER, buf, off)
    wall_s = None
    if flags & _CLOCK_VALID:
        wall_s = struct.unpack_from(_WALL, buf, off + HEADER_BYTES)[0]
    return rtype, seq, boot, uptime_ms, wall_s


def count_records(buf, used):
    """How many records buf[:used] holds, packed whole as Store.read_into() packs them
    (each says its length). Allocates nothing."""
    n = 0
    off = 0
    while off < used:
        off += buf[off + 2]  # the header's length byte
        n += 1
    return n


def decode(buf, off=0, end=-1):
    """One record at buf[off:] as a dict: type name, header and the type's fields.

    Raises RecordError for anything that is not exactly one valid record (a wrong CRC,
    length, type, version or field value).
    """
    if end < 0:
        end = len(buf)
    n = check(buf, off, end)
    if n <= 0:
        raise RecordError("record: incomplete" if n < 0 else "record: bad type, length or CRC")
    if off + n != end:
        raise RecordError("record: %d bytes, but %d given" % (n, end - off))
    rtype, seq, boot, uptime_ms, wall_s = header(buf, off)
    p = off + HEADER_BYTES if wall_s is None else off + HEADER_BYTES + WALL_BYTES
    out = {
        "type": TYPE_NAMES[rtype],
        "seq": seq,
        "boot": boot,
        "uptime_ms": uptime_ms,
        "wall_s": wall_s,
    }
    stop = off + n - CRC_BYTES
    if rtype == TYPE_TRIAL:
        _unpack_trial(buf, p, out)
    elif rtype == TYPE_SITE:
        _unpack_site(buf, p, out)
    elif rtype == TYPE_EVENT:
        code, detail, a, b = struct.unpack_from(_EVENT, buf, p)
        if code == 0:
            raise RecordError("event: code 0")
        out.update(code=code, detail=detail, a=a, b=b)
    elif rtype == TYPE_RESPONSE:
        response, session_seq = struct.unpack_from(_RESPONSE, buf, p)
        out["response"] = _name("response", response, RESPONSES, -1)
        out["session_seq"] = session_seq
    elif rtype == TYPE_CURVE:
        _unpack_curve(buf, p, stop, out)
    elif rtype == TYPE_SESSION:
        _unpack_session(buf, p, stop, out)
    elif rtype == TYPE_DOSE:
        out["recommendation_seq"] = struct.unpack_from("<I", buf, p)[0]
        _unpack_dose(struct.unpack_from(_DOSE, buf, p)[1:], out)
    else:
        _unpack_recommendation(buf, p, stop, out)
    return out


def fields_of(decoded):
    """The encode() fields tuple of a decoded record (a round trip)."""
    return tuple([decoded[name] for name in FIELDS[TYPE_NAMES.index(decoded["type"])]])


def _name(what, code, vocab, none_code):
    if none_code >= 0 and code == none_code:
        return None
    index = code - (1 if none_code == 0 else 0)
    if not 0 <= index < len(vocab):
        raise RecordError("%s: unknown code %d" % (what, code))
    return vocab[index]


def _none(value, none):
    return None if value == none else value


def _unpack_trial(buf, p, out):
    site, packed, flags, ppt, peak, rate, ramp_ms = struct.unpack_from(_TRIAL, buf, p)
    out.update(
        site=_name("site", site, SITES, 0),
        side=_name("side", packed & 3, SIDES, 0),
        trial=packed >> 5,
        end=_name("end", packed >> 2 & END_MAX, END_NAMES, -1),
        flags=flags,
        ppt_kpa_x10=_none(ppt, _NONE16),
        peak_kpa_x10=_none(peak, _NONE16),
        rate_kpa_s_x10=_none(rate, _NONE_I16),
        ramp_ms=_none(ramp_ms, _NONE16),
    )


def _unpack_site(buf, p, out):
    (site, packed, trials, valid, censored, ppt, ppt_min, cv, z, z_max,
     category) = struct.unpack_from(_SITE, buf, p)  # fmt: skip
    if packed >> 4 or valid + censored > trials:
        raise RecordError(
            "site: reserved bits, or %d + %d of %d trials" % (valid, censored, trials)
        )
    out.update(
        site=_name("site", site, SITES, 0),
        side=_name("side", packed & 3, SIDES, 0),
        role=_name("role", packed >> 2, ROLES, 0),
        n_trials=trials,
        n_valid=valid,
        n_censored=censored,
        ppt_kpa_x10=_none(ppt, _NONE16),
        ppt_min_kpa_x10=_none(ppt_min, _NONE16),
        cv_pct_x10=_none(cv, _NONE16),
        z_x100=_none(z, _NONE_I16),
        z_max_x100=_none(z_max, _NONE_I16),
        category=_name("category", category, QST_CATEGORIES, 0),
    )


def _unpack_dose(values, out):
    gauge, needles, depth, manipulation, adjuncts = values
    out.update(
        gauge_mm=gauge / 100 if gauge else None,
        needles=needles or None,
        depth=_name("depth", depth, DEPTHS, 0),
        manipulation=_name("manipulation", manipulation, MANIPULATIONS, 0),
        adjuncts=_names("adjuncts", adjuncts, ADJUNCTS),
    )
    if (needles == 0) != (gauge == 0) or (needles == 0) != (depth == 0):
        raise RecordError("%s: a dose half given" % out["type"])


def _unpack_curve(buf, p, stop, out):
    trial_seq, part, interval_ms, count = struct.unpack_from(_CURVE, buf, p)
    if stop - p != _CURVE_BYTES + _SAMPLE_BYTES * count or not 1 <= count <= CURVE_MAX_SAMPLES:
        raise RecordError("curve: sample count does not match the length")
    if interval_ms == 0:
        raise RecordError("curve: interval 0")
    p += _CURVE_BYTES
    samples = list(struct.unpack_from("<%dH" % count, buf, p))  # one call: the host decodes many
    out.update(
        trial_seq=trial_seq,
        part=part,
        interval_ms=interval_ms,
        samples_kpa_x10=samples,
    )


def _text(what, buf, p, stop, low, high):
    n = buf[p]
    if not low <= n <= high or p + 1 + n > stop:
        raise RecordError("%s: bad length %d" % (what, n))
    chars = []
    for i in range(n):
        byte = buf[p + 1 + i]
        if not 32 < byte < 127:
            raise RecordError("%s: not printable ASCII" % what)
        chars.append(chr(byte))
    return "".join(chars), p + 1 + n


def _unpack_session(buf, p, stop, out):
    code, p = _text("code", buf, p, stop, 1, CODE_MAX_CHARS)
    if p + _SESSION_BYTES != stop:
        raise RecordError("session: length does not match the code")
    _code_checked(code)
    (age, sex, conditions, flags, contra, overrides, region, z, category, sessions, response,
     gauge, needles, depth, manipulation) = struct.unpack_from(_SESSION, buf, p)  # fmt: skip
    if age == _NONE8 or overrides & ~contra:
        raise RecordError("session: bad age or an override of an absent contraindication")
    dose = [gauge, needles, depth, manipulation]
    if dose == [_NONE8] * 4:
        last_dose = None
    elif _NONE8 in dose:
        raise RecordError("session: last dose half missing")
    else:
        last_dose = dose
    out.update(
        code=code,
        age=age,
        sex=_name("sex", sex, SEXES, -1),
        conditions=_names("conditions", conditions, CONDITIONS),
        flags=_names("flags", flags, FLAGS),
        contraindications=_names("contraindications", contra, CONTRAINDICATIONS),
        overrides=_names("overrides", overrides, CONTRAINDICATIONS),
        region=_name("region", region, REGIONS, 0),
        qst_z_x100=None if z == _NONE_I16 else z,
        qst_category=_name("qst_category", category, QST_CATEGORIES, 0),
        sessions=None if sessions == _NONE16 else sessions,
        last_response=_name("last_response", response, RESPONSES, 0),
        last_dose=last_dose,
    )


def _code_checked(code):
    try:
        _code(code)
    except RecordError:
        raise RecordError("session: not a patient code") from None


def _unpack_recommendation(buf, p, stop, out):
    values = struct.unpack_from(_RECOMMENDATION, buf, p)
    status, week, overrides = values[0], values[6], values[7]
    p += _RECOMMENDATION_BYTES
    nbytes = buf[p]
    if p + 1 + nbytes >= stop:
        raise RecordError("recommendation: rule mask too long")
    bits = 0
    for i in range(nbytes):
        bits |= buf[p + 1 + i] << (8 * i)
    p += 1 + nbytes
    nreasons = buf[p]
    if nreasons > _REASONS_MAX or p + 1 + nreasons >= stop:
        raise RecordError("recommendation: too many reasons")
    codes = [buf[p + 1 + i] for i in range(nreasons)]
    ruleset, p = _text("ruleset", buf, p + 1 + nreasons, stop, 1, RULESET_MAX_CHARS)
    if p != stop:
        raise RecordError("recommendation: length does not match")
    lo = week & 15
    hi = week >> 4
    if week and not 1 <= lo <= hi:
        raise RecordError("recommendation: sessions per week %d-%d" % (lo, hi))
    out["status"] = _name("status", status, STATUSES, -1)
    _unpack_dose(values[1:6], out)
    ids = _rule_ids(ruleset)
    out.update(
        sessions_per_week=[lo, hi] if week else None,
        overrides=_names("overrides", overrides, CONTRAINDICATIONS),
        # Another ruleset's bits are kept as numbers for a host that has its table.
        rules=None if ids is None else _names("rules", bits, ids),
        rule_bits=[i for i in range(8 * nbytes) if bits >> i & 1],
        reason_rules=[c - 1 if c else None for c in codes],
        reasons=None if ids is None else _reasons(out, codes, ids),
        ruleset=ruleset,
    )


def _reasons(out, codes, ids):
    # The plain-language reasons, rebuilt from the rule that set each dimension (the words
    # live in this firmware's rule table, core.dosage, not on flash).
    from core.dosage import DIMENSIONS, reason_text

    dims = list(DIMENSIONS) + list(out["adjuncts"])
    if len(codes) != (len(dims) if out["needles"] is not None else 0):
        raise RecordError("recommendation: %d reasons for %d dimensions" % (len(codes), len(dims)))
    reasons = []
    for i in range(len(codes)):
        code = codes[i]
        if code > len(ids):
            raise RecordError("recommendation: reason rule %d unknown" % code)
        rule = ids[code - 1] if code else None
        dim = dims[i]
        value = out[dim] if dim in DIMENSIONS else dim
        reasons.append({"dimension": dim, "rule": rule, "text": reason_text(dim, value, rule)})
    return reasons


def session_fields(code, case):
    """Fields of a session start record from a patient code and a parsed case."""
    history = case["history"]
    last_dose = None
    if history is not None and history["last_dose"] is not None:
        last_dose = list(history["last_dose"])
    z = case["qst_z"]
    return (
        code,
        case["age"],
        case["sex"],
        list(case["conditions"]),
        list(case["flags"]),
        list(case["contraindications"]),
        list(case["overrides"]),
        case["region"],
        None if z is None else int(round(z * 100)),
        case["qst_category"],
        None if history is None else history["sessions"],
        None if history is None else history["last_response"],
        last_dose,
    )


def fields(rtype, values):
    """The fields tuple of a record, picked by name from a dict (a producer's result, such as
    core.ppt.Trial.result() or core.dosage.recommend(), with any extra keys): the names of
    FIELDS[rtype] are the producers' names. Raises RecordError naming a missing field."""
    names = FIELDS[rtype]
    out = []
    for name in names:
        if name not in values:
            raise RecordError("%s: %s missing" % (TYPE_NAMES[rtype], name))
        out.append(values[name])
    return tuple(out)


def check_code(code):
    """A pseudonymous patient code, or RecordError: the one rule, shared with core.protocol."""
    return _code(code)

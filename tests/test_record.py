"""Binary records (core.record): byte-identical on both runtimes, and corrupt ones rejected."""

import binascii
import json
import random
import struct

import pytest
from casegen import random_case

from core import case, dosage, ppt, record, vocab
from simulator import CASES_DIR
from simulator.runtime import RUNTIMES, run_harness

WALL_S = 1_790_000_000
# Round trips of every vector at once, not a memory test (bench/ reports the module heap).
HEAP = "256K"
MAX_U32 = 0xFFFFFFFF

END_STOP = vocab.END_NAMES.index("stop")
TRIAL = ("infraspinatus", "L", 2, "stop", 0b10100101, 3125, 3300, 498, 6240)
SITE = ("infraspinatus", "R", "local", 3, 2, 1, None, 3050, 87, None, 163, "high")
EVENT = (record.EV_TIME_SET, 0, 0, WALL_S)
CURVE = (12, 0, 100, [0, 50, 101, 65535])
RESPONSE = ("flare", 40)
SESSION = (
    "P-0042",
    52,
    "F",
    ["fibromyalgia", "chronic_fatigue"],
    ["high_stress", "chronic"],
    ["pregnancy_first_trimester"],
    ["pregnancy_first_trimester"],
    "shoulder",
    -160,
    None,
    4,
    "tolerated",
    [1, 6, 0, 1],
)


def _plain(value):
    # as the vectors travel to the harness: JSON (tuples become lists)
    return json.loads(json.dumps(value))


def recommendation_of(raw_case, config=None):
    return _plain(record.fields(record.TYPE_RECOMMENDATION,
                                dosage.recommend(case.parse_case(raw_case), config)))  # fmt: skip


# A caution case with an adjunct: five reasons (the four dimensions and e-stim)
RECOMMENDATION = tuple(
    recommendation_of(
        {
            "age": 30,
            "region": "lower_limb",
            "recent_exercise": True,
            "contraindications": ["bleeding_disorder"],
            "override": ["bleeding_disorder"],
        }
    )  # fmt: skip
)
RECOMMENDATION_ESTIM = tuple(
    recommendation_of({"age": 30, "region": "lower_limb", "recent_exercise": True})
)
DOSE = (17, 0.16, 5, "superficial", "basic", ["e-stim"])


def vector(rtype, fields, seq=1, boot=3, uptime_ms=12_345, wall_s=None):
    return {
        "type": rtype,
        "seq": seq,
        "boot": boot,
        "uptime_ms": uptime_ms,
        "wall_s": wall_s,
        "fields": _plain(list(fields)),
    }


def case_vectors():
    """Sessions and recommendations from the bundled visits and from random cases."""
    cases = []
    for path in sorted(CASES_DIR.glob("*.json")):
        cases.extend(v["case"] for v in json.loads(path.read_text())["visits"])
    rng = random.Random(4)
    cases += [random_case(rng) for _ in range(40)]
    out = []
    for number, raw in enumerate(cases):
        parsed = case.parse_case(raw)
        code = "P-%04d" % number
        out.append(vector(record.TYPE_SESSION, record.session_fields(code, parsed), number + 1))
        fields = record.fields(record.TYPE_RECOMMENDATION, dosage.recommend(parsed))
        out.append(vector(record.TYPE_RECOMMENDATION, _plain(fields), number + 1, wall_s=WALL_S))
    return out


def all_vectors():
    vectors = []
    for wall in (None, WALL_S):
        vectors += [
            vector(record.TYPE_TRIAL, TRIAL, wall_s=wall),
            vector(record.TYPE_SITE, SITE, wall_s=wall),
            vector(record.TYPE_EVENT, EVENT, wall_s=wall),
            vector(record.TYPE_CURVE, CURVE, wall_s=wall),
            vector(record.TYPE_RESPONSE, RESPONSE, wall_s=wall),
            vector(record.TYPE_SESSION, SESSION, wall_s=wall),
            vector(record.TYPE_RECOMMENDATION, RECOMMENDATION, wall_s=wall),
            vector(record.TYPE_RECOMMENDATION, RECOMMENDATION_ESTIM, wall_s=wall),
            vector(record.TYPE_DOSE, DOSE, wall_s=wall),
        ]
    # Extremes of every header field and of the trial's fields.
    vectors += [
        vector(record.TYPE_TRIAL, (vocab.SITES[-1], "R", 7, vocab.END_NAMES[-1], 255, 65534,
                                   65534, 32767, 65534), MAX_U32, 0xFFFF, MAX_U32, MAX_U32),
        vector(record.TYPE_TRIAL, (None, None, 0, "none", 0, 0, 0, -32767, 0), 1, 0, 0, 0),
        vector(record.TYPE_TRIAL, ("thenar", "R", 1, "fault", 8, None, 150, None, None)),
        vector(record.TYPE_SITE, (None, None, None, 0, 0, 0, None, None, None, None, None,
                                  None)),
        vector(record.TYPE_SITE, ("thenar", "L", "remote", 3, 3, 0, 65534, None, 65534,
                                  -32767, None, "low")),
        vector(record.TYPE_SITE, ("masseter", "L", "local", 6, 0, 6, None, 10005, None, None,
                                  -141, "low")),
        vector(record.TYPE_DOSE, (0, None, None, None, None, [])),
        vector(record.TYPE_DOSE, (MAX_U32, 0.3, 10, "deep", "pistoning", list(vocab.ADJUNCTS))),
        vector(record.TYPE_CURVE, (MAX_U32, 255, 65535, list(range(0, 100 * 600, 600)))),
        vector(record.TYPE_EVENT, (255, 255, MAX_U32, MAX_U32)),
        vector(record.TYPE_RESPONSE, ("none", 0)),
        vector(record.TYPE_SESSION, ("0", 0, "U", [], [], [], [], None, None, None, None,
                                     None, None)),
        vector(record.TYPE_SESSION, ("AB-0123456789-CD", 120, "M", list(case.CONDITIONS),
                                     list(case.FLAGS), list(case.CONTRAINDICATIONS),
                                     list(case.CONTRAINDICATIONS), "thorax", 1000, "low", 0,
                                     "none", [0, 5, 2, 3])),
        vector(record.TYPE_CURVE, (7, 1, 10, [65535] * record.CURVE_MAX_SAMPLES),
               wall_s=WALL_S),
        vector(record.TYPE_RECOMMENDATION, ("contraindicated", None, None, None, None, [], None,
                                            [], [], [r[0] for r in dosage.RULES],
                                            dosage.RULESET)),
    ]  # fmt: skip
    return vectors + case_vectors()


def stdin_of(vectors):
    return "".join(json.dumps(v) + "\n" for v in vectors)


@pytest.fixture(scope="module")
def encoded():
    """Harness output for all_vectors() on both runtimes."""
    out = {}
    for runtime in RUNTIMES:
        code, text, err = run_harness(
            "records", stdin=stdin_of(all_vectors()), runtime=runtime, heapsize=HEAP
        )
        assert code == 0, err
        out[runtime] = text.splitlines()
    return out


def test_every_type_round_trips_byte_identical_on_both_runtimes(encoded):
    vectors = all_vectors()
    cpython, micropython = encoded["cpython"], encoded["micropython"]
    assert len(cpython) == len(micropython) == len(vectors)
    for i, (a, b) in enumerate(zip(cpython, micropython, strict=True)):
        assert a == b, "vector %d differs:\n%s\n%s" % (i, a, b)
    assert {v["type"] for v in vectors} == set(range(1, 9))
    for v, line in zip(vectors, cpython, strict=True):
        hexdata, text = line.split(" ", 1)
        decoded = json.loads(text)
        assert decoded["type"] == record.TYPE_NAMES[v["type"]]
        assert record.fields_of(decoded) == tuple(v["fields"]), line
        for key in ("seq", "boot", "uptime_ms", "wall_s"):
            assert decoded[key] == v[key]
        assert len(hexdata) // 2 == record.size(v["type"], v["wall_s"], tuple(v["fields"]))


def test_trial_record_is_at_most_32_bytes():
    assert record.size(record.TYPE_TRIAL, WALL_S, TRIAL) == 32
    assert record.size(record.TYPE_TRIAL, None, TRIAL) == 28


def test_trial_layout_is_the_documented_one():
    buf = bytearray(32)
    n = record.encode(buf, 0, record.TYPE_TRIAL, 0x01020304, 0x0506, 0x0708090A, WALL_S, TRIAL)
    assert n == 32
    head = struct.unpack_from("<BBBIHII", buf, 0)
    assert head == (record.TYPE_TRIAL, 0x81, 32, 0x01020304, 0x0506, 0x0708090A, WALL_S)
    site, packed, qc, ppt, peak, rate, ramp = struct.unpack_from("<BBBHHhH", buf, 17)
    assert site == 1 + vocab.SITES.index("infraspinatus")
    assert (qc, ppt, peak, rate, ramp) == (0b10100101, 3125, 3300, 498, 6240)
    assert packed == 1 + vocab.SIDES.index("L") | END_STOP << 2 | 2 << 5
    assert struct.unpack_from("<I", buf, 28)[0] == binascii.crc32(bytes(buf[:28]))


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_corrupt_records_are_rejected(runtime):
    vectors = all_vectors()[:40]
    code, out, err = run_harness(
        "records", stdin=stdin_of(vectors), args=["--corrupt"], runtime=runtime, heapsize=HEAP
    )
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == len(vectors)
    tried = 0
    for line in lines:
        assert line.startswith("corrupt "), line
        counts = dict(part.split("=") for part in line.split()[1:])
        assert counts["accepted"] == "0", line
        tried += int(counts["tried"])
    assert tried > 40 * 500


def encode(rtype, fields, wall_s=None, buf=None):
    buf = bytearray(record.MAX_BYTES) if buf is None else buf
    n = record.encode(buf, 0, rtype, 9, 1, 100, wall_s, tuple(fields))
    return bytes(buf[:n])


BAD = [
    (record.TYPE_TRIAL, ("big_toe",) + TRIAL[1:]),
    (record.TYPE_TRIAL, (7,) + TRIAL[1:]),  # a site is named, never a bare number
    (record.TYPE_TRIAL, TRIAL[:1] + ("X",) + TRIAL[2:]),
    (record.TYPE_TRIAL, TRIAL[:3] + ("stopped",) + TRIAL[4:]),
    (record.TYPE_TRIAL, TRIAL[:3] + (1,) + TRIAL[4:]),
    (record.TYPE_TRIAL, TRIAL[:4] + (256,) + TRIAL[5:]),
    (record.TYPE_TRIAL, TRIAL[:5] + (1.5,) + TRIAL[6:]),
    (record.TYPE_TRIAL, TRIAL[:5] + (True,) + TRIAL[6:]),
    (record.TYPE_TRIAL, TRIAL[:2] + (-1,) + TRIAL[3:]),
    (record.TYPE_TRIAL, TRIAL[:8]),
    (record.TYPE_SITE, SITE[:3] + (2, 3, 0) + SITE[6:]),  # more valid than trials
    (record.TYPE_SITE, SITE[:3] + (3, 2, 2) + SITE[6:]),  # valid + censored > trials
    (record.TYPE_SITE, SITE[:11] + ("sensitised",)),
    (record.TYPE_SITE, SITE[:2] + ("needled",) + SITE[3:]),
    (record.TYPE_DOSE, (1, 0.002) + DOSE[2:]),  # rounds to 0 mm x 100: not a gauge
    (record.TYPE_DOSE, (1, "0.16") + DOSE[2:]),
    (record.TYPE_DOSE, (1, 0.16, 5, "deeper", "basic", [])),
    (record.TYPE_DOSE, (-1,) + DOSE[1:]),
    (record.TYPE_SESSION, ("John Smith",) + SESSION[1:]),
    (record.TYPE_SESSION, ("JOHN",) + SESSION[1:]),
    (record.TYPE_SESSION, ("p-0042",) + SESSION[1:]),
    (record.TYPE_SESSION, ("P-00000000000000042",) + SESSION[1:]),
    (record.TYPE_SESSION, SESSION[:2] + ("X",) + SESSION[3:]),
    (record.TYPE_SESSION, SESSION[:3] + (["gout"],) + SESSION[4:]),
    (record.TYPE_SESSION, SESSION[:6] + (True,) + SESSION[7:]),
    (record.TYPE_SESSION, SESSION[:6] + (["needle_phobia"],) + SESSION[7:]),  # not present
    (record.TYPE_SESSION, SESSION[:6] + (["stress"],) + SESSION[7:]),
    (record.TYPE_SESSION, SESSION[:12] + ([1, 2, 3],)),
    (record.TYPE_RECOMMENDATION, ("fine",) + RECOMMENDATION[1:]),
    (record.TYPE_RECOMMENDATION, RECOMMENDATION[:9] + (["NO-SUCH-RULE"],) + RECOMMENDATION[10:]),
    (record.TYPE_RECOMMENDATION, RECOMMENDATION[:10] + ("1999.01-r0",)),
    (record.TYPE_RECOMMENDATION, RECOMMENDATION[:6] + ([2, 1],) + RECOMMENDATION[7:]),
    (record.TYPE_RECOMMENDATION, RECOMMENDATION[:7] + (["gout"],) + RECOMMENDATION[8:]),
    (
        record.TYPE_RECOMMENDATION,
        RECOMMENDATION[:8] + ([{"rule": "NO-SUCH"}],) + RECOMMENDATION[9:],
    ),  # fmt: skip
    (record.TYPE_CURVE, (1, 0, 100, [])),
    (record.TYPE_CURVE, (1, 0, 100, [0] * 101)),
    (record.TYPE_CURVE, (1, 0, 0, [1])),
    (record.TYPE_RESPONSE, ("great", 1)),
    (record.TYPE_EVENT, (0, 0, 0, 0)),
    (record.TYPE_EVENT, (1, 0, 1 << 32, 0)),
    (9, (1,)),
]


@pytest.mark.parametrize("rtype,fields", BAD)
def test_out_of_range_fields_raise_and_write_nothing(rtype, fields):
    buf = bytearray(b"\xa5" * 64)
    with pytest.raises(record.RecordError):
        record.encode(buf, 0, rtype, 9, 1, 100, None, tuple(fields))
    assert buf == bytearray(b"\xa5" * 64)


def test_bad_fields_give_the_same_error_on_both_runtimes():
    vectors = [vector(t, f) for t, f in BAD if t != 9]
    outs = []
    for runtime in RUNTIMES:
        code, out, err = run_harness(
            "records", stdin=stdin_of(vectors), runtime=runtime, heapsize=HEAP
        )
        assert code == 0, err
        outs.append(out.splitlines())
    assert outs[0] == outs[1]
    assert all(line.startswith("error ") for line in outs[0])


@pytest.mark.parametrize(
    "header",
    [
        dict(seq=0),
        dict(seq=1 << 32),
        dict(boot=0x10000),
        dict(uptime_ms=-1),
        dict(wall_s=1 << 32),
    ],
)
def test_header_fields_are_range_checked(header):
    args = dict(seq=1, boot=1, uptime_ms=1, wall_s=None)
    args.update(header)
    with pytest.raises(record.RecordError):
        record.encode(bytearray(64), 0, record.TYPE_TRIAL, fields=TRIAL, **args)


def test_no_room_in_the_buffer_is_an_error():
    with pytest.raises(record.RecordError):
        record.encode(bytearray(31), 0, record.TYPE_TRIAL, 1, 1, 1, WALL_S, TRIAL)
    with pytest.raises(record.RecordError):
        record.encode(bytearray(40), 10, record.TYPE_TRIAL, 1, 1, 1, WALL_S, TRIAL)


def test_counters_saturate_instead_of_losing_the_trial():
    data = encode(record.TYPE_TRIAL, ("thenar", "L", 40, "stop", 0, 10, 70000, -40000, 100_000))
    decoded = record.decode(data)
    assert decoded["trial"] == record.TRIAL_MAX
    assert decoded["ramp_ms"] == record.RAMP_MAX_MS
    assert decoded["peak_kpa_x10"] == 0xFFFE and decoded["rate_kpa_s_x10"] == -32767


def test_decode_at_an_offset_inside_a_larger_buffer():
    buf = bytearray(100)
    n = record.encode(buf, 37, record.TYPE_EVENT, 5, 1, 2, None, EVENT)
    assert record.decode(buf, 37, 37 + n)["a"] == 0
    assert record.check(buf, 37, 100) == n
    assert record.check(buf, 37, 37 + n - 1) == -1  # incomplete: the store reads on
    assert record.check(buf, 36, 100) == 0
    with pytest.raises(record.RecordError):
        record.decode(buf, 37)  # trailing bytes are not part of one record


def test_header_and_count_records_read_packed_records():
    buf = bytearray(100)
    n = record.encode(buf, 0, record.TYPE_EVENT, 5, 1, 2, None, EVENT)
    m = record.encode(buf, n, record.TYPE_TRIAL, 6, 0x0506, 0x0708090A, WALL_S, TRIAL)
    assert record.header(buf) == (record.TYPE_EVENT, 5, 1, 2, None)
    assert record.header(buf, n) == (record.TYPE_TRIAL, 6, 0x0506, 0x0708090A, WALL_S)
    assert [record.count_records(buf, used) for used in (0, n, n + m)] == [0, 1, 2]
    assert (record._SEQ_AT, record._BOOT_AT) == (struct.calcsize("<BBB"), struct.calcsize("<BBBI"))
    assert (record.seq_of(buf, n), record.boot_of(buf, n)) == (6, 0x0506)


def test_another_ruleset_decodes_to_rule_numbers():
    good = bytearray(encode(record.TYPE_RECOMMENDATION, RECOMMENDATION))
    at = bytes(good).find(dosage.RULESET.encode())
    other = b"9" * len(dosage.RULESET)
    good[at : at + len(other)] = other
    struct.pack_into("<I", good, len(good) - 4, binascii.crc32(bytes(good[:-4])))
    decoded = record.decode(bytes(good))
    assert decoded["rules"] is None and decoded["reasons"] is None
    ids = [rule[0] for rule in dosage.RULES]
    assert decoded["rule_bits"] == sorted(ids.index(r) for r in RECOMMENDATION[9])
    assert decoded["reason_rules"] == [ids.index(r["rule"]) for r in RECOMMENDATION[8]]
    assert decoded["ruleset"] == other.decode()


# Stored records hold indexes into these tuples: they may grow at the end, never change
# order. A failure here means old records would decode wrongly: bump the record version.
PINNED = {
    "SEXES": ("F", "M", "U"),
    "CONDITIONS": ("diabetes", "cancer", "crohns", "fibromyalgia", "chronic_fatigue"),
    "FLAGS": ("acute_injury", "recent_illness", "high_stress", "recent_exercise", "chronic"),
    "REGIONS": (
        "head_neck", "shoulder", "thorax", "upper_limb", "lumbar", "hip", "lower_limb",
        "upper_trapezius",
    ),
    "SITES": (
        "thenar", "masseter", "upper_trapezius", "infraspinatus", "middle_deltoid",
        "cervical_paraspinal", "lumbar_paraspinal", "gluteus_medius", "quadriceps",
        "tibialis_anterior", "gastrocnemius", "forearm_extensors",
    ),
    "SIDES": ("L", "R"),
    "ROLES": ("local", "remote"),
    "END_NAMES": ("none", "stop", "release", "ceiling", "saturated", "fault", "abort"),
    "FLAG_NAMES": ("rate", "short", "saturated", "fault", "censored", "aborted"),
    "CONTRAINDICATIONS": (
        "needle_phobia", "injection_reaction", "lymphedema", "bleeding_disorder",
        "immunodeficiency", "pregnancy_first_trimester",
    ),
    "QST_CATEGORIES": ("high", "normal", "low"),
    "RESPONSES": ("none", "tolerated", "flare"),
    "STATUSES": ("ok", "caution", "contraindicated"),
    "DEPTHS": ("superficial", "intermediate", "deep"),
    "MANIPULATIONS": ("basic", "rotation", "tenting", "pistoning"),
    "ADJUNCTS": ("microneedling", "e-stim"),
    "GAUGES_MM_X100": (16, 18, 20, 25, 30),  # a session's last dose stores gauge rungs
}  # fmt: skip


_INDEXED = ("SITES", "REGIONS", "END_NAMES")  # stored as an index, not a bitmask


def test_vocabularies_only_grow_at_the_end():
    for name, old in PINNED.items():
        now = getattr(vocab, name)
        assert tuple(now[: len(old)]) == old, name
        if name not in _INDEXED:
            assert len(now) <= 8, name + ": one byte of bitmask"
    assert len(vocab.SITES) == len(vocab.SITE_REGIONS) < 255
    assert all(region in vocab.REGIONS for region in vocab.SITE_REGIONS)
    assert len(vocab.END_NAMES) <= record.END_MAX + 1 and len(vocab.SIDES) <= 3


def test_rule_mask_fits_and_the_table_order_matches_the_ruleset():
    # The rule bitmask follows RULES order for the ruleset named in the record. Changing
    # the table without a new RULESET string would make old records name the wrong rules.
    pinned = {
        "2026.11-r1": [
            "CI-NEEDLE-PHOBIA", "CI-INJECTION", "CI-LYMPHEDEMA", "CI-BLEEDING", "CI-IMMUNODEF",
            "CI-GATE", "CI-OVERRIDE", "CA-CHILD", "CA-PREGNANCY-T1", "F-OLDER",
            "F-SLOW-HEALING", "F-INFLAMMATION", "F-SENSITIVE", "F-ACUTE", "F-ILLNESS",
            "F-STRESS", "F-EXERCISE", "Q-HIGH", "Q-HIGH-START", "Q-LOW", "F-CHRONIC-START",
            "S-THORAX", "P-RESPONSE-NONE", "P-TOLERATED", "P-FLARE", "P-HOLD",
            "P-NO-LAST-DOSE",
        ],
    }  # fmt: skip
    ids = [rule[0] for rule in dosage.RULES]
    if dosage.RULESET in pinned:
        assert ids == pinned[dosage.RULESET]
    assert len(ids) == len(set(ids))
    assert len(ids) <= 8 * 31


def test_the_trial_codes_of_the_trial_engine_fit_their_bits():
    # record stores ppt's end and QC flags: they must keep fitting.
    assert ppt.END_NAMES is vocab.END_NAMES and ppt.FLAG_NAMES is vocab.FLAG_NAMES
    assert len(vocab.FLAG_NAMES) <= 8
    for end in vocab.END_NAMES:
        fields = ("thenar", "R", 3, end, (1 << len(vocab.FLAG_NAMES)) - 1, 1, 2, 3, 4)
        decoded = record.decode(encode(record.TYPE_TRIAL, fields))
        assert (decoded["end"], decoded["flags"]) == (end, fields[4])


def encoded_into(fill, v):
    buf = bytearray([fill]) * (record.MAX_BYTES + 8)
    fields = tuple(v["fields"])
    n = record.encode(buf, 0, v["type"], v["seq"], v["boot"], v["uptime_ms"], v["wall_s"], fields)
    assert buf[n:] == bytearray([fill]) * (len(buf) - n), "encode wrote past its record"
    return bytes(buf[:n])


def test_encode_writes_every_byte_of_its_record():
    # A byte encode() skips would carry whatever the reused batch buffer held (a character
    # of the previous patient's code, measured), covered by the CRC and ignored by decode.
    types = set()
    for v in all_vectors():
        over_aa = encoded_into(0xAA, v)
        assert over_aa == encoded_into(0x55, v) == encoded_into(0x00, v), v
        round_trip = dict(v, fields=list(record.fields_of(record.decode(over_aa))))
        assert encoded_into(0xAA, round_trip) == over_aa
        types.add(v["type"])
    assert types == set(range(1, 9))


def with_good_crc(data):
    data = bytearray(data)
    struct.pack_into("<I", data, len(data) - 4, binascii.crc32(bytes(data[:-4])))
    return bytes(data)


@pytest.mark.parametrize("bit", [4, 5, 6])
def test_a_reserved_header_bit_is_rejected_even_with_a_good_crc(bit):
    data = bytearray(encode(record.TYPE_TRIAL, TRIAL))
    data[1] |= 1 << bit
    bad = with_good_crc(data)
    assert record.check(bad, 0, len(bad)) == 0
    with pytest.raises(record.RecordError):
        record.decode(bad)


def test_a_site_with_more_valid_trials_than_trials_is_rejected_even_with_a_good_crc():
    good = encode(record.TYPE_SITE, SITE[:3] + (3, 3, 0) + SITE[6:])
    offset = record.HEADER_BYTES + 3  # site, side | role, trials, then valid
    assert good[offset] == 3
    assert record.decode(good)["n_valid"] == 3  # valid == trials is fine
    data = bytearray(good)
    data[offset] = 4
    with pytest.raises(record.RecordError):
        record.decode(with_good_crc(data))
    data = bytearray(good)
    data[offset + 1] = 1  # 3 valid + 1 censored of 3
    with pytest.raises(record.RecordError):
        record.decode(with_good_crc(data))


@pytest.mark.parametrize("bit", [4, 5, 6, 7])
def test_a_site_with_a_reserved_bit_set_is_rejected_even_with_a_good_crc(bit):
    data = bytearray(encode(record.TYPE_SITE, SITE))
    data[record.HEADER_BYTES + 1] |= 1 << bit
    with pytest.raises(record.RecordError):
        record.decode(with_good_crc(data))


def test_a_dose_half_given_is_rejected_even_with_a_good_crc():
    good = encode(record.TYPE_DOSE, DOSE)
    data = bytearray(good)
    data[record.HEADER_BYTES + 5] = 0  # needles 0 (none) with a gauge and a depth
    with pytest.raises(record.RecordError):
        record.decode(with_good_crc(data))


def test_the_reasons_come_back_in_words():
    decoded = record.decode(encode(record.TYPE_RECOMMENDATION, RECOMMENDATION_ESTIM,
                                   buf=bytearray(record.MAX_BYTES)))  # fmt: skip
    assert [r["dimension"] for r in decoded["reasons"]] == [
        "gauge_mm", "needles", "depth", "manipulation", "e-stim",
    ]  # fmt: skip
    assert decoded["reasons"] == RECOMMENDATION_ESTIM[8]
    assert decoded["reasons"][1]["text"] == "5 needles: light, after hard exercise"


def test_an_override_of_an_absent_contraindication_is_rejected_even_with_a_good_crc():
    fields = SESSION[:5] + (["needle_phobia", "lymphedema"], ["lymphedema"]) + SESSION[7:]
    good = encode(record.TYPE_SESSION, fields)
    assert record.decode(good)["overrides"] == ["lymphedema"]
    contra_at = record.HEADER_BYTES + 1 + len(SESSION[0]) + 4  # code, age, sex, masks
    data = bytearray(good)
    assert data[contra_at] == 0b101 and data[contra_at + 1] == 0b100
    data[contra_at] = 0b001  # lymphedema no longer present, its override still set
    with pytest.raises(record.RecordError):
        record.decode(with_good_crc(data))


def test_sizes_follow_the_struct_formats():
    # The longest record is a full curve with a valid clock; a BLE notification at MTU 247
    # (244 bytes of payload) holds any record.
    full_curve = (1, 0, 10, [0] * record.CURVE_MAX_SAMPLES)
    assert record.size(record.TYPE_CURVE, WALL_S, full_curve) == record.MAX_BYTES == 229
    assert record.MAX_BYTES <= 244
    assert record.size(record.TYPE_EVENT, WALL_S, EVENT) == record.EVENT_MAX_BYTES == 31
    assert record.size(record.TYPE_SITE, None, SITE) == 13 + 16 + 4
    assert record.size(record.TYPE_DOSE, None, DOSE) == 13 + 9 + 4
    assert record.size(record.TYPE_SESSION, None, SESSION) == 13 + 1 + len(SESSION[0]) + 17 + 4
    for v in all_vectors():
        n = record.size(v["type"], v["wall_s"], tuple(v["fields"]))
        assert n <= record.MAX_BYTES


def test_a_length_beyond_the_types_largest_is_rejected():
    data = bytearray(encode(record.TYPE_CURVE, (1, 0, 10, [5] * 100), WALL_S,
                            bytearray(record.MAX_BYTES)))  # fmt: skip
    assert len(data) == record.MAX_BYTES
    data[record.HEADER_BYTES + 4 + 7] = 101  # one more sample than a curve may hold
    data += b"\0\0"
    data[2] = len(data)
    bad = with_good_crc(data)
    assert record.check(bad, 0, len(bad)) == 0


def test_session_fields_name_each_overridden_contraindication():
    raw = {"age": 40, "sex": "F", "contraindications": ["needle_phobia", "lymphedema"]}
    fields = record.session_fields("P-1", case.parse_case(dict(raw, override=["lymphedema"])))
    assert fields[FIELD_OVERRIDES] == ["lymphedema"]
    assert record.session_fields("P-1", case.parse_case(raw))[FIELD_OVERRIDES] == []


FIELD_OVERRIDES = record.FIELDS[record.TYPE_SESSION].index("overrides")

"""The sync wire format (core.protocol): RACP requests and answers, the record stream framing,
the status value, Current Time and the patient list, with expected bytes written out."""

import struct

import pytest

from core import protocol, record
from core.protocol import ProtocolError


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("report", "all"), "0101"),
        (("count", "all"), "0401"),
        (("abort",), "0300"),
        (("report", ">=", 100), "01030164000000"),
        (("delete", "<=", 0x01020304), "02020104030201"),
        (("report", "range", 5, 9), "0104010500000009000000"),
    ],
)
def test_request_bytes(args, expected):
    assert protocol.request(*args).hex() == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("0101", (1, 1, 0xFFFFFFFF)),
        ("0401", (4, 1, 0xFFFFFFFF)),
        ("0300", (3, 0, 0)),
        ("01030164000000", (1, 100, 0xFFFFFFFF)),
        ("02020104030201", (2, 1, 0x01020304)),
        ("0104010500000009000000", (1, 5, 9)),
        ("0104010500000005000000", (1, 5, 5)),  # a range of one is a range
    ],
)
def test_parse_request(data, expected):
    assert protocol.parse_request(bytes.fromhex(data)) == expected


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("", protocol.RSP_INVALID_OPERATOR),
        ("01", protocol.RSP_INVALID_OPERATOR),
        ("0701", protocol.RSP_OP_NOT_SUPPORTED),
        ("0501", protocol.RSP_OP_NOT_SUPPORTED),  # a response opcode is not a request
        ("0100", protocol.RSP_INVALID_OPERATOR),
        ("0107", protocol.RSP_INVALID_OPERATOR),
        ("0105", protocol.RSP_OPERATOR_NOT_SUPPORTED),  # first record: SIG, not here
        ("0106", protocol.RSP_OPERATOR_NOT_SUPPORTED),
        ("010101", protocol.RSP_INVALID_OPERAND),  # 'all' with an operand
        ("010302", protocol.RSP_INVALID_OPERAND),
        ("01030264000000", protocol.RSP_INVALID_OPERAND),  # filter 0x02 (time) unsupported
        ("010301640000", protocol.RSP_INVALID_OPERAND),  # short operand
        ("0104010900000005000000", protocol.RSP_INVALID_OPERAND),  # low above high
        ("0301", protocol.RSP_INVALID_OPERATOR),  # abort with an operator
        ("030000", protocol.RSP_INVALID_OPERATOR),
    ],
)
def test_bad_requests_name_their_response_code(data, code):
    with pytest.raises(ProtocolError) as err:
        protocol.parse_request(bytes.fromhex(data))
    assert err.value.code == code


def test_request_refuses_bad_names_and_operands():
    with pytest.raises(ValueError):
        protocol.request("erase", "all")
    with pytest.raises(ValueError):
        protocol.request("report", "<")
    with pytest.raises(ValueError):
        protocol.request("report", ">=", -1)
    with pytest.raises(ValueError):
        protocol.request("report", ">=", 1 << 32)


def test_responses_round_trip():
    assert bytes(protocol.response(protocol.OP_REPORT, protocol.RSP_SUCCESS)).hex() == "06000101"
    assert protocol.parse_response(bytes.fromhex("06000106")) == ("response", 1, 6)
    assert bytes(protocol.number_response(70000)).hex() == "050070110100"
    assert protocol.parse_response(protocol.number_response(70000)) == ("number", 70000)
    buf = bytearray(4)
    assert protocol.response(2, 5, buf) is buf
    with pytest.raises(ProtocolError):
        protocol.parse_response(b"\x06\x00\x01")
    assert protocol.response_text(protocol.RSP_NO_RECORDS) == "no records found"


# --- the record stream ----------------------------------------------------------------


def _records(n, start_seq=1):
    buf = bytearray(record.MAX_BYTES)
    out = []
    for i in range(n):
        seq = start_seq + i
        fields = ("upper_trapezius", "L", i % 3 + 1, "stop", 0, 2000 + i, 2100 + i, 500, 4000)
        k = record.encode(buf, 0, record.TYPE_TRIAL, seq, 1, 1000 * seq, None, fields)
        out.append(bytes(buf[:k]))
    return out


class _FakeStore:
    """read_into over a list of raw records (the store's contract: whole records only, and
    next seq 0 when no record in the range is left, as core.store.Store.read_into)."""

    def __init__(self, raws):
        self.raws = raws
        self.calls = 0

    def read_into(self, buf, from_seq, to_seq):
        self.calls += 1
        used = 0
        for raw in self.raws:
            seq = record.seq_of(raw, 0)
            if seq < max(from_seq, 1) or seq > to_seq:
                continue
            if used + len(raw) > len(buf):
                return used, seq  # the next call starts at the record that did not fit
            buf[used : used + len(raw)] = raw
            used += len(raw)
        return used, 0


def _stream(raws, low=1, high=protocol.SEQ_MAX, payload_max=244):
    framer = protocol.Framer(_FakeStore(raws).read_into, payload_max=payload_max)
    framer.start(low, high)
    frames = []
    while True:
        frame = framer.frame()
        if frame is None:
            break
        frames.append(bytes(frame))
        framer.sent(len(frame))
    assert framer.done()
    return frames


def test_frames_are_full_and_counted():
    raws = _records(40)  # 28-byte trials without a clock
    frames = _stream(raws)
    total = sum(len(r) for r in raws)
    assert [f[0] for f in frames] == list(range(len(frames)))
    assert all(len(f) == 244 for f in frames[:-1])
    assert sum(len(f) - 1 for f in frames) == total
    assert len(frames) == -(-total // 243)  # ceil: every byte but the counter is payload


def test_reassembler_returns_exactly_the_records():
    raws = _records(100)
    rx = protocol.Reassembler(record.check)
    got = []
    for frame in _stream(raws):
        got.extend(rx.feed(frame))
    rx.finish()
    assert got == raws


def test_reassembler_on_a_small_mtu_and_a_filtered_range():
    raws = _records(30)
    rx = protocol.Reassembler(record.check)
    got = []
    for frame in _stream(raws, low=7, high=12, payload_max=20):
        assert len(frame) <= 20
        got.extend(rx.feed(frame))
    rx.finish()
    assert [record.seq_of(r, 0) for r in got] == [7, 8, 9, 10, 11, 12]


def test_a_missing_notification_is_a_gap():
    frames = _stream(_records(20))
    rx = protocol.Reassembler(record.check)
    rx.feed(frames[0])
    with pytest.raises(ProtocolError, match="notification 1 missing"):
        rx.feed(frames[2])


def test_a_stream_cut_inside_a_record_is_reported():
    frames = _stream(_records(20))
    rx = protocol.Reassembler(record.check)
    rx.feed(frames[0])
    with pytest.raises(ProtocolError, match="inside a record"):
        rx.finish()


def test_bytes_that_are_not_a_record_are_refused():
    rx = protocol.Reassembler(record.check)
    with pytest.raises(ProtocolError, match="not a record"):
        rx.feed(b"\x00" + b"\x09" * 40)


def test_counter_wraps_after_255():
    raws = _records(3000)
    rx = protocol.Reassembler(record.check)
    got = []
    frames = _stream(raws)
    assert len(frames) > 256
    for frame in frames:
        got.extend(rx.feed(frame))
    assert len(got) == 3000


def test_the_stream_ends_when_the_store_says_none_is_left():
    # The real store answers next seq 0 at the end; reading on from 0 would start over at
    # the oldest record and stream for ever.
    fake = _FakeStore(_records(3))
    frames = _stream(fake.raws)
    assert len(frames) == 1 and len(frames[0]) == 1 + 3 * 28
    framer = protocol.Framer(fake.read_into)
    framer.start(1, protocol.SEQ_MAX)
    framer.sent(len(framer.frame()))
    assert framer.frame() is None and framer.done()


def test_empty_range_sends_nothing():
    assert _stream(_records(5), low=10, high=20) == []
    assert _stream(_records(5), low=4, high=3) == []


# --- status, time ---------------------------------------------------------------------


def test_status_round_trip_and_bytes():
    value = protocol.status(
        records=12,
        unacked=3,
        stored_seq=40,
        acked_seq=37,
        free_kb=None,
        battery_pct=81,
        ruleset="2026.12-r2",
        clock_valid=True,
        visit_open=True,
    )
    assert value[:2].hex() == "0109"  # version 1, clock valid | visit open
    assert struct.unpack_from("<H", value, 18)[0] == 0xFFFF
    parsed = protocol.parse_status(value)
    assert parsed == {
        "records": 12,
        "unacked": 3,
        "stored_seq": 40,
        "acked_seq": 37,
        "free_kb": None,
        "battery_pct": 81,
        "ruleset": "2026.12-r2",
        "clock_valid": True,
        "pairing_open": False,
        "storage_full": False,
        "visit_open": True,
    }
    with pytest.raises(ProtocolError):
        protocol.parse_status(value[:-1])


@pytest.mark.parametrize(
    ("wall_s", "expected"),
    [
        (1796083200, (2026, 12, 1, 0, 0, 0, 2)),  # a Tuesday
        (1582934400, (2020, 2, 29, 0, 0, 0, 6)),  # leap day, a Saturday
        (1796129999, (2026, 12, 1, 12, 59, 59, 2)),
    ],
)
def test_current_time(wall_s, expected):
    value = protocol.current_time(wall_s)
    assert struct.unpack("<HBBBBBBBB", value)[:7] == expected
    assert protocol.parse_current_time(value) == wall_s


def test_current_time_refuses_impossible_dates():
    good = bytearray(protocol.current_time(1796083200))
    for offset, value in ((2, 13), (3, 32), (4, 24), (5, 60), (6, 60)):
        bad = bytearray(good)
        bad[offset] = value
        with pytest.raises(ProtocolError):
            protocol.parse_current_time(bytes(bad))
    feb30 = struct.pack("<HBBBBBBBB", 2026, 2, 30, 0, 0, 0, 1, 0, 1)
    with pytest.raises(ProtocolError, match="no such day"):
        protocol.parse_current_time(feb30)
    with pytest.raises(ProtocolError):
        protocol.parse_current_time(good[:9])


# --- the patient list -----------------------------------------------------------------

PATIENTS = [
    {
        "code": "P-0001",
        "age": 42,
        "sex": "F",
        "conditions": ("fibromyalgia",),
        "flags": ("chronic",),
        "contraindications": (),
        "sessions": 3,
        "last_dose": (0, 6, 0, 1),
        "last_adjuncts": (),
    },
    {
        "code": "K7",
        "age": 70,
        "sex": "M",
        "conditions": ("diabetes", "cancer"),
        "flags": (),
        "contraindications": ("bleeding_disorder",),
        "sessions": 0,
        "last_dose": None,
        "last_adjuncts": ("e-stim",),
    },
]


def test_patient_list_round_trip_through_chunks():
    msg = protocol.patient_list(PATIENTS, list_time_s=1796083200)
    rx = protocol.PatientListReceiver()
    result = None
    chunks = protocol.patient_chunks(msg, chunk_max=16)
    for chunk in chunks[:-1]:
        assert rx.write(chunk) is None
    result = rx.write(chunks[-1])
    assert result == (1796083200, PATIENTS)


def test_patient_list_header_bytes():
    msg = protocol.patient_list(PATIENTS[:1])
    assert msg[:3] == b"AP\x01"
    assert struct.unpack_from("<HH", msg, 3) == (len(msg), 1)
    entry = msg[11:-4]
    assert entry[0] == 6 and entry[1:7] == b"P-0001"
    assert list(entry[7:]) == [42, 0, 1 << 3, 1 << 4, 0, 3, 0, 0, 6, 0, 1, 0]


def test_patient_list_refuses_names_and_bad_bytes():
    with pytest.raises(record.RecordError):
        protocol.patient_list([{"code": "SMITH", "age": 40}])
    msg = bytearray(protocol.patient_list(PATIENTS))
    msg[12] ^= 0x01
    with pytest.raises(ProtocolError, match="CRC"):
        protocol.parse_patient_list(bytes(msg))
    rx = protocol.PatientListReceiver()
    with pytest.raises(ProtocolError, match="expected 0"):
        rx.write(b"\x10\x00abc")
    with pytest.raises(ProtocolError):
        rx.write(b"\x00\x00XX\x01" + bytes(20))


def test_patient_list_refuses_an_entry_off_the_ladders():
    bad = dict(PATIENTS[0], last_dose=(0, 11, 0, 1))
    with pytest.raises(ValueError):
        protocol.patient_list([bad])


# --- the same bytes on both runtimes ------------------------------------------------------


def test_racp_on_both_runtimes(both_runtimes):
    out = both_runtimes("protocol_cases.racp")
    assert out["requests"] == [
        "0101",
        "0401",
        "0300",
        "01030164000000",
        "02020104030201",
        "0104010500000009000000",
    ]
    assert out["parsed"][:6] == [
        [1, 1, 0xFFFFFFFF],
        [4, 1, 0xFFFFFFFF],
        [3, 0, 0],
        [1, 100, 0xFFFFFFFF],
        [2, 1, 0x01020304],
        [1, 5, 9],
    ]
    assert out["parsed"][6:] == [
        protocol.RSP_OP_NOT_SUPPORTED,
        protocol.RSP_OPERATOR_NOT_SUPPORTED,
        protocol.RSP_INVALID_OPERAND,
    ]
    assert out["response"] == "06000106"
    assert out["number"] == "050070110100"


def test_stream_on_both_runtimes(both_runtimes):
    out = both_runtimes("protocol_cases.stream")
    assert out["same"] is True
    assert out["seqs"] == list(range(3, 51))
    assert all(n == 100 for n in out["frames"][:-1])
    assert sum(n - 1 for n in out["frames"]) == 48 * 28


def test_patient_list_on_both_runtimes(both_runtimes):
    out = both_runtimes("protocol_cases.patients")
    assert out["message"] == protocol.patient_list([{
        "code": "P-0001", "age": 42, "sex": "F", "conditions": ("fibromyalgia",),
        "flags": ("chronic",), "sessions": 3, "last_dose": (0, 6, 0, 1),
        "last_adjuncts": ("e-stim",),
    }], 1796083200).hex()  # fmt: skip
    assert out["time_s"] == 1796083200
    assert out["entry"]["last_dose"] == [0, 6, 0, 1]
    assert out["entry"]["last_adjuncts"] == ["e-stim"]


def test_status_and_time_on_both_runtimes(both_runtimes):
    out = both_runtimes("protocol_cases.status_and_time")
    assert out["status"].startswith("0101")
    assert out["parsed"]["free_kb"] == 900 and out["parsed"]["battery_pct"] is None
    assert out["time"] == "ea070c010c3b3b020001"
    assert out["wall_s"] == 1796129999

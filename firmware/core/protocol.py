# The sync wire format (docs/protocol.md), pure and shared by the device (ble.py) and the
# laptop (host_sync): the Record Access Control Point messages, the record stream packed into
# notifications, the patient list the laptop pushes, the status payload and the Current
# Time value. Keywords at the edge (request("report", ">=", 100)), bytes inside; nothing
# here touches a radio, a clock or the store.
#
# RACP is modelled on the Bluetooth SIG's (Glucose profile), with a u32 sequence filter:
#   request   [opcode, operator, (filter type 0x01, u32 operand(s))]
#   response  [0x06, 0x00, request opcode, response code]   (indicated)
#   number    [0x05, 0x00, u32 count]                         (indicated)
# Records stream as notifications of [u8 frame counter] + the next bytes of the records laid
# back to back (core.record, self-delimiting and CRC-checked): a record may cross a
# notification boundary, and a missing notification shows as a counter gap.
import binascii
import struct

from micropython import const

from core.vocab import (
    ADJUNCTS,
    CONDITIONS,
    CONTRAINDICATIONS,
    DEPTHS,
    FLAGS,
    GAUGES_MM_X100,
    MANIPULATIONS,
    NEEDLES_MAX,
    NEEDLES_MIN,
    SEXES,
)

OP_REPORT = const(0x01)  # report stored records
OP_DELETE = const(0x02)  # delete stored records: here "the host has durably stored them"
OP_ABORT = const(0x03)
OP_REPORT_NUMBER = const(0x04)
OP_NUMBER_RESPONSE = const(0x05)
OP_RESPONSE_CODE = const(0x06)

OPER_NULL = const(0x00)
OPER_ALL = const(0x01)
OPER_LE = const(0x02)
OPER_GE = const(0x03)
OPER_RANGE = const(0x04)
_OPER_LAST = const(0x06)  # 0x05 first record, 0x06 last record: defined by the SIG, unsupported

FILTER_SEQ = const(0x01)  # the filter: a u32 sequence number

RSP_SUCCESS = const(0x01)
RSP_OP_NOT_SUPPORTED = const(0x02)
RSP_INVALID_OPERATOR = const(0x03)
RSP_OPERATOR_NOT_SUPPORTED = const(0x04)
RSP_INVALID_OPERAND = const(0x05)
RSP_NO_RECORDS = const(0x06)
RSP_ABORT_UNSUCCESSFUL = const(0x07)
RSP_NOT_COMPLETED = const(0x08)
# Project additions, in the SIG's reserved range. The link is not encrypted with MITM
# (NimBLE cannot protect a CCCD, so the device itself refuses):
RSP_NOT_AUTHENTICATED = const(0x80)
# "Report >= N" where records >= N were deleted after a host acknowledged them (another
# laptop synced them): the store refuses to skip them silently (core.store.RecordsGone).
RSP_RECORDS_GONE = const(0x81)

OPS = {"report": OP_REPORT, "delete": OP_DELETE, "abort": OP_ABORT, "count": OP_REPORT_NUMBER}
OPERATORS = {"all": OPER_ALL, "<=": OPER_LE, ">=": OPER_GE, "range": OPER_RANGE}
RESPONSE_NAMES = {
    RSP_SUCCESS: "success",
    RSP_OP_NOT_SUPPORTED: "op code not supported",
    RSP_INVALID_OPERATOR: "invalid operator",
    RSP_OPERATOR_NOT_SUPPORTED: "operator not supported",
    RSP_INVALID_OPERAND: "invalid operand",
    RSP_NO_RECORDS: "no records found",
    RSP_ABORT_UNSUCCESSFUL: "abort unsuccessful",
    RSP_NOT_COMPLETED: "procedure not completed",
    RSP_NOT_AUTHENTICATED: "pair with a passkey first",
    RSP_RECORDS_GONE: "records acknowledged by another host were deleted",
}

# The GATT layout (docs/protocol.md). The AlgoDose records service and its characteristics
# have custom 128-bit UUIDs; the rest are the Bluetooth SIG's 16-bit ones.
SERVICE_UUID = "a190d05e-0001-4917-84fa-8891ce4d009e"
RECORDS_UUID = "a190d05e-0002-4917-84fa-8891ce4d009e"  # record data: notify
CONTROL_POINT_UUID = "a190d05e-0003-4917-84fa-8891ce4d009e"  # RACP: write + indicate
PATIENTS_UUID = "a190d05e-0004-4917-84fa-8891ce4d009e"  # patient list: write (+ read result)
STATUS_UUID = "a190d05e-0005-4917-84fa-8891ce4d009e"  # status: read
DEVICE_INFORMATION_UUID16 = const(0x180A)
MANUFACTURER_UUID16 = const(0x2A29)
MODEL_UUID16 = const(0x2A24)
SERIAL_UUID16 = const(0x2A25)  # the device id: the host keys records on (serial, seq)
FIRMWARE_UUID16 = const(0x2A26)
SOFTWARE_UUID16 = const(0x2A28)  # the dosage ruleset
CURRENT_TIME_SERVICE_UUID16 = const(0x1805)
CURRENT_TIME_UUID16 = const(0x2A2B)

SEQ_MAX = const(0xFFFFFFFF)
RESPONSE_BYTES = const(4)
NUMBER_RESPONSE_BYTES = const(6)
FRAME_HEADER_BYTES = const(1)


class ProtocolError(ValueError):
    """A message that is not valid. `code` is the RACP response code to answer with."""

    def __init__(self, message, code=RSP_INVALID_OPERAND):
        super().__init__(message)
        self.code = code


# --- RACP -------------------------------------------------------------------------------


def request(op, operator="all", seq=None, last=None):
    """A control point request by name: request("report", ">=", 100),
    request("count", "all"), request("delete", "<=", 512), request("report", "range", 5, 9),
    request("abort")."""
    if op not in OPS:
        raise ValueError("op: one of " + ", ".join(sorted(OPS)))
    if OPS[op] == OP_ABORT:
        return bytes((OP_ABORT, OPER_NULL))
    if operator not in OPERATORS:
        raise ValueError("operator: one of " + ", ".join(sorted(OPERATORS)))
    code = OPERATORS[operator]
    if code == OPER_ALL:
        return bytes((OPS[op], OPER_ALL))
    if code == OPER_RANGE:
        return struct.pack("<BBBII", OPS[op], code, FILTER_SEQ, _seq(seq), _seq(last))
    return struct.pack("<BBBI", OPS[op], code, FILTER_SEQ, _seq(seq))


def _seq(value):
    if type(value) is not int or not 0 <= value <= SEQ_MAX:
        raise ValueError("sequence number: a whole number from 0 to %d" % SEQ_MAX)
    return value


def parse_request(data):
    """(opcode, low, high) of a control point write; the operator is resolved into the
    inclusive sequence range. Raises ProtocolError carrying the RACP code to answer with
    (the caller answers (opcode, code) with response(): data[0] is the opcode it names)."""
    n = len(data)
    if n < 2:
        raise ProtocolError("RACP: too short", RSP_INVALID_OPERATOR)
    op = data[0]
    operator = data[1]
    if op == OP_ABORT:
        if operator != OPER_NULL or n != 2:
            raise ProtocolError("RACP abort: operator must be null", RSP_INVALID_OPERATOR)
        return op, 0, 0
    if op != OP_REPORT and op != OP_DELETE and op != OP_REPORT_NUMBER:
        raise ProtocolError("RACP: op code 0x%02x not supported" % op, RSP_OP_NOT_SUPPORTED)
    if operator == OPER_ALL:
        if n != 2:
            raise ProtocolError("RACP: 'all' takes no operand")
        return op, 1, SEQ_MAX
    if operator == OPER_NULL or operator > _OPER_LAST:
        raise ProtocolError("RACP: invalid operator", RSP_INVALID_OPERATOR)
    if operator > OPER_RANGE:
        raise ProtocolError("RACP: operator not supported", RSP_OPERATOR_NOT_SUPPORTED)
    want = 11 if operator == OPER_RANGE else 7
    if n != want or data[2] != FILTER_SEQ:
        raise ProtocolError("RACP: the operand is a filter 0x01 and u32 sequence number(s)")
    first = struct.unpack_from("<I", data, 3)[0]
    if operator == OPER_LE:
        return op, 1, first
    if operator == OPER_GE:
        return op, first, SEQ_MAX
    last = struct.unpack_from("<I", data, 7)[0]
    if first > last:
        raise ProtocolError("RACP: range low above high")
    return op, first, last


def response(request_op, code, buf=None):
    """The response code message; into buf (its first 4 bytes) when given, else new bytes."""
    if buf is None:
        buf = bytearray(RESPONSE_BYTES)
    buf[0] = OP_RESPONSE_CODE
    buf[1] = OPER_NULL
    buf[2] = request_op & 0xFF
    buf[3] = code
    return buf


def number_response(count, buf=None):
    if buf is None:
        buf = bytearray(NUMBER_RESPONSE_BYTES)
    struct.pack_into("<BBI", buf, 0, OP_NUMBER_RESPONSE, OPER_NULL, count)
    return buf


def parse_response(data):
    """A control point indication, for the host: ("number", count) or
    ("response", request opcode, code). Raises ProtocolError for anything else."""
    if len(data) == 6 and data[0] == OP_NUMBER_RESPONSE and data[1] == OPER_NULL:
        return ("number", struct.unpack_from("<I", data, 2)[0])
    if len(data) == 4 and data[0] == OP_RESPONSE_CODE and data[1] == OPER_NULL:
        return ("response", data[2], data[3])
    raise ProtocolError("RACP indication not understood: " + bytes(data).hex())


def response_text(code):
    return RESPONSE_NAMES.get(code, "response code 0x%02x" % code)


# --- the record stream -----------------------------------------------------------------


class Framer:
    """Device side: packs stored records into notification payloads of at most payload_max
    bytes (MTU - 3). The records come from read_into(buf, from_seq, to_seq) -> (nbytes,
    next_seq) (core.store.Store.read_into: next_seq 0 when none is left), which packs whole
    records; here they are laid
    back to back and cut at the payload size, so every notification but the last is full.
    One buffer, allocated once; frame() returns a view into it, valid until the next call."""

    def __init__(self, read_into, payload_max=244, record_max=255):
        self._read = read_into
        self._buf = bytearray(payload_max + record_max + 1)
        self._mv = memoryview(self._buf)
        self.payload_max = payload_max
        self.start(1, 0)

    def start(self, low, high):
        self.next_seq = low
        self.high = high
        self._fill = FRAME_HEADER_BYTES  # byte 0 is the frame counter
        self._counter = 0
        self._exhausted = low > high

    def set_payload_max(self, payload_max):
        # The negotiated MTU may arrive after the Framer was built: never beyond its buffer.
        self.payload_max = max(FRAME_HEADER_BYTES + 1, min(payload_max, len(self._buf) - 256))

    def done(self):
        return self._exhausted and self._fill == FRAME_HEADER_BYTES

    def frame(self):
        """The next notification payload (a memoryview), or None when the stream is over.
        Call again only after the previous one was sent: the bytes are then dropped."""
        mv = self._mv
        want = self.payload_max
        while not self._exhausted and self._fill < want:
            nbytes, nxt = self._read(mv[self._fill :], self.next_seq, self.high)
            self._fill += nbytes
            # The store says 0 when no record in the range is left (core.store.read_into):
            # reading on "from 0" would start again at the oldest record.
            if nbytes == 0 or nxt == 0:
                self._exhausted = True
            else:
                self.next_seq = nxt
        if self._fill == FRAME_HEADER_BYTES:
            return None
        n = min(self._fill, want)
        self._buf[0] = self._counter
        return mv[:n]

    def sent(self, n):
        """The frame of n bytes returned by frame() went out: drop it, keep the rest."""
        left = self._fill - n
        if left:
            self._mv[FRAME_HEADER_BYTES : FRAME_HEADER_BYTES + left] = self._mv[n : self._fill]
        self._fill = FRAME_HEADER_BYTES + left
        self._counter = (self._counter + 1) & 0xFF


class Reassembler:
    """Host side: notification payloads in, whole records out (raw bytes, checked with
    core.record.check). A counter gap or bytes that are not a record raise ProtocolError:
    the host then stops, keeps what it had, and asks again from its highest seq + 1."""

    def __init__(self, check):
        self._check = check  # core.record.check
        self._pending = bytearray()
        self._expect = 0

    def feed(self, payload):
        if len(payload) < FRAME_HEADER_BYTES:
            raise ProtocolError("record stream: an empty notification")
        if payload[0] != self._expect:
            raise ProtocolError(
                "record stream: notification %d missing (got %d)" % (self._expect, payload[0])
            )
        self._expect = (self._expect + 1) & 0xFF
        self._pending.extend(payload[FRAME_HEADER_BYTES:])
        out = []
        buf = self._pending
        off = 0
        while off < len(buf):
            n = self._check(buf, off, len(buf))
            if n < 0:
                break  # the rest arrives in the next notification
            if n == 0:
                raise ProtocolError("record stream: bytes that are not a record at %d" % off)
            out.append(bytes(buf[off : off + n]))
            off += n
        if off:
            self._pending = buf[off:]  # host side: allocation is fine here
        return out

    def finish(self):
        """At the end of the procedure: an unfinished record means the stream was cut."""
        if self._pending:
            raise ProtocolError(
                "record stream ended inside a record (%d bytes)" % len(self._pending)
            )


# --- status ---------------------------------------------------------------------------

STATUS_VERSION = const(1)
STATUS_CLOCK_VALID = const(0x01)
STATUS_PAIRING_OPEN = const(0x02)
STATUS_STORAGE_FULL = const(0x04)
STATUS_VISIT_OPEN = const(0x08)  # a visit is in progress: records are still being written
_STATUS = "<BBIIIIHB"
_STATUS_HEAD_BYTES = const(21)
_NONE16 = const(0xFFFF)
_NONE8 = const(0xFF)


def status(
    records,
    unacked,
    stored_seq,
    acked_seq,
    free_kb=None,
    battery_pct=None,
    ruleset="",
    clock_valid=False,
    pairing_open=False,
    storage_full=False,
    visit_open=False,
):
    """The status characteristic's value: store counts, free space (None: unknown), battery
    (None: unknown), the ruleset name and state flags."""
    flags = (
        (STATUS_CLOCK_VALID if clock_valid else 0)
        | (STATUS_PAIRING_OPEN if pairing_open else 0)
        | (STATUS_STORAGE_FULL if storage_full else 0)
        | (STATUS_VISIT_OPEN if visit_open else 0)
    )
    name = ruleset.encode()
    if len(name) > 32:
        raise ValueError("ruleset: at most 32 characters")
    head = struct.pack(
        _STATUS,
        STATUS_VERSION,
        flags,
        records,
        unacked,
        stored_seq,
        acked_seq,
        _NONE16 if free_kb is None else min(free_kb, _NONE16 - 1),
        _NONE8 if battery_pct is None else battery_pct,
    )
    return head + bytes((len(name),)) + name


def parse_status(data):
    if len(data) < _STATUS_HEAD_BYTES + 1 or data[0] != STATUS_VERSION:
        raise ProtocolError("status: not a version %d status value" % STATUS_VERSION)
    version, flags, records, unacked, stored, acked, free_kb, battery = struct.unpack_from(
        _STATUS, data, 0
    )
    n = data[_STATUS_HEAD_BYTES]
    if len(data) != _STATUS_HEAD_BYTES + 1 + n:
        raise ProtocolError("status: ruleset length does not match")
    return {
        "records": records,
        "unacked": unacked,
        "stored_seq": stored,
        "acked_seq": acked,
        "free_kb": None if free_kb == _NONE16 else free_kb,
        "battery_pct": None if battery == _NONE8 else battery,
        "ruleset": bytes(data[_STATUS_HEAD_BYTES + 1 :]).decode(),
        "clock_valid": bool(flags & STATUS_CLOCK_VALID),
        "pairing_open": bool(flags & STATUS_PAIRING_OPEN),
        "storage_full": bool(flags & STATUS_STORAGE_FULL),
        "visit_open": bool(flags & STATUS_VISIT_OPEN),
    }


# --- Current Time (Bluetooth SIG Current Time Service, characteristic 0x2A2B) -------------
# exact time 256: u16 year, u8 month, day, hours, minutes, seconds, day of week (1 = Monday),
# u8 fractions256, u8 adjust reason. UTC here: the device keeps Unix seconds.

CURRENT_TIME_BYTES = const(10)
_EPOCH_YEAR = const(1970)


def _days_from_civil(year, month, day):
    # Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm), integers.
    year -= 1 if month <= 2 else 0
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days):
    days += 719468
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (1 if month <= 2 else 0), month, day


def current_time(wall_s):
    """The 10-byte Current Time value of Unix seconds (UTC)."""
    days, secs = divmod(wall_s, 86400)
    year, month, day = _civil_from_days(days)
    weekday = (days + 3) % 7 + 1  # 1970-01-01 was a Thursday (4)
    return struct.pack(
        "<HBBBBBBBB", year, month, day, secs // 3600, secs // 60 % 60, secs % 60, weekday, 0, 1
    )


def parse_current_time(data):
    """Unix seconds (UTC) of a Current Time value; ProtocolError for a value no clock shows."""
    if len(data) != CURRENT_TIME_BYTES:
        raise ProtocolError("current time: %d bytes, need %d" % (len(data), CURRENT_TIME_BYTES))
    year, month, day, hours, minutes, seconds = struct.unpack_from("<HBBBBB", data, 0)
    if not (
        2020 <= year <= 2105
        and 1 <= month <= 12
        and 1 <= day <= 31
        and hours < 24
        and minutes < 60
        and seconds < 60
    ):
        raise ProtocolError("current time: not a valid date and time")
    days = _days_from_civil(year, month, day)
    if _civil_from_days(days) != (year, month, day):
        raise ProtocolError("current time: no such day")
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


# --- the patient list ------------------------------------------------------------------
# The laptop pushes the clinic's pseudonymous patients (codes, never names) with the dosage
# factors it knows and the history the dosage rules need. One message, binary, framed:
#   "AP" u8 version u16 total bytes u16 entries u32 list time (Unix s, 0 unknown)
#   entries: u8 code length, code, u8 age, u8 sex, u8 conditions mask, u8 flags mask,
#            u8 contraindications mask, u16 sessions so far, 4 x u8 last dose given (gauge,
#            needles, depth, manipulation rungs; 0xFF none), u8 last adjuncts mask
#   u32 CRC32 of everything before it
# sent as writes of [u16 offset] + bytes; the offset-0 write starts a new message.
# Masks are over the core.vocab tuples, like the session record's.

PATIENTS_VERSION = const(1)
_PATIENTS_HEAD = "<2sBHHI"
_PATIENTS_HEAD_BYTES = const(11)
_ENTRY_FIXED_BYTES = const(12)  # after the code
PATIENTS_MAX_BYTES = const(4096)
PATIENT_FIELDS = (
    "code",
    "age",
    "sex",
    "conditions",
    "flags",
    "contraindications",
    "sessions",
    "last_dose",
    "last_adjuncts",
)


def _mask(what, names, vocab):
    bits = 0
    for name in names:
        if name not in vocab:
            raise ValueError("%s: unknown %s" % (what, name))
        bits |= 1 << vocab.index(name)
    return bits


def _names(what, bits, vocab):
    if bits >> len(vocab):
        raise ProtocolError("patient list: unknown %s bits 0x%x" % (what, bits))
    return tuple([vocab[i] for i in range(len(vocab)) if bits >> i & 1])


_LADDER_TOPS = (len(GAUGES_MM_X100) - 1, NEEDLES_MAX, len(DEPTHS) - 1, len(MANIPULATIONS) - 1)
_LADDER_BOTTOMS = (0, NEEDLES_MIN, 0, 0)


def patient_list(patients, list_time_s=0):
    """The whole message for a list of patients, each a dict with PATIENT_FIELDS (missing:
    none/empty; last_dose a (gauge, needles, depth, manipulation) rung tuple or None).
    Codes are validated as the session record does (core.record): never a name."""
    from core.record import check_code  # the one rule for codes, shared with the record

    body = bytearray()
    for patient in patients:
        code = check_code(patient["code"])
        dose = patient.get("last_dose")
        if dose is None:
            dose = (_NONE8, _NONE8, _NONE8, _NONE8)
        elif len(dose) != 4 or not all(
            [_LADDER_BOTTOMS[i] <= dose[i] <= _LADDER_TOPS[i] for i in range(4)]
        ):
            raise ValueError("last_dose: four rungs on the dose ladders")
        body.append(len(code))
        body.extend(code.encode())
        body.extend(
            struct.pack(
                "<BBBBBHBBBBB",
                patient["age"],
                SEXES.index(patient.get("sex", "U")),
                _mask("conditions", patient.get("conditions", ()), CONDITIONS),
                _mask("flags", patient.get("flags", ()), FLAGS),
                _mask(
                    "contraindications", patient.get("contraindications", ()), CONTRAINDICATIONS
                ),
                patient.get("sessions", 0),
                dose[0],
                dose[1],
                dose[2],
                dose[3],
                _mask("last_adjuncts", patient.get("last_adjuncts", ()), ADJUNCTS),
            )
        )
    total = _PATIENTS_HEAD_BYTES + len(body) + 4
    if total > PATIENTS_MAX_BYTES:
        raise ValueError(
            "patient list: %d bytes, the device takes %d" % (total, PATIENTS_MAX_BYTES)
        )
    msg = bytearray(
        struct.pack(_PATIENTS_HEAD, b"AP", PATIENTS_VERSION, total, len(patients), list_time_s)
    )
    msg.extend(body)
    msg.extend(struct.pack("<I", binascii.crc32(msg)))
    return bytes(msg)


def patient_list_time(message):
    """The list time of a message (its header only: the device checks the rest)."""
    return struct.unpack_from(_PATIENTS_HEAD, message, 0)[4]


def patient_chunks(message, chunk_max=242):
    """The writes that carry a message: [u16 offset] + up to chunk_max bytes each."""
    out = []
    for off in range(0, len(message), chunk_max):
        out.append(struct.pack("<H", off) + message[off : off + chunk_max])
    return out


class PatientListReceiver:
    """Device side: collects the writes into one preallocated buffer; write() returns None
    while incomplete, then the parsed list. A bad write or message raises ProtocolError and
    the device keeps its old list.

    write() is put() then take(): the GATT server calls put() in its write IRQ (a copy into
    the preallocated buffer and a header check, nothing more) and take() in its task (the
    parse, which allocates the patient dicts), because the laptop may send the next chunk
    as soon as the write response went out, before the task has run."""

    def __init__(self, max_bytes=PATIENTS_MAX_BYTES):
        self._buf = bytearray(max_bytes)
        self._fill = 0
        self._total = 0
        self._complete = 0  # bytes of a whole message waiting for take()

    def write(self, data):
        if not self.put(data):
            return None
        return self.take()

    def put(self, data):
        """Copies one write [u16 offset] + bytes; True when the message is whole (take() it).
        Raises ProtocolError for a write out of order or a message that is not a list."""
        if len(data) < 3:
            raise ProtocolError("patient list: a write is [u16 offset] + bytes")
        off = data[0] | data[1] << 8
        self._complete = 0
        if off == 0:
            self._fill = 0
            self._total = 0
        if off != self._fill:
            self._fill = 0
            raise ProtocolError("patient list: write at %d, expected %d" % (off, self._fill))
        n = len(data) - 2
        if off + n > len(self._buf):
            self._fill = 0
            raise ProtocolError("patient list: over %d bytes" % len(self._buf))
        mv = memoryview(self._buf)
        mv[off : off + n] = memoryview(data)[2:]
        self._fill = off + n
        if self._fill >= _PATIENTS_HEAD_BYTES and not self._total:
            magic, version, total, _count, _time = struct.unpack_from(_PATIENTS_HEAD, self._buf, 0)
            if magic != b"AP" or version != PATIENTS_VERSION or total > len(self._buf):
                self._fill = 0
                raise ProtocolError("patient list: not a version %d list" % PATIENTS_VERSION)
            self._total = total
        if not self._total or self._fill < self._total:
            return False
        fill = self._fill
        self._fill = 0
        if fill != self._total:
            raise ProtocolError("patient list: %d bytes, header says %d" % (fill, self._total))
        self._complete = fill
        return True

    def take(self):
        """(list time s, [patient, ...]) of the whole message put() reported, once; None if
        there is none. Raises ProtocolError (CRC, entries) for a list to refuse."""
        n = self._complete
        if not n:
            return None
        self._complete = 0
        return parse_patient_list(memoryview(self._buf)[:n])


# What the patient list characteristic reads after a list arrived (the laptop's check that
# the device took it): 0xFFFF (never a write's offset), u8 result, u32 list time, u16
# patients. The value a read returns between a write and the device's answer is that write.
PATIENTS_NONE = const(0)
PATIENTS_ACCEPTED = const(1)
PATIENTS_REFUSED = const(2)
_PATIENTS_RESULT = "<HBIH"
PATIENTS_RESULT_BYTES = const(9)


def patients_result(result, list_time_s=0, count=0):
    return struct.pack(_PATIENTS_RESULT, 0xFFFF, result, list_time_s, count)


def parse_patients_result(data):
    """(result, list time s, count), or None when data is not a result (a write's echo)."""
    if len(data) != PATIENTS_RESULT_BYTES or data[0] != 0xFF or data[1] != 0xFF:
        return None
    _mark, result, list_time_s, count = struct.unpack_from(_PATIENTS_RESULT, data, 0)
    return result, list_time_s, count


def parse_patient_list(msg):
    """(list time s, [patient dict, ...]) of a whole message; ProtocolError if not valid."""
    from core.record import RecordError, check_code

    n = len(msg)
    if n < _PATIENTS_HEAD_BYTES + 4:
        raise ProtocolError("patient list: too short")
    magic, version, total, count, list_time = struct.unpack_from(_PATIENTS_HEAD, msg, 0)
    if magic != b"AP" or version != PATIENTS_VERSION or total != n:
        raise ProtocolError("patient list: not a version %d list" % PATIENTS_VERSION)
    if binascii.crc32(msg[: n - 4]) != struct.unpack_from("<I", msg, n - 4)[0]:
        raise ProtocolError("patient list: CRC does not match")
    patients = []
    p = _PATIENTS_HEAD_BYTES
    end = n - 4
    for _ in range(count):
        if p >= end:
            raise ProtocolError("patient list: fewer entries than its header says")
        k = msg[p]
        if p + 1 + k + _ENTRY_FIXED_BYTES > end:
            raise ProtocolError("patient list: an entry runs past the end")
        try:
            code = check_code(bytes(msg[p + 1 : p + 1 + k]).decode())
        except (RecordError, UnicodeError):
            raise ProtocolError("patient list: a code that is not a pseudonymous code") from None
        p += 1 + k
        age, sex, conditions, flags, contra, sessions, g, nd, d, m, adj = struct.unpack_from(
            "<BBBBBHBBBBB", msg, p
        )
        p += _ENTRY_FIXED_BYTES
        dose = (g, nd, d, m)
        if dose == (_NONE8, _NONE8, _NONE8, _NONE8):
            dose = None
        else:
            for i in range(4):
                if not _LADDER_BOTTOMS[i] <= dose[i] <= _LADDER_TOPS[i]:
                    raise ProtocolError("patient list: %s has a last dose off the ladders" % code)
        if age > 120 or sex >= len(SEXES) or sessions > 1000:
            raise ProtocolError("patient list: %s has an impossible age, sex or count" % code)
        patients.append(
            {
                "code": code,
                "age": age,
                "sex": SEXES[sex],
                "conditions": _names("conditions", conditions, CONDITIONS),
                "flags": _names("flags", flags, FLAGS),
                "contraindications": _names("contraindications", contra, CONTRAINDICATIONS),
                "sessions": sessions,
                "last_dose": dose,
                "last_adjuncts": _names("last_adjuncts", adj, ADJUNCTS),
            }
        )
    if p != end:
        raise ProtocolError("patient list: bytes after the last entry")
    return list_time, patients

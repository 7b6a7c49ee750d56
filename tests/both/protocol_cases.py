# core.protocol on both runtimes: the bytes each side builds and what each side parses.
from core import protocol, record


def racp():
    requests = [
        protocol.request("report", "all"),
        protocol.request("count", "all"),
        protocol.request("abort"),
        protocol.request("report", ">=", 100),
        protocol.request("delete", "<=", 0x01020304),
        protocol.request("report", "range", 5, 9),
    ]
    parsed = []
    for data in requests + [b"\x07\x01", b"\x01\x05", b"\x01\x04\x01\x09\0\0\0\x05\0\0\0"]:
        try:
            parsed.append(list(protocol.parse_request(data)))
        except protocol.ProtocolError as err:
            parsed.append(err.code)
    return {
        "requests": [bytes(r).hex() for r in requests],
        "parsed": parsed,
        "response": bytes(protocol.response(protocol.OP_REPORT, protocol.RSP_NO_RECORDS)).hex(),
        "number": bytes(protocol.number_response(70000)).hex(),
    }


def _trials(n):
    buf = bytearray(record.MAX_BYTES)
    out = []
    for i in range(n):
        fields = ("upper_trapezius", "L", i % 3 + 1, "stop", 0, 2000 + i, 2100 + i, 500, 4000)
        k = record.encode(buf, 0, record.TYPE_TRIAL, i + 1, 1, 1000 * (i + 1), None, fields)
        out.append(bytes(buf[:k]))
    return out


def stream():
    raws = _trials(60)

    def read_into(buf, from_seq, to_seq):
        used = 0
        nxt = from_seq
        for raw in raws:
            seq = record.seq_of(raw, 0)
            if from_seq <= seq <= to_seq:
                if used + len(raw) > len(buf):
                    break
                buf[used : used + len(raw)] = raw
                used += len(raw)
                nxt = seq + 1
        return used, nxt

    framer = protocol.Framer(read_into, payload_max=100)
    framer.start(3, 50)
    rx = protocol.Reassembler(record.check)
    frames = []
    got = []
    while True:
        frame = framer.frame()
        if frame is None:
            break
        frames.append(len(frame))
        got.extend(rx.feed(bytes(frame)))
        framer.sent(len(frame))
    rx.finish()
    return {
        "frames": frames,
        "seqs": [record.seq_of(r, 0) for r in got],
        "same": got == raws[2:50],
    }


def patients():
    entry = {
        "code": "P-0001",
        "age": 42,
        "sex": "F",
        "conditions": ("fibromyalgia",),
        "flags": ("chronic",),
        "contraindications": (),
        "sessions": 3,
        "last_dose": (0, 6, 0, 1),
        "last_adjuncts": ("e-stim",),
    }
    msg = protocol.patient_list([entry], 1796083200)
    rx = protocol.PatientListReceiver()
    chunks = protocol.patient_chunks(msg, 7)
    for chunk in chunks[:-1]:
        assert rx.write(chunk) is None
    time_s, parsed = rx.write(chunks[-1]) or (0, [])
    out = parsed[0]
    for key in out:
        if type(out[key]) is tuple:
            out[key] = list(out[key])
    return {"message": msg.hex(), "time_s": time_s, "entry": out}


def status_and_time():
    value = protocol.status(12, 3, 40, 37, 900, None, "2026.12-r2", clock_valid=True)
    return {
        "status": value.hex(),
        "parsed": protocol.parse_status(value),
        "time": protocol.current_time(1796129999).hex(),
        "wall_s": protocol.parse_current_time(protocol.current_time(1796129999)),
    }

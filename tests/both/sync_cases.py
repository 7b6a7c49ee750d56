# core.sync on both runtimes: one scripted session against the real store (LittleFS on
# micropython, a temporary directory on CPython), returning the bytes the device would send.
from rig import storage_root

from core import protocol, record, store
from core.sync import Pairing, Sync

_CONN = 3


def drive(machine, t=0):
    """Sends everything due: (frames, answers as hex), every indication confirmed at once."""
    frames = []
    answers = []
    for _ in range(100000):
        indication = machine.next_indication(t)
        if indication is not None:
            answers.append(bytes(indication).hex())
            machine.indication_sent(t)
            machine.indicate_done(machine.conn, 0)
            continue
        frame = machine.next_frame(t)
        if frame is None:
            if not machine.busy:
                break
            t += 1
            continue
        frames.append(bytes(frame))
        machine.frame_sent(len(frame), t)
    if machine.busy:
        raise AssertionError("the machine never went idle")
    return frames, answers


def _frame(machine, t):
    frame = machine.next_frame(t)
    if frame is None:
        raise AssertionError("no frame due at %d" % t)
    return bytes(frame)


def _seqs(frames):
    rx = protocol.Reassembler(record.check)
    out = []
    for frame in frames:
        for raw in rx.feed(frame):
            out.append(record.seq_of(raw, 0))
    rx.finish()
    return out


def session():
    root, _flash = storage_root("sync")
    st = store.Store(root)
    st.open(0, None)
    for i in range(18):
        fields = ("upper_trapezius", "R", i % 7 + 1, "stop", 0, 2500 + i, 2600, 480, 5000)
        st.append(record.TYPE_TRIAL, 100 + i, None, fields)
    st.flush()
    machine = Sync(st)
    machine.link_up(_CONN, 0)
    machine.set_mtu(_CONN, 103)  # 100-byte notifications
    machine.control(_CONN, protocol.request("report", "all"), 0)
    refused = drive(machine)[1]
    machine.security(_CONN, True, True)
    machine.control(_CONN, protocol.request("count", "all"), 0)
    count = drive(machine)[1]
    machine.control(_CONN, protocol.request("report", ">=", 3), 0)
    frames, report_answer = drive(machine)
    # abort after the first frame
    machine.control(_CONN, protocol.request("report", "all"), 0)
    first = _frame(machine, 0)
    machine.frame_sent(len(first), 0)
    machine.control(_CONN, protocol.request("abort"), 0)
    after, abort_answers = drive(machine)
    # ENOMEM: the same frame after the back-off
    machine.control(_CONN, protocol.request("report", "all"), 0)
    frame = _frame(machine, 10)
    machine.frame_enomem(10)
    none_yet = machine.next_frame(10) is None
    same = none_yet and _frame(machine, 11) == frame
    machine.control(_CONN, protocol.request("abort"), 0)
    drive(machine)
    machine.control(_CONN, protocol.request("delete", "<=", 20), 0)
    machine.control(_CONN, protocol.request("delete", "<=", 19), 0)
    delete = drive(machine)[1]
    pairing = Pairing()
    outside = pairing.request(_CONN, 3, 0, 7654321)
    pairing.open(0, 10)
    inside = pairing.request(_CONN, 3, 9999, 7654321)
    pairing.may_store(2)
    pairing.security(_CONN, True, True)
    result = {
        "refused": refused,
        "count": count,
        "report_seqs": _seqs(frames),
        "frames": [len(f) for f in frames],
        "report_answer": report_answer,
        "abort": {"frames_after": len(after), "answers": abort_answers},
        "enomem_same_frame": same,
        "delete": delete,
        "acked": st.acked_seq,
        "pairing": {"outside": outside, "inside": inside, "closed_after": not pairing.is_open(1)},
    }
    st.close()
    return result

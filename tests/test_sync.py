"""core.sync (the RACP procedures and the pairing window) and core.bonds, driven directly with
time passed in, on a real store (a temp directory). Expected values are the test's own;
every cut-off is tested at its edge and one step beyond. The same machine over a real GATT
stack: tests/test_sync_ble.py; on both runtimes: test_sync_on_both_runtimes below."""

import pytest
import sync_cases

from core import bonds as bonds_module
from core import protocol, record, store, sync
from core.sync import Pairing, Sync

CONN = 7
TRIAL = ("upper_trapezius", "L", 1, "stop", 0, 3000, 3100, 500, 7000)


def make_store(tmp_path, trials):
    st = store.Store(str(tmp_path / "log"))
    st.open(0, None)  # the boot event: seq 1
    for i in range(trials):
        st.append(record.TYPE_TRIAL, 10 + i, None, TRIAL)
    st.flush()
    return st


@pytest.fixture
def st(tmp_path):
    s = make_store(tmp_path, 10)  # 11 records
    yield s
    s.close()


def secure(machine, mtu=247):
    machine.link_up(CONN, 0)
    machine.security(CONN, True, True)
    machine.set_mtu(CONN, mtu)
    return machine


def drive(machine, t=0):
    """Sends everything due: (frames, answers parsed), every indication confirmed at once
    (the driver of the both-runtimes case, tests/both/sync_cases.py)."""
    frames, answers = sync_cases.drive(machine, t)
    return frames, [protocol.parse_response(bytes.fromhex(a)) for a in answers]


def request(machine, *args):
    machine.control(CONN, protocol.request(*args), 0)
    return drive(machine)


def seqs(frames):
    rx = protocol.Reassembler(record.check)
    out = []
    for frame in frames:
        out.extend(record.seq_of(raw, 0) for raw in rx.feed(frame))
    rx.finish()
    return out


REPORT = ("response", protocol.OP_REPORT, protocol.RSP_SUCCESS)


# -- security --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encrypted", "authenticated", "served"),
    [(False, False, False), (True, False, False), (False, True, False), (True, True, True)],
)
def test_only_an_encrypted_mitm_link_is_served(st, encrypted, authenticated, served):
    machine = Sync(st)
    machine.link_up(CONN, 0)
    machine.security(CONN, encrypted, authenticated)
    frames, answers = request(machine, "report", "all")
    if served:
        assert seqs(frames) == list(range(1, 12)) and answers == [REPORT]
    else:
        assert frames == []
        assert answers == [("response", protocol.OP_REPORT, protocol.RSP_NOT_AUTHENTICATED)]
        assert machine.refused == 1


def test_security_of_another_link_changes_nothing(st):
    machine = Sync(st)
    machine.link_up(CONN, 0)
    machine.security(CONN + 1, True, True)
    assert not machine.secure


# -- the procedures ---------------------------------------------------------------------------


def test_count_report_and_delete(st):
    machine = secure(Sync(st))
    assert request(machine, "count", "all") == ([], [("number", 11)])
    assert request(machine, "count", ">=", 5) == ([], [("number", 7)])
    frames, answers = request(machine, "report", ">=", 5)
    assert seqs(frames) == [5, 6, 7, 8, 9, 10, 11] and answers == [REPORT]
    assert machine.sent == machine.total == 7
    frames, answers = request(machine, "report", "range", 3, 4)
    assert seqs(frames) == [3, 4]
    assert request(machine, "report", ">=", 12)[1] == [
        ("response", protocol.OP_REPORT, protocol.RSP_NO_RECORDS)
    ]
    # delete <= N acknowledges N; N one beyond the last stored record is refused
    delete = ("response", protocol.OP_DELETE)
    assert request(machine, "delete", "<=", 12)[1] == [delete + (protocol.RSP_INVALID_OPERAND,)]
    assert st.acked_seq == 0
    assert request(machine, "delete", "<=", 11)[1] == [delete + (protocol.RSP_SUCCESS,)]
    assert st.acked_seq == 11
    assert request(machine, "delete", "<=", 4)[1] == [delete + (protocol.RSP_SUCCESS,)]
    assert st.acked_seq == 11  # acknowledging again is harmless


@pytest.mark.parametrize("operator", [("all",), (">=", 1), ("range", 1, 2)])
def test_only_delete_less_or_equal_is_supported(st, operator):
    machine = secure(Sync(st))
    answers = request(machine, "delete", *operator)[1]
    assert answers == [("response", protocol.OP_DELETE, protocol.RSP_OPERATOR_NOT_SUPPORTED)]
    assert st.acked_seq == 0


def test_frames_fill_the_mtu(st):
    for mtu, payload in ((23, 20), (100, 97), (247, 244), (248, 244), (517, 244)):
        machine = secure(Sync(st), mtu)
        frames = request(machine, "report", "all")[0]
        assert max(len(f) for f in frames) == payload
        assert all(len(f) == payload for f in frames[:-1])


def test_one_procedure_at_a_time_and_abort(st):
    machine = secure(Sync(st), 23)
    machine.control(CONN, protocol.request("report", "all"), 0)
    first = bytes(machine.next_frame(0))
    machine.frame_sent(len(first), 0)
    machine.control(CONN, protocol.request("count", "all"), 0)
    busy = ("response", protocol.OP_REPORT_NUMBER, protocol.RSP_NOT_COMPLETED)
    frames, answers = drive(machine)
    assert answers == [busy, REPORT]  # the running report went on to its end
    assert seqs([first] + frames) == list(range(1, 12))

    machine.control(CONN, protocol.request("report", "all"), 0)
    first = machine.next_frame(0)
    machine.frame_sent(len(first), 0)
    machine.control(CONN, protocol.request("abort"), 0)
    frames, answers = drive(machine)
    assert frames == []  # nothing after the abort, and no answer to the report
    assert answers == [("response", protocol.OP_ABORT, protocol.RSP_SUCCESS)]
    assert request(machine, "abort")[1] == [("response", protocol.OP_ABORT, protocol.RSP_SUCCESS)]


def test_bad_requests_get_their_response_code(st):
    machine = secure(Sync(st))
    for data, code in ((b"", 0x03), (b"\x01", 0x03), (b"\x09\x01", 0x02), (b"\x01\x05", 0x04)):
        machine.control(CONN, data, 0)
        answers = drive(machine)[1]
        assert answers == [("response", data[0] if data else 0, code)]


def test_at_most_four_answers_wait(st):
    machine = secure(Sync(st))
    for _ in range(6):
        machine.control(CONN, b"\x09\x01", 0)
    assert len(drive(machine)[1]) == 4  # the host that floods gets no answer to the rest


def test_enomem_retries_the_same_frame_after_a_backoff(st):
    machine = secure(Sync(st), 23)
    machine.control(CONN, protocol.request("report", "all"), 0)
    frame = bytes(machine.next_frame(100))
    machine.frame_enomem(100)
    assert machine.next_frame(100) is None
    assert machine.retry_in_ms(100) == sync.BACKOFF_MIN_MS
    assert bytes(machine.next_frame(100 + sync.BACKOFF_MIN_MS)) == frame  # the same one
    machine.frame_enomem(101)  # again: the back-off doubles
    assert machine.next_frame(102) is None
    assert bytes(machine.next_frame(103)) == frame
    for t in range(104, 200):
        machine.frame_enomem(t)
    assert machine.retry_in_ms(199) == sync.BACKOFF_MAX_MS  # and stops doubling
    machine.frame_sent(len(frame), 300)
    frames = drive(machine, 300)[0]
    assert seqs([frame] + frames) == list(range(1, 12))  # nothing skipped


def test_a_stuck_radio_ends_the_report_at_the_stall_timeout(st):
    machine = secure(Sync(st))
    machine.control(CONN, protocol.request("report", "all"), 0)
    machine.next_frame(0)
    machine.frame_enomem(sync.STALL_TIMEOUT_MS - 1)
    assert not machine.disconnect_wanted and machine.procedure == sync.REPORTING
    machine.frame_enomem(sync.STALL_TIMEOUT_MS)
    assert machine.disconnect_wanted and machine.procedure == sync.IDLE
    assert drive(machine, sync.STALL_TIMEOUT_MS)[1] == [
        ("response", protocol.OP_REPORT, protocol.RSP_NOT_COMPLETED)
    ]


def test_an_unconfirmed_indication_ends_the_link_at_30_s(st):
    machine = secure(Sync(st))
    machine.control(CONN, protocol.request("count", "all"), 0)
    assert machine.next_indication(5) is not None
    machine.indication_sent(5)
    assert machine.next_indication(6) is None  # one at a time
    machine.tick(5 + sync.INDICATE_TIMEOUT_MS - 1)
    assert not machine.disconnect_wanted
    machine.tick(5 + sync.INDICATE_TIMEOUT_MS)
    assert machine.disconnect_wanted


def test_a_lost_link_stops_everything(st):
    machine = secure(Sync(st), 23)
    machine.control(CONN, protocol.request("report", "all"), 0)
    machine.frame_sent(len(machine.next_frame(0)), 0)
    machine.link_down(CONN)
    assert machine.conn is None and not machine.secure and not machine.busy
    assert machine.next_frame(1) is None and machine.next_indication(1) is None
    secure(machine, 23)
    frames, answers = request(machine, "report", "all")
    assert frames[0][0] == 0 and seqs(frames) == list(range(1, 12))  # a new stream
    assert st.acked_seq == 0


class _GoneStore:
    """A store whose acknowledged records were deleted (core.store.RecordsGone)."""

    stored_seq = 50
    acked_seq = 40

    def count(self, low, high):
        return 10

    def read_into(self, buf, low, high):
        raise store.RecordsGone("records 1-40 were deleted after their ack")


def test_records_deleted_after_another_hosts_ack_are_named(st):
    machine = secure(Sync(_GoneStore()))
    assert request(machine, "report", ">=", 5) == (
        [],
        [("response", protocol.OP_REPORT, protocol.RSP_RECORDS_GONE)],
    )


# -- pairing ---------------------------------------------------------------------------------


def test_the_pairing_window_opens_and_closes_by_itself():
    pairing = Pairing()
    assert not pairing.is_open(0)
    pairing.open(1000, 2)
    assert pairing.is_open(2999) and pairing.seconds_left(2999) == 1
    assert not pairing.is_open(3000) and pairing.seconds_left(3000) == 0
    assert pairing.request(CONN, sync.PASSKEY_ACTION_DISPLAY, 3000, 5) is None
    assert pairing.refused == 1 and pairing.passkey is None


def test_a_passkey_is_shown_only_inside_the_window_and_only_to_display():
    pairing = Pairing()
    pairing.open(0, 60)
    assert pairing.request(CONN, 2, 10, 5) is None  # keyboard input: not this device
    assert pairing.request(CONN, 4, 10, 5) is None  # numeric comparison: not this device
    assert pairing.request(CONN, sync.PASSKEY_ACTION_DISPLAY, 10, 1234567) == 234567
    assert pairing.passkey == 234567
    assert pairing.request(CONN, 3, 10, 0xFFFFFFFF) == 0xFFFFFFFF % 1000000


def test_only_a_bond_made_with_the_passkey_is_kept():
    pairing = Pairing()
    assert pairing.may_store(10)  # the device's own IRK
    assert not pairing.may_store(bonds_module.SECRET_PEER_SEC)  # Just Works: no passkey
    pairing.open(0, 60)
    assert not pairing.may_store(bonds_module.SECRET_PEER_SEC)  # window open is not enough
    pairing.request(CONN, 3, 1, 42)
    assert pairing.may_store(bonds_module.SECRET_PEER_SEC)
    assert pairing.security(CONN, True, True)  # the passkey goes off the screen
    assert pairing.paired == 1 and not pairing.is_open(2)  # one laptop per opening
    assert not pairing.may_store(bonds_module.SECRET_PEER_SEC)


def test_a_failed_pairing_keeps_the_window_open():
    pairing = Pairing()
    pairing.open(0, 60)
    pairing.request(CONN, 3, 1, 42)
    assert not pairing.security(CONN + 1, True, True)  # another link: not this pairing
    assert pairing.security(CONN, False, False)
    assert pairing.paired == 0 and pairing.is_open(2) and pairing.passkey is None


def test_a_kept_bond_counts_even_when_the_link_ends_first():
    pairing = Pairing()
    pairing.open(0, 60)
    pairing.request(CONN, 3, 1, 42)
    pairing.may_store(bonds_module.SECRET_PEER_SEC)
    assert pairing.link_down(CONN)
    assert pairing.paired == 1 and not pairing.is_open(2)
    pairing.open(3, 60)
    pairing.request(CONN, 3, 4, 42)
    assert pairing.link_down(CONN)  # gone before any bond: no pairing
    assert pairing.paired == 1 and pairing.is_open(5)


# -- bonds -----------------------------------------------------------------------------------


def _addr(i):
    return bytes([1, i, 2, 3, 4, 5, 6])


def test_bonds_answer_by_key_and_by_index_and_persist(tmp_path):
    b = bonds_module.Bonds(str(tmp_path / "bonds"))
    assert b.load() == 0
    assert b.set(10, b"irk", bytes(16))
    assert b.set(2, _addr(1), b"v1") and b.set(1, _addr(1), b"o1")
    assert b.set(2, _addr(2), b"v2")
    assert b.get(2, 0, _addr(2)) == b"v2" and b.get(2, 0, _addr(3)) is None
    assert [b.get(2, i, None) for i in range(3)] == [b"v1", b"v2", None]
    assert b.set(2, _addr(1), b"v1b")  # replaced, now the newest
    assert [b.get(2, i, None) for i in range(2)] == [b"v2", b"v1b"]
    assert b.dirty
    b.save()
    again = bonds_module.Bonds(str(tmp_path / "bonds"))
    assert again.load() == 4
    assert again.payload() == b.payload()
    assert again.set(2, _addr(2), None) and again.get(2, 0, _addr(2)) is None


def test_the_oldest_laptop_is_forgotten_beyond_the_limit(tmp_path):
    b = bonds_module.Bonds(str(tmp_path / "bonds"))
    for i in range(bonds_module.PEERS_MAX):
        b.set(1, _addr(i), b"o")
        b.set(2, _addr(i), b"p")
    assert b.peers() == bonds_module.PEERS_MAX and b.get(2, 0, _addr(0)) == b"p"
    b.set(2, _addr(9), b"p")
    assert b.peers() == bonds_module.PEERS_MAX
    assert b.get(2, 0, _addr(0)) is None and b.get(1, 0, _addr(0)) is None  # both halves
    assert b.get(2, 0, _addr(1)) == b"p"


def test_secret_sizes_are_bounded(tmp_path):
    b = bonds_module.Bonds(str(tmp_path / "bonds"))
    assert b.set(2, bytes(bonds_module.KEY_MAX_BYTES), bytes(bonds_module.VALUE_MAX_BYTES))
    assert not b.set(2, bytes(bonds_module.KEY_MAX_BYTES + 1), b"v")
    assert not b.set(2, b"k", bytes(bonds_module.VALUE_MAX_BYTES + 1))
    assert not b.set(2, b"", b"v")
    for i in range(bonds_module.PEERS_MAX):  # the largest file fits its buffer
        b.set(1, _addr(i), bytes(bonds_module.VALUE_MAX_BYTES))
        b.set(2, _addr(i), bytes(bonds_module.VALUE_MAX_BYTES))
    b.set(10, bytes(bonds_module.KEY_MAX_BYTES), bytes(bonds_module.VALUE_MAX_BYTES))
    b.save()
    assert bonds_module.Bonds(b.path).load() == 2 * bonds_module.PEERS_MAX + 1


def test_a_damaged_bond_file_is_no_bonds(tmp_path):
    path = str(tmp_path / "bonds")
    b = bonds_module.Bonds(path)
    b.set(2, _addr(1), b"value")
    payload = bytes(b.payload())
    from core import atomic

    for bad in (payload[:-1], payload + b"x", b"\x02" + payload[1:], b""):
        atomic.write(path, bad)
        assert bonds_module.Bonds(path).load() == 0
    atomic.write(path, payload)
    assert bonds_module.Bonds(path).load() == 1


# -- both runtimes -------------------------------------------------------------------------


def test_sync_on_both_runtimes(both_runtimes):
    out = both_runtimes("sync_cases.session", heapsize="512K")
    assert out["refused"] == ["06000180"]
    assert out["count"] == ["050013000000"]  # 19 records: the boot event and 18 trials
    assert out["report_seqs"] == list(range(3, 20))
    assert out["frames"][:-1] == [100] * (len(out["frames"]) - 1)
    assert out["report_answer"] == ["06000101"]
    assert out["abort"] == {"frames_after": 0, "answers": ["06000301"]}
    assert out["enomem_same_frame"] is True
    assert out["delete"] == ["06000205", "06000201"]
    assert out["acked"] == 19
    assert out["pairing"] == {"outside": None, "inside": 654321, "closed_after": True}

"""The reading store (core.store): API semantics on CPython (a temp dir), and the fault cases
on micropython with the real LittleFS (tests/mp/store_faults.py)."""

import os
import shutil
import struct
from pathlib import Path

import pytest

from core import atomic, record, store
from simulator import FIRMWARE_DIR
from simulator.runtime import run_micropython

MP_DIR = Path(__file__).resolve().parent / "mp"
WALL_S = 1_790_000_000
TRIAL = ("upper_trapezius", "L", 1, "none", 0, 3000, 3100, 500, 7000)
START = ("P-0007", 40, "F", [], [], [], [], None, None, None, None, None, None)
BLE_PAYLOAD = 244  # MTU 247 - 3
# Both tiers: flushes into journal slots, and straight into segments (the old layout).
TIERS = [{}, {"journal_slots": 0}]
TIER_IDS = ["journal", "segments"]


def opened(root, **kw):
    st = store.Store(str(root), **kw)
    st.open(1000, None)
    return st


def reboot(st, root, **kw):
    """Power off (the batch is lost with the RAM) and on again: a new Store."""
    st.close()
    return opened(root, **kw)


def trial(st, n=1, t=2000):
    fields = ("upper_trapezius", "L", n % 16, "none", 0, 3000 + n, 3100, 500, 7000)
    return st.append(record.TYPE_TRIAL, t + n, WALL_S, fields)


def seqs(st, from_seq=1, to_seq=0xFFFFFFFF):
    return [seq for seq, _ in st.records(from_seq, to_seq)]


def decoded(st):
    return [record.decode(view) for _, view in st.records()]


def store_events(st, detail):
    return [
        r
        for r in decoded(st)
        if r["type"] == "event" and r["code"] == record.EV_STORE and r["detail"] == detail
    ]


def segment_files(root):
    return sorted(name for name in os.listdir(root) if name.startswith("L"))


def read_all(st, size, from_seq=1, to_seq=0xFFFFFFFF):
    """Every record read_into() gives from from_seq, as (seq, bytes), and the chunk sizes."""
    buf = bytearray(size)
    out = []
    chunks = []
    nxt = from_seq
    while True:
        used, nxt = st.read_into(buf, nxt, to_seq)
        chunks.append(used)
        off = 0
        while off < used:
            n = buf[off + 2]
            out.append((record.seq_of(buf, off), bytes(buf[off : off + n])))
            off += n
        assert off == used
        if not nxt:
            return out, chunks


def test_a_record_is_stored_only_after_flush(tmp_path):
    st = opened(tmp_path / "log")
    boot_seq = st.stored_seq
    seq = trial(st)
    assert seq == boot_seq + 1
    assert st.stored_seq == boot_seq  # in RAM only
    assert seqs(st) == [boot_seq]  # readers see stored records only
    assert st.stats()["buffered"] == 1
    assert st.flush() == seq == st.stored_seq
    assert seqs(st) == [boot_seq, seq]
    assert st.flush() == seq  # nothing buffered: no write, same answer


@pytest.mark.parametrize("kw", TIERS, ids=TIER_IDS)
def test_reopen_resumes_above_every_seq_and_counts_boots(tmp_path, kw):
    root = tmp_path / "log"
    st = opened(root, **kw)
    written = [trial(st, n) for n in range(5)]
    st.flush()
    unflushed = trial(st, 9)  # lost with the power: never stored
    st2 = reboot(st, root, **kw)
    assert st2.boot == st.boot + 1
    assert st2.stored_seq > unflushed  # not even an unflushed seq is used again
    assert seqs(st2)[: len(written) + 1] == [1] + written
    events = [r for r in decoded(st2) if r["type"] == "event" and r["code"] == record.EV_BOOT]
    assert [e["boot"] for e in events] == [1, 2]


def test_a_flush_per_trial_goes_to_the_journal_then_to_a_segment(tmp_path):
    st = opened(tmp_path, journal_slots=4)
    assert st.stats()["journal"] == 1 and st.stats()["segments"] == 0  # the boot event
    written = []
    for n in range(3):
        written.append(trial(st, n))
        st.flush()
    assert st.stats()["journal"] == 4 and not segment_files(tmp_path)
    written.append(trial(st, 3))
    st.flush()  # the ring is used up: journal + batch go to a segment in one commit
    assert st.stats()["journal"] == 0 and len(segment_files(tmp_path)) == 1
    written.append(trial(st, 4))
    st.flush()
    assert st.stats()["journal"] == 1
    assert seqs(st) == [1] + written
    again = reboot(st, tmp_path, journal_slots=4)
    assert seqs(again)[:-1] == [1] + written  # stale slot copies are not read twice
    assert again.count() == len(seqs(again))


def test_a_batch_too_big_for_a_slot_goes_straight_to_a_segment(tmp_path):
    st = opened(tmp_path, slot_bytes=64)
    samples = list(range(0, 4000, 40))
    seq = st.append(record.TYPE_CURVE, 5, WALL_S, (1, 0, 10, samples))
    st.flush()
    assert segment_files(tmp_path) == ["L00000001"]  # the boot event's slot went with it
    assert st.stats()["journal"] == 0
    assert seqs(st) == [1, seq]


def test_records_from_a_seq_and_count(tmp_path):
    st = opened(tmp_path / "log", buf_bytes=256, segment_bytes=256, journal_slots=0)
    written = [trial(st, n) for n in range(40)]  # several auto-flushes, several segments
    st.flush()
    assert len(segment_files(tmp_path / "log")) > 3
    assert seqs(st, written[17]) == written[17:]
    assert st.count() == 41
    assert st.count(written[10], written[19]) == 10
    assert st.count(written[-1] + 1) == 0
    # Each view is only valid for its step: decode (or copy) it there.
    ppts = [record.decode(view)["ppt_kpa_x10"] for _, view in st.records(written[5])]
    assert ppts == [3000 + n for n in range(5, 40)]


def test_read_into_packs_whole_records_for_a_notification(tmp_path):
    st = opened(tmp_path, buf_bytes=512, segment_bytes=600, journal_slots=8)
    for n in range(120):
        trial(st, n)
        if n % 5 == 0:
            st.append(record.TYPE_CURVE, 9, None, (n, 0, 10, [n] * (1 + n % 90)))
        if n % 3 == 0:
            st.flush()
    st.flush()
    expected = [(seq, bytes(view)) for seq, view in st.records()]
    got, chunks = read_all(st, BLE_PAYLOAD)
    assert got == expected
    assert len(chunks) > 10 and all(0 < c <= BLE_PAYLOAD for c in chunks)
    # Every chunk but the last is full up to the one record that did not fit.
    sizes = [len(raw) for _, raw in got]
    at = 0
    for used in chunks[:-1]:
        packed = 0
        while packed < used:
            packed += sizes[at]
            at += 1
        assert packed == used and used + sizes[at] > BLE_PAYLOAD
    whole, _ = read_all(st, 4096)
    assert whole == expected


def test_read_into_is_exact_at_every_seq_in_both_tiers(tmp_path):
    # Sync asks "records >= N", "records in [N, M]" and "how many": every N, including
    # the first and last record of each segment and slot, must give exactly those.
    st = opened(tmp_path, buf_bytes=256, segment_bytes=300, journal_slots=2)
    for n in range(40):
        trial(st, n)
        if n % 3 == 2:
            st.flush()
    while not st.stats()["journal"]:  # end with records in the journal too
        trial(st, 99)
        st.flush()
    stored = seqs(st)
    assert st.stats()["segments"] > 3 and st.stats()["journal"] > 0
    assert stored == list(range(stored[0], stored[-1] + 1))
    for n in range(0, stored[-1] + 2):
        assert [s for s, _ in read_all(st, 64, n)[0]] == [s for s in stored if s >= n]
        assert seqs(st, n, n + 1) == [s for s in stored if n <= s <= n + 1]
        assert st.count(n, n) == (1 if n in stored else 0)
        assert st.count(1, n) == len([s for s in stored if s <= n])
    assert st.read_into(bytearray(64), stored[-1] + 1) == (0, 0)
    assert st.read_into(bytearray(64), 5, 4) == (0, 0)


def test_readers_interleave_and_a_reader_may_stop_any_time(tmp_path):
    st = opened(tmp_path, buf_bytes=256, segment_bytes=512, journal_slots=6)
    for n in range(60):
        trial(st, n)
        if n % 4 == 0:
            st.flush()
    st.flush()
    expected = [(seq, bytes(view)) for seq, view in st.records()]
    bufs = [bytearray(BLE_PAYLOAD), bytearray(100)]
    nxt = [1, expected[10][0]]
    got = [[], []]
    while nxt[0] or nxt[1]:
        for r in (0, 1):
            if nxt[r]:
                used, nxt[r] = st.read_into(bufs[r], nxt[r])
                off = 0
                while off < used:
                    n = bufs[r][off + 2]
                    got[r].append((record.seq_of(bufs[r], off), bytes(bufs[r][off : off + n])))
                    off += n
        if len(got[0]) > 20:
            trial(st, 99)  # the device logs on between notifications
            st.flush()
    assert got[0][: len(expected)] == expected
    assert got[1][: len(expected) - 10] == expected[10:]
    abandoned = st.read_into(bytearray(64), 1)  # RACP abort: just never called again
    assert abandoned[1] > 1
    assert read_all(st, 64)[0][: len(expected)] == expected


def test_read_into_refuses_a_buffer_that_cannot_take_the_next_record(tmp_path):
    st = opened(tmp_path)
    seq = trial(st)
    st.flush()
    with pytest.raises(ValueError):
        st.read_into(bytearray(20), seq)
    assert st.read_into(bytearray(record.MAX_BYTES), seq)[0] == 32


def test_ack_validates_and_updates_counts(tmp_path):
    root = tmp_path / "log"
    st = opened(root)
    written = [trial(st, n) for n in range(6)]
    st.flush()
    assert st.stats()["unacked"] == 7
    with pytest.raises(ValueError):
        st.ack(written[-1] + 1)  # the host cannot have what is not stored
    assert st.ack(written[2]) == written[2]
    assert st.stats()["unacked"] == 3
    assert st.ack(written[0]) == written[2]  # never goes back
    st2 = reboot(st, root)
    assert st2.acked_seq == written[2]
    assert st2.stats()["unacked"] == 4  # 3 + the new boot event
    assert len(seqs(st2)) == 8  # acknowledged records stay until space is needed


def test_stale_state_file_never_reuses_a_seq(tmp_path):
    root = tmp_path / "log"
    st = opened(root)
    stale = (root / "state").read_bytes()
    for n in range(200):  # past several leases
        trial(st, n)
    top = st.flush()
    (root / "state").write_bytes(stale)
    st2 = reboot(st, root)
    assert st2.stored_seq > top
    assert seqs(st2)[-2] == top


def test_lost_state_file_is_rebuilt_and_reported(tmp_path):
    root = tmp_path / "log"
    st = opened(root)
    for n in range(3):
        trial(st, n)
    top = st.flush()
    in_ram = [trial(st, n) for n in range(3)]  # handed out, never stored
    (root / "state").unlink()
    st.close()
    st2 = store.Store(str(root))
    assert st2.open(5000) == 1
    assert st2.stored_seq > max(in_ram)  # a lease's worth is skipped: none handed out twice
    assert st2.boot >= st.boot  # at least the last boot seen in the log
    assert len(store_events(st2, record.ST_STATE)) == 1
    assert st2.acked_seq == 0  # unknown: everything is offered to the host again
    assert top in seqs(st2)


def test_the_lease_on_flash_is_above_every_seq_handed_out_at_the_edge(tmp_path):
    st = opened(tmp_path)
    buf = bytearray(32)

    def lease_on_flash():
        return struct.unpack("<III", atomic.read(str(tmp_path / "state"), buf))[0]

    edge = lease_on_flash()
    while st.next_seq < edge - 1:
        trial(st)
    assert lease_on_flash() == edge
    assert trial(st) == edge - 1  # the last seq the lease covers: no state write
    assert lease_on_flash() == edge
    assert trial(st) == edge  # at the lease: it is moved on flash first
    assert lease_on_flash() > edge


@pytest.mark.parametrize("kw", TIERS, ids=TIER_IDS)
def test_torn_tail_is_reported_and_nothing_is_appended_after_it(tmp_path, kw):
    root = tmp_path / "log"
    st = opened(root, journal_slots=0)
    written = [trial(st, n) for n in range(4)]
    st.flush()
    (name,) = segment_files(root)
    buf = bytearray(64)
    n = record.encode(buf, 0, record.TYPE_TRIAL, written[-1] + 1, 1, 9, None, TRIAL)
    with open(root / name, "ab") as f:  # a FAT-like filesystem cut mid-append
        f.write(buf[: n // 2])
    torn_bytes = (root / name).read_bytes()
    st2 = reboot(st, root, **kw)
    torn = store_events(st2, record.ST_TORN)
    assert len(torn) == 1 and torn[0]["b"] == n // 2
    assert seqs(st2)[1:5] == written
    after = trial(st2, 7)
    st2.flush()
    st2.flush()
    for _ in range(70):  # through the journal into a segment
        trial(st2)
        st2.flush()
    assert len(segment_files(root)) == 2  # nothing appended after the garbage
    st3 = reboot(st2, root, **kw)
    assert after in seqs(st3)
    assert (root / name).read_bytes() == torn_bytes


def test_flipped_byte_costs_one_record_and_is_reported(tmp_path):
    root = tmp_path / "log"
    st = opened(root, journal_slots=0)
    written = [trial(st, n) for n in range(10)]
    st.flush()
    (name,) = segment_files(root)
    data = bytearray((root / name).read_bytes())
    data[len(data) // 2] ^= 0x10
    (root / name).write_bytes(bytes(data))
    st2 = reboot(st, root)
    got = seqs(st2)
    lost = [s for s in written if s not in got]
    assert len(lost) == 1
    assert len(store_events(st2, record.ST_CORRUPT)) == 1
    assert st2.stored_seq > written[-1]


def test_a_flipped_byte_in_a_slot_costs_one_record(tmp_path):
    st = opened(tmp_path)
    written = [trial(st, n) for n in range(3)]
    st.flush()  # slot 1 (slot 0 holds the boot event)
    slot = tmp_path / "J0" / "1"
    data = bytearray(slot.read_bytes())
    data[40] ^= 0x01  # inside the second trial
    slot.write_bytes(bytes(data))
    st2 = reboot(st, tmp_path)
    got = seqs(st2)
    assert [s for s in written if s not in got] == [written[1]]
    assert len(store_events(st2, record.ST_CORRUPT)) == 1


def test_empty_segment_from_a_cut_is_removed(tmp_path):
    root = tmp_path / "log"
    st = opened(root)
    trial(st)
    st.flush()
    (root / "L0000FFFF").write_bytes(b"")
    st2 = reboot(st, root)
    assert "L0000FFFF" not in segment_files(root)
    assert len(store_events(st2, record.ST_EMPTY)) == 1


def test_bad_records_are_refused_before_a_seq_is_used(tmp_path):
    st = opened(tmp_path / "log")
    before = st.next_seq
    with pytest.raises(record.RecordError):
        st.append(record.TYPE_TRIAL, 1, None, ("upper_trapezius", "X", 1, "none", 0, 1, 1, 1, 1))
    assert st.next_seq == before
    assert st.stats()["buffered"] == 0


def test_a_full_buffer_flushes_itself(tmp_path):
    st = opened(tmp_path / "log", buf_bytes=256)
    first = trial(st, 0)
    for n in range(1, 12):
        trial(st, n)
    assert st.stored_seq >= first  # stored without an explicit flush


def test_no_filesystem_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    st = store.Store(str(tmp_path / "file" / "log"))
    with pytest.raises(store.StoreError) as err:
        st.open(0)
    assert str(err.value).startswith("storage error")
    with pytest.raises(store.StoreError):
        st.append(record.TYPE_TRIAL, 1, None, TRIAL)


def test_store_never_formats():
    code = [
        line.split("#")[0]
        for line in (FIRMWARE_DIR / "core" / "store.py").read_text().splitlines()
    ]
    assert not [line for line in code if "mkfs" in line or "Vfs" in line or "umount" in line]


def test_one_store_per_directory(tmp_path):
    # A second Store on the same directory made the first one's flushed records unreadable.
    first = opened(tmp_path)
    written = [trial(first, n) for n in range(3)]
    first.flush()
    second = store.Store(str(tmp_path))
    with pytest.raises(store.StoreError):
        second.open(5000)
    written.append(trial(first, 9))
    first.flush()
    assert seqs(first) == [1] + written
    first.close()
    assert seqs(opened(tmp_path))[: len(written) + 1] == [1] + written


def committed_then_failing_close(monkeypatch, fail_on):
    """open() for the store whose close() raises after the data reached the file: a flush
    LittleFS committed, reported as failed."""
    real_open = open
    armed = []

    class CommittedButFailed:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            return self._f.write(data)

        def close(self):
            self._f.close()
            raise OSError(5)

    def patched(path, mode="r"):
        f = real_open(path, mode)
        if armed and fail_on(path) and "r" not in mode:
            armed.pop()
            return CommittedButFailed(f)
        return f

    monkeypatch.setattr(store, "open", patched, raising=False)
    return armed


@pytest.mark.parametrize("kw", TIERS, ids=TIER_IDS)
def test_a_flush_that_failed_after_it_was_written_is_not_written_twice(tmp_path, monkeypatch, kw):
    st = opened(tmp_path, **kw)
    armed = committed_then_failing_close(monkeypatch, lambda path: "state" not in path)
    kept = [trial(st, n) for n in range(2)]
    st.flush()
    batch = [trial(st, n) for n in range(3)]
    armed.append(1)
    with pytest.raises(store.StoreError):
        st.flush()
    with pytest.raises(store.StoreError):
        st.flush()  # the RAM view may be wrong: nothing is written before a recovery
    more = trial(st, 7)  # measuring goes on meanwhile
    st.open(9000)  # the documented recovery (the filesystem remounted first on a board)
    got = seqs(st)
    assert len(got) == len(set(got))
    assert [s for s in kept + batch + [more] if s not in got] == []
    assert st.count() == len(got) == st.stats()["records"]
    after = trial(st, 8)
    st.flush()
    again = reboot(st, tmp_path, **kw)
    got = seqs(again)
    assert len(got) == len(set(got)) and after in got
    assert again.count() == len(got)
    assert not store_events(again, record.ST_ORDER)


@pytest.mark.parametrize("where", ["right after itself", "after later records"])
def test_a_segment_holding_a_seq_twice_is_reported_counted_once_and_closed(tmp_path, where):
    st = opened(tmp_path, journal_slots=0)
    written = [trial(st, n) for n in range(4)]
    st.flush()
    (name,) = segment_files(tmp_path)
    data = (tmp_path / name).read_bytes()
    at = len(data) - 32 if where == "right after itself" else record.check(data, 0, len(data))
    twice = data[at : at + 32]  # the last trial (55, 55) or the first (55, 56, 57, 55)
    dup = record.seq_of(twice, 0)
    (tmp_path / name).write_bytes(data + twice)
    st2 = reboot(st, tmp_path, journal_slots=0)
    got = seqs(st2)
    assert got.count(dup) == 1 and set(written) <= set(got)
    assert len(store_events(st2, record.ST_ORDER)) == 1
    assert st2.count() == len(got) == st2.stats()["records"]
    assert st2.count(dup, dup) == 1
    trial(st2, 5)
    st2.flush()
    assert len(segment_files(tmp_path)) == 2  # nothing appended after it
    assert (tmp_path / name).read_bytes() == data + twice


def fill_segments(st, sessions, per_session):
    ends = []
    for n in range(sessions):
        for k in range(per_session):
            trial(st, n * 10 + k)
        st.flush()
        ends.append(st.stored_seq)
    return ends


def test_a_partly_acknowledged_segment_survives_reclaim(tmp_path, monkeypatch):
    st = opened(tmp_path, buf_bytes=256, segment_bytes=256, journal_slots=0)
    fill_segments(st, 6, 7)  # one 256-byte segment per flush
    segs = [list(s) for s in st._segs]
    assert len(segs) >= 5
    # Acknowledge all of the first two segments and half of the third.
    half = (segs[2][3] + segs[2][4]) // 2
    st.ack(half)
    monkeypatch.setattr(st, "_free", lambda: 0)  # no space: reclaim all it may
    assert not st.room_for_session()
    left = segment_files(tmp_path)
    assert left[0] == "L%08X" % segs[2][0]  # the partly acknowledged one is kept
    assert seqs(st)[0] == segs[2][4]
    assert half + 1 in seqs(st)


def test_reclaim_keeps_the_newest_segment_so_seqs_never_restart(tmp_path, monkeypatch):
    st = opened(tmp_path, buf_bytes=256, segment_bytes=300)
    for n in range(200):
        trial(st, n)
        st.flush()
    st.ack(st.stored_seq)
    last = st.stored_seq
    monkeypatch.setattr(st, "_free", lambda: 0)  # the disk is full: reclaim all it may
    assert not st.room_for_session()
    assert segment_files(tmp_path)
    monkeypatch.undo()
    for name in ("state", "state.tmp"):  # and the state file is lost too
        if (tmp_path / name).exists():
            (tmp_path / name).unlink()
    assert reboot(st, tmp_path).next_seq > last


def test_a_reader_whose_records_were_reclaimed_gets_an_error_not_a_gap(tmp_path, monkeypatch):
    st = opened(tmp_path, buf_bytes=256, segment_bytes=256, journal_slots=0)
    fill_segments(st, 6, 7)
    buf = bytearray(100)
    used, nxt = st.read_into(buf, 1)  # the host reads the first few ...
    assert used and nxt
    st.ack(st.stored_seq)  # ... another host acknowledges everything ...
    monkeypatch.setattr(st, "_free", lambda: 0)
    st.room_for_session()  # ... and a new session reclaims the old segments
    first = st.first_seq()
    assert first > nxt
    with pytest.raises(store.RecordsGone):
        st.read_into(buf, nxt)
    with pytest.raises(store.RecordsGone):
        st.read_into(buf, first - 1)  # the newest record deleted
    assert st.read_into(buf, first)[0]  # the oldest left
    assert st.read_into(buf, 1)[0]  # a new read of "all" starts at the oldest
    assert seqs(st)[0] == first


def test_a_reader_past_the_acknowledged_seqs_is_never_told_records_are_gone(tmp_path, monkeypatch):
    # Seqs skipped by a reboot (a lease gap) were never stored: nothing was deleted there.
    st = opened(tmp_path, buf_bytes=256, segment_bytes=256, journal_slots=0)
    ends = fill_segments(st, 3, 8)  # full segments: the reboot's records start a new one
    st = reboot(st, tmp_path, buf_bytes=256, segment_bytes=256, journal_slots=0)
    fill_segments(st, 3, 8)
    acked = ends[-1]
    st.ack(acked)
    monkeypatch.setattr(st, "_free", lambda: 0)
    st.room_for_session()
    first = st.first_seq()
    assert first > acked + 1  # the reboot's gap: acked + 1 .. first - 1 never existed
    assert st.read_into(bytearray(64), acked + 1)[0]  # no error: nothing was skipped
    assert record.seq_of(read_all(st, 64, acked + 1)[0][0][1], 0) == first


def test_unacknowledged_records_are_never_reclaimed_under_a_reader(tmp_path, monkeypatch):
    st = opened(tmp_path, buf_bytes=256, segment_bytes=256, journal_slots=0)
    ends = fill_segments(st, 6, 7)
    st.ack(ends[1])
    expected = seqs(st, ends[1] + 1)
    got, nxt = [], ends[1] + 1
    buf = bytearray(64)
    monkeypatch.setattr(st, "_free", lambda: 0)
    while nxt:
        used, nxt = st.read_into(buf, nxt)
        got.extend(record.seq_of(buf, off) for off in range(0, used, 32))
        st.room_for_session()  # reclaim between every notification
    assert got == expected


def test_stray_names_in_the_log_directory_are_reported_and_skipped(tmp_path):
    st = opened(tmp_path)
    written = [trial(st, n) for n in range(3)]
    st.flush()
    st.close()
    (tmp_path / "L00000005").mkdir()  # a directory with a segment's name
    (tmp_path / "L0000000a").write_bytes(b"x")  # not as the store writes one
    (tmp_path / "Lxyz").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "J0" / "99").write_bytes(b"x")
    (tmp_path / "J0" / "03").write_bytes(b"x")
    (tmp_path / "J0" / "5").mkdir()
    again = opened(tmp_path)
    assert seqs(again)[:4] == [1] + written
    (event,) = store_events(again, record.ST_STRAY)
    assert event["b"] == 7
    assert (tmp_path / "notes.txt").read_text() == "hello"  # never the store's to delete
    for n in range(40):  # the journal works around the directory in slot 5's place
        trial(again, n)
        again.flush()
    final = reboot(again, tmp_path)
    assert final.count() == len(seqs(final)) == final.stats()["records"]


def test_a_file_where_the_journal_directory_belongs_leaves_flushes_to_segments(tmp_path):
    (tmp_path / "J0").write_bytes(b"not a directory")
    st = opened(tmp_path)
    written = [trial(st, n) for n in range(3)]
    st.flush()
    assert segment_files(tmp_path) == ["L00000001"]
    assert set(written) <= set(seqs(reboot(st, tmp_path)))


def test_a_ring_left_by_another_slot_count_is_consolidated_first(tmp_path):
    st = opened(tmp_path, journal_slots=40)
    written = []
    for n in range(30):
        written.append(trial(st, n))
        st.flush()
    assert st.stats()["journal"] == 31
    st2 = reboot(st, tmp_path, journal_slots=8)  # slots 8..30 are not in its ring
    # Its first flush (the boot event) consolidated them before writing a slot.
    assert st2.stats()["journal"] == 0 and len(segment_files(tmp_path)) == 1
    trial(st2, 99)
    st2.flush()
    assert st2.stats()["journal"] == 1
    got = seqs(reboot(st2, tmp_path, journal_slots=8))
    assert got[: len(written) + 1] == [1] + written
    assert len(got) == len(set(got))


def test_a_failed_state_rename_keeps_the_good_state_file(tmp_path, monkeypatch):
    st = opened(tmp_path)
    written = [trial(st, n) for n in range(4)]
    st.flush()
    st.ack(written[1])
    real_rename = os.rename
    failures = [OSError(5)]

    def flaky_rename(a, b):
        if failures:
            raise failures.pop()
        return real_rename(a, b)

    monkeypatch.setattr(os, "rename", flaky_rename)
    with pytest.raises(store.StoreError):
        st.ack(written[3])
    assert (tmp_path / "state").exists()  # a transient error is not FAT's "exists"
    assert st.acked_seq == written[1]
    st.open(5000)  # recovery
    assert st.acked_seq in (written[1], written[3])  # the new file may already be whole
    assert st.ack(written[3]) == written[3]
    assert reboot(st, tmp_path).acked_seq == written[3]


def test_atomic_file_replaces_whole_and_falls_back_to_tmp(tmp_path, monkeypatch):
    path = str(tmp_path / "settings")
    buf = bytearray(64)
    assert atomic.read(path, buf) is None
    atomic.write(path, b"first")
    assert bytes(atomic.read(path, buf)) == b"first"
    real_rename = os.rename

    def fat_rename(a, b):
        if os.path.exists(b):
            raise OSError(17)  # FAT: EEXIST
        return real_rename(a, b)

    monkeypatch.setattr(os, "rename", fat_rename)
    atomic.write(path, b"second")
    assert bytes(atomic.read(path, buf)) == b"second"
    atomic.write(str(tmp_path / "other"), b"x")
    os.remove(path)  # a cut between FAT's remove and rename: only the .tmp is left
    shutil.copyfile(tmp_path / "other", path + ".tmp")
    assert bytes(atomic.read(path, buf)) == b"x"
    data = bytearray(open(path + ".tmp", "rb").read())
    data[7] ^= 1
    open(path + ".tmp", "wb").write(bytes(data))
    assert atomic.read(path, buf) is None  # a bad CRC is no file
    assert atomic.read(path, bytearray(8)) is None  # too short to hold one


LEASE_AHEAD = 16  # core.store._LEASE_AHEAD


def lease_on_flash(root):
    return struct.unpack("<III", atomic.read(str(root / "state"), bytearray(32)))[0]


def to_lease_left(st, root, left):
    """Appends and flushes trials until `left` seqs are left of the lease on flash."""
    while lease_on_flash(root) - st.next_seq != left:
        trial(st)
        if lease_on_flash(root) - st.next_seq > left:
            st.flush()


def failed_flush(st, monkeypatch, owner, name):
    """flush() while owner.name (a write) raises EIO: the StoreError's text. The write works
    again afterwards."""
    real = getattr(owner, name)

    def failing(*_args):
        raise OSError(5)

    monkeypatch.setattr(owner, name, failing)
    with pytest.raises(store.StoreError) as err:
        st.flush()
    monkeypatch.setattr(owner, name, real)
    return str(err.value)


def test_a_flush_moves_the_lease_on_when_fewer_than_16_seqs_are_left(tmp_path):
    st = opened(tmp_path)
    to_lease_left(st, tmp_path, LEASE_AHEAD)
    edge = lease_on_flash(tmp_path)
    st.flush()
    assert lease_on_flash(tmp_path) == edge  # 16 left: no state write
    trial(st)
    st.flush()  # 15 left: the flush moves it on, before the batch
    assert lease_on_flash(tmp_path) == st.next_seq + 64


def test_a_visit_appending_a_few_records_between_flushes_never_writes_state_in_append(
    tmp_path, monkeypatch
):
    st = opened(tmp_path)
    state_writes = []
    real = store.Store._write_state

    def counted(self):
        state_writes.append(self.next_seq)
        real(self)

    monkeypatch.setattr(store.Store, "_write_state", counted)
    in_append = 0
    for step in range(300):  # a visit's steps: a trial and its curve, a site, ...
        before = len(state_writes)
        for n in range(1 + step % 6):
            trial(st, n)
        in_append += len(state_writes) - before
        st.flush()
    assert in_append == 0
    assert len(state_writes) >= 300 * 3 // 64  # the lease moved on, by the flushes


def test_a_state_write_that_fails_in_a_flush_keeps_the_batch_for_the_recovery(
    tmp_path, monkeypatch
):
    st = opened(tmp_path)
    to_lease_left(st, tmp_path, LEASE_AHEAD)
    in_ram = [trial(st, n) for n in range(2)]  # 14 left: the flush must move the lease
    assert failed_flush(st, monkeypatch, atomic, "write") == "storage error 5 - restart"
    st.open(3000)  # the app's recovery: remount, open again; the batch is kept
    st.flush()
    stored = seqs(st)
    assert stored[-len(in_ram) - 1 : -1] == in_ram
    (event,) = store_events(st, record.ST_IO)  # the failure, reported after them
    assert event["b"] == 5 and event["seq"] == stored[-1]
    assert lease_on_flash(tmp_path) > max(stored)
    st2 = reboot(st, tmp_path)
    assert st2.next_seq > max(stored)  # none handed out twice


def test_a_lease_at_the_last_seq_is_not_written_again_by_every_flush(tmp_path, monkeypatch):
    st = opened(tmp_path)
    st.close()
    atomic.write(str(tmp_path / "state"), struct.pack("<III", 0xFFFFFFFF - 10, 0, 3))
    st = opened(tmp_path)
    assert lease_on_flash(tmp_path) == 0xFFFFFFFF  # as far as it goes
    writes = []
    monkeypatch.setattr(store.Store, "_write_state", lambda self: writes.append(1))
    for _ in range(3):
        trial(st)
        st.flush()
    assert writes == []


def test_the_last_seq_is_refused_with_a_store_error_and_never_wraps(tmp_path):
    top = 0xFFFFFFFF
    st = opened(tmp_path)
    st.close()
    state = struct.pack("<III", top - 10, 0, 3)
    atomic.write(str(tmp_path / "state"), state)
    st = opened(tmp_path)
    handed = []
    with pytest.raises(store.StoreError) as err:
        while True:
            handed.append(trial(st))
    assert not isinstance(err.value, record.RecordError)
    assert "service" in str(err.value)
    assert max(handed) == top - 1
    st.flush()
    lease = struct.unpack("<III", atomic.read(str(tmp_path / "state"), bytearray(32)))[0]
    assert lease == top
    st.close()
    st2 = store.Store(str(tmp_path))
    with pytest.raises(store.StoreError):
        st2.open(5000)  # no seq left even for the boot event: a clear error, no wrap
    assert st2.next_seq == top


def test_after_a_write_error_the_store_waits_for_a_recovery(tmp_path, monkeypatch):
    st = opened(tmp_path)
    seq = trial(st)
    assert failed_flush(st, monkeypatch, store, "_write_file") == "storage error 5 - restart"
    with pytest.raises(store.StoreError):
        st.flush()
    with pytest.raises(store.StoreError):
        st.ack(1)
    st.open(3000)
    assert seq in seqs(st)
    (event,) = store_events(st, record.ST_IO)
    assert event["b"] == 5


@pytest.fixture(scope="module")
def mp_faults():
    proc = run_micropython(script=MP_DIR / "store_faults.py", heapsize="4M", timeout_s=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("ok ", "FAIL "))]
    assert "done" in proc.stdout
    return lines


@pytest.mark.parametrize(
    "name",
    [
        "case_full_disk",
        "case_bit_flip",
        "case_io_error_return",
        "case_io_error_raise",
        "case_mount_failure_never_formats",
        "case_fence_refuses_an_abandoned_mount",
        "case_reader_across_reclaim",
        "case_finaliser_after_recovery",
    ],
)
def test_littlefs_fault_cases(mp_faults, name):
    assert "ok " + name in mp_faults, [line for line in mp_faults if name in line]


def test_a_batch_bigger_than_a_slot_takes_several_each_within_the_slot_size(tmp_path):
    st = opened(tmp_path)
    written = [trial(st, n) for n in range(9)]  # 288 bytes: three slots of up to 128
    st.flush()
    slots = sorted((tmp_path / "J0").iterdir())
    sizes = [p.stat().st_size for p in slots]
    assert len(slots) == 4 and all(size <= 128 for size in sizes), sizes  # and the boot's
    assert sum(sizes[1:]) == 9 * 32
    assert seqs(reboot(st, tmp_path))[1:10] == written


def test_a_slot_overlapping_the_segments_is_read_from_its_first_new_record(tmp_path):
    st = opened(tmp_path, journal_slots=3)
    for n in range(5):
        trial(st, n)
        st.flush()  # the third flush consolidates; then slots 0 and 1 again
    last_in_segment = st._segs[-1][3]
    (segment,) = segment_files(tmp_path)
    data = (tmp_path / segment).read_bytes()
    stale = data[-32:]  # the segment's last record
    assert record.seq_of(stale, 0) == last_in_segment
    slot = tmp_path / "J0" / "0"
    slot.write_bytes(stale + slot.read_bytes())  # a stale copy before the live record
    st2 = reboot(st, tmp_path, journal_slots=3)
    got = seqs(st2)
    assert got.count(last_in_segment) == 1 and len(got) == len(set(got))
    assert st2.count() == len(got) == st2.stats()["records"]
    for n in range(4):  # through a consolidation of that slot
        trial(st2, n)
        st2.flush()
    st3 = reboot(st2, tmp_path, journal_slots=3)
    got = seqs(st3)
    assert got.count(last_in_segment) == 1 and len(got) == len(set(got))
    assert not store_events(st3, record.ST_ORDER)


def test_live_slots_out_of_ring_order_are_never_overwritten(tmp_path):
    st = opened(tmp_path, journal_slots=4)
    written = []
    for n in range(6):
        written.append(trial(st, n))
        st.flush()  # the fourth consolidates; slots 0 and 1 hold the last two flushes
    st.close()
    ring = tmp_path / "J0"
    (ring / "2").unlink()
    (ring / "3").unlink()
    (ring / "0").rename(ring / "2")  # live records in slots 2 and 3, none in 0 and 1
    (ring / "1").rename(ring / "3")
    st2 = opened(tmp_path, journal_slots=4)
    for n in range(3):
        written.append(trial(st2, 10 + n))
        st2.flush()
    got = seqs(reboot(st2, tmp_path, journal_slots=4))
    assert [s for s in written if s not in got] == []

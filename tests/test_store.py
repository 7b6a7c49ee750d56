"""The reading store (core.store): API semantics on CPython (a temp dir), and the fault cases
on micropython with the real LittleFS (tests/mp/store_faults.py)."""

import os
from pathlib import Path

import pytest

from core import record, store
from simulator import FIRMWARE_DIR
from simulator.runtime import run_micropython

MP_DIR = Path(__file__).resolve().parent / "mp"
WALL_S = 1_790_000_000
TRIAL = (3, 1, 1, 0, 0, 3000, 3100, 500, 7000)
START = ("P-0007", 40, "F", [], [], [], [], None, None, None, None, None, None)


def opened(root, **kw):
    st = store.Store(str(root), **kw)
    st.open(1000, None)
    return st


def trial(st, n=1, t=2000):
    fields = (3, 1, n % 16, 0, 0, 3000 + n, 3100, 500, 7000)
    return st.append(record.TYPE_TRIAL, t + n, WALL_S, fields)


def seqs(st, from_seq=1):
    return [seq for seq, _ in st.records(from_seq)]


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


def test_reopen_resumes_above_every_seq_and_counts_boots(tmp_path):
    root = tmp_path / "log"
    st = opened(root)
    written = [trial(st, n) for n in range(5)]
    st.flush()
    unflushed = trial(st, 9)  # lost with the power: never stored
    st2 = opened(root)
    assert st2.boot == st.boot + 1
    assert st2.stored_seq > unflushed  # not even an unflushed seq is used again
    assert seqs(st2)[: len(written) + 1] == [1] + written
    events = [r for r in decoded(st2) if r["type"] == "event" and r["code"] == record.EV_BOOT]
    assert [e["boot"] for e in events] == [1, 2]


def test_records_from_a_seq_and_count(tmp_path):
    st = opened(tmp_path / "log", buf_bytes=256, segment_bytes=256)
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


def test_records_iterator_stops_early_and_a_new_one_supersedes(tmp_path):
    st = opened(tmp_path / "log")
    for n in range(5):
        trial(st, n)
    st.flush()
    first = st.records()
    assert next(first)[0] == 1
    second = st.records(3)
    assert next(second)[0] == 3
    with pytest.raises(store.StoreError):
        next(first)
    assert [s for s, _ in second] == [4, 5, 6]


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
    st2 = opened(root)
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
    st2 = opened(root)
    assert st2.stored_seq > top
    assert seqs(st2)[-2] == top


def test_lost_state_file_is_rebuilt_and_reported(tmp_path):
    root = tmp_path / "log"
    st = opened(root)
    for n in range(3):
        trial(st, n)
    top = st.flush()
    (root / "state").unlink()
    st2 = store.Store(str(root))
    assert st2.open(5000) == 1
    assert st2.stored_seq > top
    assert st2.boot >= st.boot  # at least the last boot seen in the log
    assert len(store_events(st2, record.ST_STATE)) == 1
    assert st2.acked_seq == 0  # unknown: everything is offered to the host again


def test_torn_tail_is_reported_and_appends_go_to_a_new_segment(tmp_path):
    root = tmp_path / "log"
    st = opened(root)
    written = [trial(st, n) for n in range(4)]
    st.flush()
    (name,) = segment_files(root)
    buf = bytearray(64)
    n = record.encode(buf, 0, record.TYPE_TRIAL, written[-1] + 1, 1, 9, None, TRIAL)
    with open(root / name, "ab") as f:  # a FAT-like filesystem cut mid-append
        f.write(buf[: n // 2])
    st2 = opened(root)
    torn = store_events(st2, record.ST_TORN)
    assert len(torn) == 1 and torn[0]["b"] == n // 2
    assert seqs(st2)[1:5] == written
    after = trial(st2, 7)
    st2.flush()
    assert len(segment_files(root)) == 2  # nothing appended after the garbage
    st3 = opened(root)
    assert after in seqs(st3)


def test_flipped_byte_costs_one_record_and_is_reported(tmp_path):
    root = tmp_path / "log"
    st = opened(root)
    written = [trial(st, n) for n in range(10)]
    st.flush()
    (name,) = segment_files(root)
    data = bytearray((root / name).read_bytes())
    data[len(data) // 2] ^= 0x10
    (root / name).write_bytes(bytes(data))
    st2 = opened(root)
    got = seqs(st2)
    lost = [s for s in written if s not in got]
    assert len(lost) == 1
    assert len(store_events(st2, record.ST_CORRUPT)) == 1
    assert st2.stored_seq > written[-1]


def test_empty_segment_from_a_cut_is_removed(tmp_path):
    root = tmp_path / "log"
    st = opened(root)
    trial(st)
    st.flush()
    (root / "L0000FFFF").write_bytes(b"")
    st2 = opened(root)
    assert "L0000FFFF" not in segment_files(root)
    assert len(store_events(st2, record.ST_EMPTY)) == 1


def test_bad_records_are_refused_before_a_seq_is_used(tmp_path):
    st = opened(tmp_path / "log")
    before = st.next_seq
    with pytest.raises(record.RecordError):
        st.append(record.TYPE_TRIAL, 1, None, (3, 5, 1, 0, 0, 1, 1, 1, 1))
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
    ],
)
def test_littlefs_fault_cases(mp_faults, name):
    assert "ok " + name in mp_faults, [line for line in mp_faults if name in line]


def test_records_and_count_are_exact_at_every_seq_across_segments(tmp_path):
    # Sync asks "records >= N", "records in [N, M]" and "how many": every N, including
    # the first and last record of each segment, must give exactly the stored records.
    st = opened(tmp_path, buf_bytes=256, segment_bytes=300)
    for n in range(40):
        trial(st, n)
        if n % 3 == 2:
            st.flush()
    st.flush()
    stored = seqs(st)
    assert len(os.listdir(tmp_path)) > 5  # several segments
    assert stored == list(range(stored[0], stored[-1] + 1))
    for n in range(0, stored[-1] + 2):
        assert seqs(st, n) == [s for s in stored if s >= n]
        assert [seq for seq, _ in st.records(n, n + 1)] == [s for s in stored if n <= s <= n + 1]
        assert st.count(n, n) == (1 if n in stored else 0)
        assert st.count(1, n) == len([s for s in stored if s <= n])


def test_a_failed_lease_write_never_lets_a_seq_be_reused(tmp_path, monkeypatch):
    st = opened(tmp_path)
    failing = []

    def flaky_open(path, mode="r"):
        if failing and path.endswith("state.tmp"):
            failing.pop()
            raise OSError(5)
        return open(path, mode)

    monkeypatch.setattr(store, "open", flaky_open, raising=False)
    handed_out = []
    with pytest.raises(store.StoreError):
        while True:  # up to the lease boundary, where the state write fails once
            if st.next_seq == st._lease:
                failing.append(1)
            handed_out.append(trial(st, len(handed_out)))
    handed_out += [trial(st, n) for n in range(3)]  # the lease write is retried here
    # Power is cut with those in RAM; the next boot must not hand any of them out again.
    again = opened(tmp_path)
    assert again.next_seq > max(handed_out)


def test_open_again_keeps_the_batch_and_its_seqs(tmp_path):
    # After a storage error the app remounts and opens the same Store again.
    st = opened(tmp_path, buf_bytes=256, segment_bytes=256)
    batch = [trial(st, n) for n in range(7)]  # too big for the open segment: a new one
    st.open(5000, None)  # the lease moves next_seq far past the batch
    assert st.stored_seq > max(batch)
    assert [seq for seq, _ in st.records(batch[0], batch[-1])] == batch
    assert st.count(batch[0], batch[-1]) == 7
    assert [p.name for p in sorted(tmp_path.iterdir())][:2] == ["L00000001", "L%08X" % batch[0]]


def test_a_segment_holding_only_bad_bytes_is_kept_and_reported(tmp_path):
    st = opened(tmp_path)
    trial(st)
    st.flush()
    (segment,) = [p for p in tmp_path.iterdir() if p.name.startswith("L")]
    data = bytearray(segment.read_bytes())
    offset = 0
    while offset < len(data):  # damage every record
        length = data[offset + 2]
        data[offset + 5] ^= 0x40
        offset += length
    segment.write_bytes(bytes(data))
    again = opened(tmp_path)
    assert segment.exists()  # never deleted: the bytes may still be recovered by a host
    # Bad bytes with no good record after them read as a torn tail.
    assert store_events(again, record.ST_TORN)


def test_reclaim_keeps_the_newest_segment_so_seqs_never_restart(tmp_path, monkeypatch):
    st = opened(tmp_path, buf_bytes=256, segment_bytes=300)
    for n in range(20):
        trial(st, n)
        st.flush()
    st.ack(st.stored_seq)
    last = st.stored_seq
    monkeypatch.setattr(st, "_free", lambda: 0)  # the disk is full: reclaim all it may
    assert not st.room_for_session()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("L")]
    monkeypatch.undo()
    for name in ("state", "state.tmp"):  # and the state file is lost too
        if (tmp_path / name).exists():
            (tmp_path / name).unlink()
    assert opened(tmp_path).next_seq > last

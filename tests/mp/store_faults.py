# Store fault cases on the real LittleFS of the micropython unix port: a full disk, a bit
# flip inside a data block, I/O errors from the block device and the documented recovery,
# a mount that fails, an abandoned mount that writes late, a reader across a reclaim.
# Prints "ok NAME" or "FAIL NAME: why" per case, then "done".
import gc
import sys

import vfs
from fake_flash import FakeFlash

from core import record, store
from drivers import flashfs

MNT = "/sf"
ROOT = MNT + "/log"


def fresh(blocks, block_size=512):
    flash = FakeFlash(block_size, blocks)
    vfs.VfsLfs2.mkfs(flash)
    fence = flashfs.Fence(flash)
    flashfs.mount(fence, MNT)
    return flash, fence


def trial(st, t, n):
    return st.append(
        record.TYPE_TRIAL, t, None, ("thenar", "L", n % 16, "none", 0, 3000 + n, 3100, 500, 8000)
    )


def start(st, t, n):
    case = ("P-%04d" % n, 50, "M", [], [], [], [], None, None, None, None, None, None)
    return st.append(record.TYPE_SESSION, t, None, case)


def events(st, detail):
    found = []
    for _, view in st.records():
        rec = record.decode(view)
        if rec["type"] == "event" and rec["code"] == record.EV_STORE and rec["detail"] == detail:
            found.append(rec)
    return found


def seqs(st, from_seq=1):
    return [seq for seq, _ in st.records(from_seq)]


def check(cond, why):
    if not cond:
        raise AssertionError(why)


def recover(fence, st, t):
    # The documented recovery after a StoreError: remount, open() the same Store again.
    flashfs.mount(fence, MNT)
    st.open(t)
    gc.collect()  # whatever the old mount left open is finalised now, not later


def reboot(st, flash, **kw):
    st.close()
    fence = flashfs.Fence(FakeFlash(flash.block_size, flash.block_count, flash.image()))
    flashfs.mount(fence, MNT)
    again = store.Store(ROOT, **kw)
    again.open(99_000)
    return again


# A 16 KB disk of 512-byte blocks: one journal directory (two metadata blocks) is all it
# can spare; metadata splits of half-KB blocks take whole blocks now and then too.
SMALL = {
    "buf_bytes": 512,
    "segment_bytes": 512,
    "session_bytes": 1024,
    "reserve_bytes": 2048,
    "journal_slots": 8,
}


def case_full_disk():
    fresh(32)
    st = store.Store(ROOT, **SMALL)
    st.open(0)
    t = 0
    sessions = 0
    refused = None
    while sessions < 100:
        t += 1000
        try:
            start(st, t, sessions)
        except store.StoreFull as err:
            refused = err
            break
        for n in range(6):
            trial(st, t + n, n)
            st.flush()
        sessions += 1
    check(refused is not None, "a full disk never refused a session")
    check(str(refused) == store.FULL_MESSAGE, "message: %r" % str(refused))
    check(isinstance(refused, store.StoreError), "StoreFull is a StoreError")
    check(not st.room_for_session(), "room_for_session() says yes on a full disk")
    before = st.stats()
    check(before["unacked"] == before["records"], "all records unacked: %r" % before)
    seqs_before = seqs(st)
    check(len(seqs_before) == before["records"], "records() misses some")
    # Refused: nothing deleted, nothing half-added.
    check(st.next_seq == before["next_seq"], "a refused session used a seq")
    # The host acknowledges half; reclaim makes room for a new session.
    half = seqs_before[len(seqs_before) // 2]
    st.ack(half)
    t += 1000
    seq = start(st, t, 999)
    stored = st.flush()
    check(stored == seq, "new session stored")
    after = st.stats()
    check(after["records"] < before["records"] + 1, "nothing was reclaimed: %r" % after)
    seqs_after = seqs(st)
    for s in seqs_before:
        if s > half:
            check(s in seqs_after, "unacked record %d was deleted" % s)
    check(seqs_after[0] > seqs_before[0], "oldest acked segment kept although space needed")
    st.close()
    vfs.umount(MNT)


def case_bit_flip():
    flash, _ = fresh(64)
    # Straight to a segment: the journal's stale slot copies would be a second copy.
    kw = {"buf_bytes": 512, "segment_bytes": 4096, "journal_slots": 0}
    st = store.Store(ROOT, **kw)
    st.open(0)
    marks = []
    for n in range(20):
        marks.append(trial(st, 1000 + n, n))
    st.flush()
    st.close()
    vfs.umount(MNT)
    # Find the 10th trial's bytes in the raw flash and flip one bit in its payload.
    target = marks[9]
    buf = bytearray(64)
    length = record.encode(buf, 0, record.TYPE_TRIAL, target, st.boot, 1009, None,
                           ("thenar", "L", 9, "none", 0, 3009, 3100, 500, 8000))  # fmt: skip
    needle = bytes(buf[:length])
    image = flash.image()
    at = image.find(needle)
    check(at >= 0, "record not found raw on flash")
    check(image.find(needle, at + 1) < 0, "record found twice on flash")
    flash.flip_bit(at + 20, 3)
    flashfs.mount(flashfs.Fence(flash), MNT)
    st = store.Store(ROOT, **kw)
    problems = st.open(5000)
    check(problems >= 1, "flip not reported at mount")
    got = seqs(st)
    check(target not in got, "flipped record returned as good")
    for s in marks:
        if s != target:
            check(s in got, "good record %d lost next to the flip" % s)
    bad = events(st, record.ST_CORRUPT)
    check(len(bad) == 1 and bad[0]["b"] == length, "corrupt event: %r" % (bad,))
    # The store goes on: new records land in a fresh segment and read back.
    seq = trial(st, 6000, 1)
    check(st.flush() == seq, "append after the flip")
    check(seqs(st, seq) == [seq], "new record readable")
    st.close()
    vfs.umount(MNT)


def io_error(mode):
    flash, fence = fresh(64)
    st = store.Store(ROOT, buf_bytes=512)
    st.open(0)
    first = trial(st, 1, 1)
    st.flush()
    second = trial(st, 2, 2)
    flash.fail(mode)
    try:
        st.flush()
        raise AssertionError("flush succeeded on a failing device")
    except store.StoreError as err:
        check(str(err).startswith("storage error 5"), "message: %r" % str(err))
    check(st.stored_seq == first, "stored_seq moved on a failed flush")
    flash.fail(None)
    check(st.stats()["buffered"] >= 2, "batch dropped after a failed flush")
    try:
        st.flush()
        raise AssertionError("flush before the recovery")
    except store.StoreError:
        pass
    recover(fence, st, 10)
    check(st.stored_seq >= second, "the recovery did not store the batch")
    got = seqs(st)
    check(first in got and second in got, "records after the recovery: %r" % got)
    check(len(events(st, record.ST_IO)) == 1, "I/O error not reported as an event")
    seq = trial(st, 11, 3)
    check(st.flush() == seq, "store unusable after the recovery")
    again = reboot(st, flash)
    got = seqs(again)
    check(first in got and second in got and seq in got, "lost after a reboot: %r" % got)
    again.close()
    vfs.umount(MNT)


def case_io_error_return():
    io_error("return")


def case_io_error_raise():
    io_error("raise")  # a board's driver raises: the fence returns -EIO to LittleFS


def case_mount_failure_never_formats():
    flash, _ = fresh(64)
    st = store.Store(ROOT, buf_bytes=512)
    st.open(0)
    trial(st, 1, 1)
    st.flush()
    st.close()
    vfs.umount(MNT)
    for i in range(2 * flash.block_size):  # both superblock copies
        flash.data[i] = 0
    ops = flash.ops
    image = flash.image()
    try:
        flashfs.mount(flashfs.Fence(flash), MNT)
        raise AssertionError("a broken filesystem mounted")
    except OSError:
        pass
    # The store on a path without its filesystem: a clear error, nothing written.
    st = store.Store("/no-such-mount/log")
    try:
        st.open(0)
        raise AssertionError("store opened without a filesystem")
    except store.StoreError as err:
        check(str(err).startswith("storage error"), "message: %r" % str(err))
    check(flash.ops == ops and flash.image() == image, "flash was written after a bad mount")
    st.close()


def case_fence_refuses_an_abandoned_mount():
    # A file left open on a mount that is then replaced: its late close (what a finaliser
    # does) must not touch the flash the new mount uses.
    flash, fence = fresh(64)
    f = open(MNT + "/late", "wb")
    f.write(b"x" * 300)
    flashfs.mount(fence, MNT)
    before = flash.image()
    ops = flash.ops
    try:
        f.close()
    except OSError:
        pass  # refused: the old mount's commit fails, the flash stays as it was
    check(flash.ops == ops and flash.image() == before, "an abandoned mount wrote")
    f = open(MNT + "/late", "rb")  # created at open(); its data never committed
    check(f.read() == b"", "the abandoned file's data appeared on the new mount")
    f.close()
    vfs.umount(MNT)


def case_reader_across_reclaim():
    # The host reads "all records" while new sessions reclaim acknowledged segments: it
    # gets every record or an error, never a run with a hole.
    fresh(24)
    st = store.Store(ROOT, **SMALL)
    st.open(0)
    t = 0
    number = 0
    while st.room_for_session():
        t += 1000
        start(st, t, number)
        for n in range(6):
            trial(st, t + n, n)
            st.flush()
        number += 1
    buf = bytearray(244)
    got = []
    used, nxt = st.read_into(buf, 1)
    got.append(record.seq_of(buf, 0))
    st.ack(st.stored_seq)  # another host took everything
    gone = False
    while nxt:
        t += 1000
        if st.room_for_session():  # reclaims acknowledged segments
            start(st, t, number)
            st.flush()
            number += 1
        try:
            used, nxt = st.read_into(buf, nxt)
        except store.RecordsGone:
            gone = True
            break
        off = 0
        while off < used:
            got.append(record.seq_of(buf, off))
            off += buf[off + 2]
    check(gone, "a reclaim under the reader was not reported")
    for i in range(1, len(got)):
        check(got[i] > got[i - 1], "seqs out of order")
    st.close()
    vfs.umount(MNT)


def case_finaliser_after_recovery():
    # A raised device error in each kind of write, the recovery, forced GC, more writes,
    # a reboot: every record flush() called stored is there, once.
    flash, fence = fresh(64)
    st = store.Store(ROOT, buf_bytes=512, journal_slots=3)
    st.open(0)
    stored = []
    t = 0
    for round_ in range(12):
        pending = []
        for n in range(2 + round_ % 3):
            t += 10
            pending.append(trial(st, t, n))
        flash.fail_once(flash.device_ops + round_ % 5, "raise")
        try:
            st.flush()
        except store.StoreError:
            recover(fence, st, t)  # the recovery flushes the batch
        if st.stored_seq >= pending[-1]:
            stored.extend(pending)
        if round_ % 4 == 3:
            try:
                st.ack(stored[-3])
            except store.StoreError:
                recover(fence, st, t)
        gc.collect()
    again = reboot(st, flash, journal_slots=3)
    got = seqs(again)
    check(len(got) == len(set(got)), "a seq twice")
    missing = [s for s in stored if s not in got]
    check(not missing, "stored records lost: %r" % missing)
    check(again.count() == len(got), "count() disagrees with records()")
    again.close()
    vfs.umount(MNT)


def main():
    names = sys.argv[1:] or [n for n in sorted(globals()) if n.startswith("case_")]
    for name in names:
        try:
            globals()[name]()
            print("ok", name)
        except Exception as err:  # report every case, not just the first
            print("FAIL %s: %s %r" % (name, type(err).__name__, err))
            sys.print_exception(err)
            for st in list(store._OPEN.values()):
                st.close()
    print("done")


main()

# Store fault cases on the real LittleFS of the micropython unix port: a full disk, a bit
# flip inside a data block, I/O errors from the block device, a mount that fails.
# Prints "ok NAME" or "FAIL NAME: why" per case, then "done".
import sys

import vfs
from fake_flash import FakeFlash, mount

from core import record, store

MNT = "/sf"
ROOT = MNT + "/log"


def fresh(blocks, block_size=512):
    flash = FakeFlash(block_size, blocks)
    vfs.VfsLfs2.mkfs(flash)
    mount(flash, MNT)
    return flash


def trial(st, t, n):
    return st.append(record.TYPE_TRIAL, t, None, (1, 1, n % 16, 0, 0, 3000 + n, 3100, 500, 8000))


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


def check(cond, why):
    if not cond:
        raise AssertionError(why)


def case_full_disk():
    fresh(24)
    kw = {"buf_bytes": 512, "segment_bytes": 512, "session_bytes": 1024, "reserve_bytes": 2048}
    st = store.Store(ROOT, **kw)
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
    seqs_before = [seq for seq, _ in st.records()]
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
    seqs_after = [s for s, _ in st.records()]
    for s in seqs_before:
        if s > half:
            check(s in seqs_after, "unacked record %d was deleted" % s)
    check(seqs_after[0] > seqs_before[0], "oldest acked segment kept although space needed")
    # A reboot sees the same.
    vfs.umount(MNT)


def case_bit_flip():
    flash = fresh(64)
    st = store.Store(ROOT, buf_bytes=512, segment_bytes=4096)
    st.open(0)
    marks = []
    for n in range(20):
        marks.append(trial(st, 1000 + n, n))
    st.flush()
    vfs.umount(MNT)
    # Find the 10th trial's bytes in the raw flash and flip one bit in its payload.
    target = marks[9]
    needle = None
    buf = bytearray(64)
    length = record.encode(buf, 0, record.TYPE_TRIAL, target, st.boot, 1009, None,
                           (1, 1, 9, 0, 0, 3009, 3100, 500, 8000))  # fmt: skip
    needle = bytes(buf[:length])
    image = flash.image()
    at = image.find(needle)
    check(at >= 0, "record not found raw on flash")
    check(image.find(needle, at + 1) < 0, "record found twice on flash")
    flash.flip_bit(at + 20, 3)
    mount(flash, MNT)
    st = store.Store(ROOT, buf_bytes=512, segment_bytes=4096)
    problems = st.open(5000)
    check(problems >= 1, "flip not reported at mount")
    seqs = [s for s, _ in st.records()]
    check(target not in seqs, "flipped record returned as good")
    for s in marks:
        if s != target:
            check(s in seqs, "good record %d lost next to the flip" % s)
    bad = events(st, record.ST_CORRUPT)
    check(len(bad) == 1 and bad[0]["b"] == length, "corrupt event: %r" % (bad,))
    # The store goes on: new records land in a fresh segment and read back.
    seq = trial(st, 6000, 1)
    check(st.flush() == seq, "append after the flip")
    check([s for s, _ in st.records(seq)] == [seq], "new record readable")
    vfs.umount(MNT)


def case_io_error_return():
    flash = fresh(64)
    st = store.Store(ROOT, buf_bytes=512)
    st.open(0)
    first = trial(st, 1, 1)
    st.flush()
    second = trial(st, 2, 2)
    flash.fail("return")
    try:
        st.flush()
        raise AssertionError("flush succeeded on a failing device")
    except store.StoreError as err:
        check(str(err).startswith("storage error 5"), "message: %r" % str(err))
    check(st.stored_seq == first, "stored_seq moved on a failed flush")
    flash.fail(None)
    check(st.stats()["buffered"] >= 2, "batch dropped after a failed flush")
    stored = st.flush()  # the same LittleFS object: errors returned, state consistent
    check(stored >= second, "retry did not store the batch")
    seqs = [s for s, _ in st.records()]
    check(first in seqs and second in seqs, "records after retry: %r" % seqs)
    check(len(events(st, record.ST_IO)) == 1, "I/O error not reported as an event")
    vfs.umount(MNT)


def case_io_error_raise():
    flash = fresh(64)
    st = store.Store(ROOT, buf_bytes=512)
    st.open(0)
    first = trial(st, 1, 1)
    st.flush()
    trial(st, 2, 2)
    flash.fail("raise")  # like a board driver: the LittleFS object is unusable after this
    try:
        st.flush()
        raise AssertionError("flush succeeded on a failing device")
    except store.StoreError as err:
        check("storage error" in str(err), "message: %r" % str(err))
    flash.fail(None)
    mount(flash, MNT)  # a fresh VfsLfs2 object on the same flash
    st = store.Store(ROOT, buf_bytes=512)
    st.open(10)
    seqs = [s for s, _ in st.records()]
    check(first in seqs, "flushed record lost after an I/O error and remount")
    seq = trial(st, 11, 3)
    check(st.flush() == seq, "store unusable after remount")
    vfs.umount(MNT)


def case_mount_failure_never_formats():
    flash = fresh(64)
    st = store.Store(ROOT, buf_bytes=512)
    st.open(0)
    trial(st, 1, 1)
    st.flush()
    vfs.umount(MNT)
    for i in range(2 * flash.block_size):  # both superblock copies
        flash.data[i] = 0
    ops = flash.ops
    image = flash.image()
    try:
        vfs.VfsLfs2(flash)
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


def main():
    names = sys.argv[1:] or [n for n in sorted(globals()) if n.startswith("case_")]
    for name in names:
        try:
            globals()[name]()
            print("ok", name)
        except Exception as err:  # report every case, not just the first
            print("FAIL %s: %s %r" % (name, type(err).__name__, err))
    print("done")


main()

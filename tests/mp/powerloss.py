# Power-loss sweeps of core.store on the real LittleFS (vfs.VfsLfs2) of the micropython
# unix port. For each workload: a reference run without a cut counts the program/erase
# operations; then the workload is replayed from the same image with power cut at each
# chosen operation (clean, then torn), the image is mounted afresh, the store recovers
# (a second cut may hit that recovery, then it recovers again), and the log is checked:
# - the filesystem mounts, the store opens and reports no corrupt, torn or misordered data
# - the records from before the cut are a gap-free run of what the reference run wrote,
#   byte for byte; everything flushed before the cut is there; only acknowledged records
#   are missing from its front; the acknowledged seq is one the host was told or asked for
# - every record's CRC holds; sequence numbers rise; none handed out before the cut
#   (flushed or not) is used again.
# usage: micropython powerloss.py WORKLOAD [bounded|full]
# prints one line: workload=.. ops=.. cuts=.. second=.. failures=..  (and FAIL lines)
import sys
import time

import vfs
from fake_flash import FakeFlash
from workloads import WORKLOADS, Ctx, TStore, check_after_reboot, read_log, split

from core import record, store
from drivers import flashfs

MNT = "/pl"
ROOT = MNT + "/log"


class Run:
    # One run: image in, the workload (or a recovery) until done or the cut.
    def __init__(self, image, w, cut_at, torn, recovery):
        self.flash = FakeFlash(w.block_size, w.blocks, image)
        if cut_at >= 0:
            self.flash.cut(cut_at, torn)
        self.ctx = Ctx()
        self.st = None
        self.cut = False
        try:
            self.st = TStore(ROOT, **w.kw)
            flashfs.mount(flashfs.Fence(self.flash), MNT)
            self.st.open(self.ctx.tick(), None)
            if not recovery:
                w.body(self.st, self.ctx)
        except Exception:
            # PowerCut, or an error from clean-up code running after it (a finally that
            # closes a file): either way the chip is off.
            if not self.flash.dead:
                raise
            self.cut = True
        self.max_seq = self.st.next_seq - 1 if self.st is not None else 0
        if self.st is not None:
            self.st.close()  # the power is off: the next run is a new boot
        self.ops = self.flash.ops


def base_image(w):
    flash = FakeFlash(w.block_size, w.blocks)
    vfs.VfsLfs2.mkfs(flash)
    flashfs.mount(flashfs.Fence(flash), MNT)
    st = store.Store(ROOT, **w.kw)
    st.open(500, None)
    base = [raw for _, raw in read_log(st)]
    st.close()
    vfs.umount(MNT)
    return flash.image(), base


def reference(w, image, base):
    TStore.journal = []
    run = Run(image, w, -1, False, False)
    journal = TStore.journal
    TStore.journal = None
    ref = list(base)
    for batch in journal:
        ref.extend(split(batch))
    ref_seqs = [record.seq_of(r, 0) for r in ref]
    return run, ref, ref_seqs


def verify(w, image, first, later, ref, ref_seqs):
    # first: the cut workload run; later: recovery runs cut in their turn (maybe none).
    # Mount without a cut and check what survived. Returns None or a failure text.
    def check(st, log):
        return check_run(st, log, first, later, ref, ref_seqs)

    return check_after_reboot(w, image, MNT, (record.ST_EMPTY,), check)


def check_run(st, log, first, later, ref, ref_seqs):
    seqs = [seq for seq, _ in log]
    pre = [(seq, raw) for seq, raw in log if seq <= first.max_seq]
    if pre:
        try:
            a = ref_seqs.index(pre[0][0])
        except ValueError:
            return "record %d is not one the workload wrote" % pre[0][0]
        for i in range(len(pre)):
            if a + i >= len(ref) or ref[a + i] != pre[i][1]:
                return "record %d differs from what was written, or a gap" % pre[i][0]
        k = a + len(pre)
    else:
        a = k = 0
        while a < len(ref) and ref_seqs[a] <= st.acked_seq:
            a += 1
        k = a
    # Missing from the front: acknowledged only. Missing from the end: never flushed.
    for i in range(a):
        if ref_seqs[i] > max(first.ctx.ack_done, 0) and ref_seqs[i] > st.acked_seq:
            return "unacknowledged record %d lost" % ref_seqs[i]
    durable = first.ctx.durable
    for i in range(k, len(ref)):
        if ref_seqs[i] <= durable:
            return "flushed record %d lost (flushed up to %d)" % (ref_seqs[i], durable)
    if not first.ctx.ack_done <= st.acked_seq <= max(first.ctx.ack_tried, first.ctx.ack_done):
        if not (st.acked_seq == 0 and first.ctx.ack_done == 0):
            return "acked %d outside [%d, %d]" % (
                st.acked_seq,
                first.ctx.ack_done,
                first.ctx.ack_tried,
            )
    # Records after the first run come from recoveries, above every seq handed out before.
    high = first.max_seq
    for run in later:
        if run.st is not None and run.st.stored_seq > high and run.st.stored_seq not in seqs:
            return "record %d flushed by the recovery is lost" % run.st.stored_seq
        high = max(high, run.max_seq)
    if st.next_seq <= high:
        return "next seq %d reuses one handed out before (%d)" % (st.next_seq, high)
    return None


def main(argv):
    name = argv[0]
    mode = argv[1] if len(argv) > 1 else "bounded"
    # bounded: up to 300 first cut points per kind, second cuts after every 9th of them.
    # full: every operation, both kinds, and a second cut at every operation of every
    # recovery.
    second_every = 1 if mode == "full" else 9
    w = WORKLOADS[name]
    started = time.ticks_ms()
    image, base = base_image(w)
    ref_run, ref, ref_seqs = reference(w, image, base)
    if ref_run.cut:
        raise SystemExit("reference run was cut")
    if name == "full" and ref_run.ctx.full == 0:
        raise SystemExit("full workload never filled the disk")
    err = verify(w, ref_run.flash.image(), ref_run, [], ref, ref_seqs)
    if err is not None:  # the uncut run must read back exactly what it wrote
        raise SystemExit("uncut run: " + err)
    cuts = 0
    seconds = 0
    failures = 0
    shown = 0
    stride = 1 if mode == "full" else (ref_run.ops + 299) // 300
    for torn in (False, True):
        for k in range(0, ref_run.ops, stride):
            first = Run(image, w, k, torn, False)
            if not first.cut:
                continue
            cuts += 1
            cut_image = first.flash.image()
            err = verify(w, cut_image, first, [], ref, ref_seqs)
            if err is None and k % second_every == 0:
                # A second cut during the recovery that follows, at each of its operations.
                probe = Run(cut_image, w, -1, False, True)
                for j in range(probe.ops):
                    second = Run(cut_image, w, j, torn, True)
                    if not second.cut:
                        continue
                    seconds += 1
                    err = verify(w, second.flash.image(), first, [second], ref, ref_seqs)
                    if err is not None:
                        err = "second cut at %d: %s" % (j, err)
                        break
            if err is not None:
                failures += 1
                if shown < 5:
                    shown += 1
                    print("FAIL %s cut=%d torn=%d: %s" % (name, k, torn, err))
    try:
        vfs.umount(MNT)
    except OSError:
        pass
    print(
        "workload=%s ops=%d records=%d cuts=%d second=%d failures=%d ms=%d"
        % (name, ref_run.ops, len(ref), cuts, seconds, failures,
           time.ticks_diff(time.ticks_ms(), started))
    )  # fmt: skip


main(sys.argv[1:])

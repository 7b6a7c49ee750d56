# Transient-error sweep of core.store on the real LittleFS of the micropython unix port. For
# each workload: a reference run counts the block device calls (reads, programs, erases);
# then the workload is run again with call number k failing once, raised (as a board's
# partition driver does) or returned as -EIO, for each chosen k. Every store call that
# raises StoreError gets the documented recovery: remount through the fence, open() the
# same Store again, then the call is retried; a forced garbage collection follows, so
# whatever the old mount left open is finalised at once. After the workload: a forced GC,
# then a reboot (a fresh mount of the flash image, a new Store), and the checks:
# - the filesystem mounts, the store opens and reports no corrupt, torn or misordered data
# - every record flush() reported stored is there, byte for byte as appended
# - every record on flash is one the run appended, byte for byte: no seq used twice, no
#   stale bytes, every CRC holds; count() agrees with the records
# - the acknowledged seq is one the host was told or asked for; the next seq is above
#   every seq the run handed out
# usage: micropython transient.py WORKLOAD raise|return [bounded|full]
# prints one line: workload=.. mode=.. calls=.. stride=.. runs=.. faults=.. recoveries=..
# failures=..
import gc
import sys
import time

import vfs
from fake_flash import FakeFlash
from workloads import WORKLOADS, Ctx, TStore, check_after_reboot

from core import record, store
from drivers import flashfs

MNT = "/tr"
ROOT = MNT + "/log"
# Fault points per workload and mode: every device call up to FULL_RUNS of them, else one
# call in k (`make powerloss`: the two largest workloads make 20 000 and 38 000 calls, at
# about 0.05 and 0.08 s a run); `make test` takes BOUNDED_RUNS of them.
FULL_RUNS = 5000
BOUNDED_RUNS = 80


class RecoveringCtx(Ctx):
    def __init__(self, fence):
        super().__init__()
        self.fence = fence
        self.st = None
        self.recoveries = 0

    def do(self, fn, *args):
        for _ in range(4):
            try:
                return fn(*args)
            except store.StoreFull:
                raise  # not an I/O error: the workload handles a full store
            except store.StoreError:
                self.recover()
        raise AssertionError("the call failed again after 3 recoveries")

    def recover(self):
        # The documented recovery; the fault may hit it too, then it is done again.
        for _ in range(4):
            self.recoveries += 1
            try:
                flashfs.mount(self.fence, MNT)
                self.st.open(self.tick(), None)
                gc.collect()
                return
            except (OSError, store.StoreError):
                pass
        raise AssertionError("no recovery after 4 tries")


class Run:
    def __init__(self, image, w, fail_at, mode):
        self.flash = FakeFlash(w.block_size, w.blocks, image)
        fence = flashfs.Fence(self.flash)
        self.ctx = RecoveringCtx(fence)
        TStore.appended = {}
        TStore.journal = []
        flashfs.mount(fence, MNT)
        self.st = TStore(ROOT, **w.kw)
        self.ctx.st = self.st
        if fail_at >= 0:
            self.flash.fail_once(self.flash.device_ops + fail_at, mode)
        start = self.flash.device_ops
        self.ctx.do(self.st.open, self.ctx.tick(), None)
        w.body(self.st, self.ctx)
        gc.collect()
        self.calls = self.flash.device_ops - start
        self.appended = TStore.appended
        self.flushed = TStore.journal
        TStore.appended = None
        TStore.journal = None
        self.max_seq = self.st.next_seq - 1
        self.st.close()
        vfs.umount(MNT)
        gc.collect()  # after the umount too: nothing may write late


def verify(w, run):
    def check(st, log):
        return check_run(st, log, run)

    return check_after_reboot(w, run.flash.image(), MNT, (record.ST_IO, record.ST_EMPTY), check)


def check_run(st, log, run):
    for seq, raw in log:
        if seq <= run.max_seq and run.appended.get(seq) != raw:
            return "record %d is not one the run appended, byte for byte" % seq
    present = {}
    for seq, _ in log:
        present[seq] = True
    gone = st.acked_seq
    for batch in run.flushed:
        off = 0
        while off < len(batch):
            n = batch[off + 2]
            seq = record.seq_of(batch, off)
            if seq not in present and seq > gone:
                return "flushed record %d lost" % seq
            off += n
    ctx = run.ctx
    if not ctx.ack_done <= st.acked_seq <= max(ctx.ack_tried, ctx.ack_done):
        return "acked %d outside [%d, %d]" % (st.acked_seq, ctx.ack_done, ctx.ack_tried)
    if st.stored_seq <= run.max_seq:  # the reboot's boot event
        return "the reboot reused seq %d (the run handed out up to %d)" % (
            st.stored_seq,
            run.max_seq,
        )
    return None


def main(argv):
    name = argv[0]
    mode = argv[1]
    full = len(argv) > 2 and argv[2] == "full"
    w = WORKLOADS[name]
    started = time.ticks_ms()
    flash = FakeFlash(w.block_size, w.blocks)
    vfs.VfsLfs2.mkfs(flash)
    image = flash.image()
    ref = Run(image, w, -1, mode)
    err = verify(w, ref)
    if err is not None:
        raise SystemExit("run without a fault: " + err)
    runs_wanted = FULL_RUNS if full else BOUNDED_RUNS
    stride = (ref.calls + runs_wanted - 1) // runs_wanted
    runs = faults = recoveries = failures = 0
    shown = 0
    for k in range(0, ref.calls, stride):
        runs += 1
        try:
            run = Run(image, w, k, mode)
        except Exception as exc:  # a failed recovery or an escaped error is a failure too
            err = "%s %r" % (type(exc).__name__, exc)
            for holder in list(store._OPEN.values()):
                holder.close()
        else:
            faults += run.ctx.recoveries > 0
            recoveries += run.ctx.recoveries
            err = verify(w, run)
        if err is not None:
            failures += 1
            if shown < 5:
                shown += 1
                print("FAIL %s %s call=%d: %s" % (name, mode, k, err))
    print(
        "workload=%s mode=%s calls=%d stride=%d runs=%d faults=%d recoveries=%d failures=%d ms=%d"
        % (name, mode, ref.calls, stride, runs, faults, recoveries, failures,
           time.ticks_diff(time.ticks_ms(), started))
    )  # fmt: skip


main(sys.argv[1:])

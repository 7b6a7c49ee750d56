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
from fake_flash import FakeFlash, mount

from core import dosage, record, store

MNT = "/pl"
ROOT = MNT + "/log"
WALL_S = 1_790_000_000


class Ctx:
    def __init__(self):
        self.t_ms = 1000
        self.durable = 0  # highest seq a flush() returned
        self.ack_done = 0  # highest seq an ack() returned
        self.ack_tried = 0  # highest seq given to ack()
        self.full = 0  # StoreFull seen

    def tick(self):
        self.t_ms += 1500
        return self.t_ms


class TStore(store.Store):
    # The test keeps a copy of every flushed batch: the reference run's full log, even of
    # segments reclaimed later.
    journal = None

    def flush(self):
        batch = bytes(self._mv[: self._fill])
        stored = super().flush()
        if TStore.journal is not None and batch:
            TStore.journal.append(batch)
        return stored


class Workload:
    def __init__(self, name, block_size, blocks, kw, body):
        self.name = name
        self.block_size = block_size
        self.blocks = blocks
        self.kw = kw
        self.body = body


def wall(ctx):
    return None if ctx.t_ms % 3000 < 1500 else WALL_S + ctx.t_ms // 1000


def flush(st, ctx):
    ctx.durable = st.flush()


def ack(st, ctx, seq):
    ctx.ack_tried = max(ctx.ack_tried, seq)
    ctx.ack_done = st.ack(seq)


def session(st, ctx, number, sites=2, trials=3, curves=False):
    t = ctx.tick()
    start = st.append(
        record.TYPE_SESSION,
        t,
        wall(ctx),
        ("P-%04d" % number, 40 + number % 30, "F", ["fibromyalgia"], ["chronic"], [], [],
         "lumbar", 120, None, number, "tolerated", [3, 6, 1, 1]),
    )  # fmt: skip
    flush(st, ctx)
    for site in range(sites):
        for n in range(1, trials + 1):
            seq = st.append(
                record.TYPE_TRIAL,
                ctx.tick(),
                wall(ctx),
                (site, 1 + site % 2, n, 0, 0, 2500 + number + n, 2600, 500, 9000 + n),
            )
            if curves:
                samples = [(i * 37 + n) % 4000 for i in range(40)]
                st.append(record.TYPE_CURVE, ctx.tick(), wall(ctx), (seq, 0, 100, samples))
            flush(st, ctx)  # trial end
        st.append(
            record.TYPE_SITE,
            ctx.tick(),
            wall(ctx),
            (site, 1 + site % 2, trials, trials, 0, 2502, 41, 130, "high"),
        )
    st.append(
        record.TYPE_RECOMMENDATION,
        ctx.tick(),
        wall(ctx),
        ("caution", 16, 5, "superficial", "basic", [], [1, 2], [], dosage.RULESET),
    )
    st.append(record.TYPE_RESPONSE, ctx.tick(), wall(ctx), ("tolerated", start))
    flush(st, ctx)  # session end


def body_sessions(st, ctx):
    for number in range(3):
        session(st, ctx, number)


def body_board(st, ctx):
    for number in range(2):
        session(st, ctx, number, sites=2, trials=3, curves=number == 1)
        ack(st, ctx, ctx.durable)


def body_rotation(st, ctx):
    for number in range(2):
        session(st, ctx, number, sites=2, trials=2, curves=True)


def body_ack(st, ctx):
    # Sync after every session; the small disk makes later sessions reclaim acked segments.
    previous = 0
    for number in range(16):
        session(st, ctx, number, sites=1, trials=3)
        ack(st, ctx, previous)  # the host lags one session: unacked data stays around
        previous = ctx.durable


def body_full(st, ctx):
    # Fill until a session is refused, then the host syncs, and sessions go on.
    number = 0
    while ctx.full < 2 and number < 60:
        try:
            session(st, ctx, number, sites=1, trials=3)
        except store.StoreFull:
            ctx.full += 1
            ack(st, ctx, ctx.durable)
            session(st, ctx, 100 + number, sites=1, trials=2)
        number += 1


WORKLOADS = {
    "sessions": Workload(
        "sessions", 512, 64, {"buf_bytes": 512, "segment_bytes": 1024, "session_bytes": 2048},
        body_sessions,
    ),
    # The board's geometry: 4 KB blocks, VfsLfs2 defaults, the store's default sizes.
    "board": Workload("board", 4096, 32, {}, body_board),
    "rotation": Workload(
        "rotation", 512, 64, {"buf_bytes": 512, "segment_bytes": 512, "session_bytes": 2048},
        body_rotation,
    ),
    "ack": Workload(
        "ack", 512, 20, {"buf_bytes": 512, "segment_bytes": 512, "session_bytes": 1024,
                         "reserve_bytes": 2048},
        body_ack,
    ),
    "full": Workload(
        "full", 512, 24, {"buf_bytes": 512, "segment_bytes": 512, "session_bytes": 1024,
                          "reserve_bytes": 2048},
        body_full,
    ),
}  # fmt: skip


def split(batch):
    out = []
    off = 0
    while off < len(batch):
        n = record.check(batch, off, len(batch))
        if n <= 0:
            raise AssertionError("journal holds a bad record")
        out.append(batch[off : off + n])
        off += n
    return out


def read_log(st):
    log = []
    for seq, view in st.records():
        log.append((seq, bytes(view)))
    return log


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
            mount(self.flash, MNT)
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
        self.ops = self.flash.ops


def base_image(w):
    flash = FakeFlash(w.block_size, w.blocks)
    vfs.VfsLfs2.mkfs(flash)
    mount(flash, MNT)
    st = store.Store(ROOT, **w.kw)
    st.open(500, None)
    base = [raw for _, raw in read_log(st)]
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
    flash = FakeFlash(w.block_size, w.blocks, image)
    try:
        mount(flash, MNT)
    except OSError as err:
        return "mount failed: %r" % (err,)
    st = store.Store(ROOT, **w.kw)
    try:
        st.open(99_000_000, None)
    except store.StoreError as err:
        return "open failed: %r" % (err,)
    log = read_log(st)
    for seq, raw in log:
        try:
            record.decode(raw)
        except record.RecordError as err:
            return "record %d does not decode: %s" % (seq, err)
    bad = [
        e for seq, raw in log
        for e in [record.decode(raw)]
        if e["type"] == "event" and e["code"] == record.EV_STORE and e["detail"] != record.ST_EMPTY
    ]  # fmt: skip
    if bad:
        return "store reported problems: %r" % ([(e["detail"], e["a"], e["b"]) for e in bad],)
    seqs = [seq for seq, _ in log]
    for i in range(1, len(seqs)):
        if seqs[i] <= seqs[i - 1]:
            return "seqs do not rise at %d" % seqs[i]
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

# Store workloads shared by the power-loss sweep (powerloss.py) and the transient-error sweep
# (transient.py): a few clinic days at small scale on a simulated flash. Every store call
# goes through ctx.do(), so a sweep can wrap each one (the transient sweep recovers there).
import vfs
import visit_records
from fake_flash import FakeFlash

from core import record, store
from drivers import flashfs

WALL_S = 1_790_000_000
BLE_PAYLOAD = 244  # MTU 247 - 3: what a sync reads per notification


class Ctx:
    def __init__(self):
        self.t_ms = 1000
        self.durable = 0  # highest seq a flush() returned
        self.ack_done = 0  # highest seq an ack() returned
        self.ack_tried = 0  # highest seq given to ack()
        self.full = 0  # StoreFull seen
        self.read = 0  # records a sync read

    def tick(self):
        self.t_ms += 1500
        return self.t_ms

    def do(self, fn, *args):
        return fn(*args)


class TStore(store.Store):
    # The test keeps a copy of every flushed batch (the reference run's full log, even of
    # segments reclaimed later) and, when asked, of every record appended, by seq.
    journal = None
    appended = None

    def flush(self):
        batch = bytes(self._mv[: self._fill])
        stored = super().flush()
        if TStore.journal is not None and batch:
            TStore.journal.append(batch)
        return stored

    def append(self, rtype, uptime_ms, wall_s, fields):
        seq = super().append(rtype, uptime_ms, wall_s, fields)
        if TStore.appended is not None:
            n = record.size(rtype, wall_s, fields)
            TStore.appended[seq] = bytes(self._mv[self._fill - n : self._fill])
        return seq


class Workload:
    def __init__(self, name, block_size, blocks, kw, body):
        self.name = name
        self.block_size = block_size
        self.blocks = blocks
        self.kw = kw
        self.body = body


def wall(ctx):
    return None if ctx.t_ms % 3000 < 1500 else WALL_S + ctx.t_ms // 1000


def put(st, ctx, rtype, fields):
    return ctx.do(st.append, rtype, ctx.tick(), wall(ctx), fields)


def flush(st, ctx):
    ctx.durable = ctx.do(st.flush)


def ack(st, ctx, seq):
    ctx.ack_tried = max(ctx.ack_tried, seq)
    ctx.ack_done = ctx.do(st.ack, seq)


def sync(st, ctx, upto):
    # The host reads everything from its last ack on in notification-sized chunks, then
    # acknowledges up to upto.
    buf = bytearray(BLE_PAYLOAD)
    nxt = ctx.ack_done + 1
    while nxt:
        used, nxt = ctx.do(st.read_into, buf, nxt)
        ctx.read += used
    ack(st, ctx, upto)


def session(st, ctx, number, sites=2, trials=3, curves=False):
    def put_one(rtype, fields):
        return put(st, ctx, rtype, fields)

    def trial_end():
        flush(st, ctx)

    visit_records.session(put_one, trial_end, number, sites, trials, curves)
    flush(st, ctx)  # session end


def body_sessions(st, ctx):
    for number in range(3):
        session(st, ctx, number)


def body_board(st, ctx):
    for number in range(2):
        session(st, ctx, number, sites=2, trials=3, curves=number == 1)
        sync(st, ctx, ctx.durable)


def body_rotation(st, ctx):
    for number in range(2):
        session(st, ctx, number, sites=2, trials=2, curves=True)


def body_ack(st, ctx):
    # Sync after every session; the small disk makes later sessions reclaim acked segments.
    previous = 0
    for number in range(16):
        session(st, ctx, number, sites=1, trials=3)
        if number % 4 == 3:
            sync(st, ctx, previous)
        else:
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


# The small disks spare one journal directory (16 slots, two metadata blocks); a small ring
# makes the journal wrap into segments several times per workload.
WORKLOADS = {
    "sessions": Workload(
        "sessions", 512, 64, {"buf_bytes": 512, "segment_bytes": 1024, "session_bytes": 2048,
                              "journal_slots": 6},
        body_sessions,
    ),
    # The board's geometry: 4 KB blocks, VfsLfs2 defaults, the store's default sizes.
    "board": Workload("board", 4096, 32, {}, body_board),
    # The board's geometry with a ring that wraps: consolidations into 8 KB segments.
    "wrap": Workload("wrap", 4096, 32, {"journal_slots": 5}, body_sessions),
    "rotation": Workload(
        "rotation", 512, 64, {"buf_bytes": 512, "segment_bytes": 512, "session_bytes": 2048,
                              "journal_slots": 3},
        body_rotation,
    ),
    "ack": Workload(
        "ack", 512, 22, {"buf_bytes": 512, "segment_bytes": 512, "session_bytes": 1024,
                         "reserve_bytes": 2048, "journal_slots": 4},
        body_ack,
    ),
    "full": Workload(
        "full", 512, 32, {"buf_bytes": 512, "segment_bytes": 512, "session_bytes": 1024,
                          "reserve_bytes": 2048, "journal_slots": 8},
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


def check_after_reboot(w, image, mnt, allowed, check):
    """Mounts a copy of image as a reboot would, opens a new Store there and checks what
    every sweep checks: it opens, count() agrees with the records, every record decodes,
    seqs rise, no store problem is reported but those in allowed. Then check(st, log) adds
    the sweep's own checks. Returns a failure text or None."""
    flash = FakeFlash(w.block_size, w.blocks, image)
    try:
        flashfs.mount(flashfs.Fence(flash), mnt)
    except OSError as err:
        return "mount failed: %r" % (err,)
    st = store.Store(mnt + "/log", **w.kw)
    try:
        try:
            st.open(99_000_000, None)
        except store.StoreError as err:
            return "open failed: %r" % (err,)
        log = read_log(st)
        if st.count() != len(log) or st.stats()["records"] != len(log):
            return "count() %d, stats %d, records() %d" % (
                st.count(),
                st.stats()["records"],
                len(log),
            )
        previous = 0
        for seq, raw in log:
            try:
                rec = record.decode(raw)
            except record.RecordError as err:
                return "record %d does not decode: %s" % (seq, err)
            if rec["type"] == "event" and rec["code"] == record.EV_STORE:
                if rec["detail"] not in allowed:
                    return "store reported a problem: %d at %d" % (rec["detail"], rec["a"])
            if seq <= previous:
                return "seqs do not rise at %d" % seq
            previous = seq
        return check(st, log)
    finally:
        st.close()
        vfs.umount(mnt)

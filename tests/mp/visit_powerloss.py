# A visit with the power cut at a flash operation, or with the flash failing once (tests/
# test_visit.py): on the real LittleFS of the unix port, a whole site of three trials through
# core.visit, the store flushing at every trial end.
# - Cuts (no argument): after each cut the flash is mounted afresh and the log read: every
#   trial the visit had reported saved before the cut is there with the values it showed,
#   every CRC holds, nothing stored twice. Every program/erase operation of the visit is
#   cut, clean and torn (a few seconds). The store's own sweeps (tests/mp/powerloss.py) cut
#   every workload everywhere; this one is driven by the visit, as the app drives the store.
#   prints: ops=.. cuts=.. failures=..  (and FAIL lines)
# - Device errors (arguments "errors" N): each run fails one flash access of the visit
#   (every program and erase, and every Nth read: LittleFS reads the whole filesystem to
#   count free blocks), raised as the fence passes it on. The rig then does what the app
#   does: while the visit waits in STORAGE, remount, open the same Store again and call
#   storage_recovered(); a start refused with a StoreError (core.nav shows it) is tried
#   again after that recovery. Before the visit the store is filled until 16 seqs are left
#   of its lease, so the visit's first flush moves the lease: that state write fails in one
#   run. No exception may leave the visit; all three trials end up saved, each stored once,
#   with the values shown; the site is done.
#   prints: accesses=.. writes=.. runs=.. failures=..  (and FAIL lines)
import struct
import sys

import vfs
from fake_flash import FakeFlash
from rig import Clinician, VisitRig, storage_root
from unit import records

from core import atomic, record, store
from core import visit as V
from drivers import flashfs

_BLOCKS = 48
PATIENT = {"code": "P-7", "age": 50, "sex": "M", "conditions": (), "flags": (),
           "contraindications": (), "overrides": (), "sessions": 0, "last_dose": None}  # fmt: skip
SITES = (("lumbar_paraspinal", "R", "local"),)
PEAKS = (2400, 2500, 2450)


def visit(image, cut_at, torn):
    """Runs the visit on a flash made from image, cut at op cut_at (-1: never). Returns the
    flash and what the visit reported saved: [(seq, ppt_kpa_x10)]."""
    flash = FakeFlash(4096, _BLOCKS, image)
    if cut_at >= 0:
        flash.cut(cut_at, torn)
    saved = []
    rig = None
    try:
        root, _ = storage_root("log", flash=flash)
        rig = VisitRig(store_root=root, noise_counts=40, seed=3)
        v = rig.visit
        hand = Clinician(rig)
        v.start(rig.sample(), PATIENT, SITES)
        hand.hold_still()
        for peak in PEAKS:
            if flash.dead:
                break
            result = hand.trial(500, peak)
            if v.saved and not flash.dead:
                saved.append((result["seq"], result["ppt_kpa_x10"]))
    except Exception:  # the power cut, or clean-up after it
        if not flash.dead:
            raise
    if rig is not None:
        rig.store.close()  # the power is off: the next mount is a new boot
    store._OPEN.clear()  # a reboot: no Store holds the directory (one died in its open)
    return flash, saved


def check(flash, saved):
    """The log after a reboot on the flash as the cut left it; None or a failure."""
    again = FakeFlash(4096, _BLOCKS, flash.image())
    root, _ = storage_root("log", flash=again)
    st = store.Store(root)
    st.open(1, None)
    trials = {}
    seqs = []
    for decoded in records(st):  # every CRC checked, every field decoded
        seqs.append(decoded["seq"])
        if decoded["type"] == "trial":
            trials[decoded["seq"]] = decoded["ppt_kpa_x10"]
    st.close()
    vfs.umount("/flash")
    if seqs != sorted(set(seqs)):
        return "seqs out of order or twice: %s" % seqs
    for seq, ppt in saved:
        if trials.get(seq) != ppt:
            return "saved trial %d lost or changed (%s, showed %s)" % (seq, trials.get(seq), ppt)
    return None


def with_error(image, fail_after, writes=None):
    """The visit on a flash made from image whose access fail_after (counted from the
    visit's start; -1: none) fails once; writes: a list to get the numbers of the accesses
    that program or erase. Returns (flash, what the visit showed saved, the visit's last
    state, accesses the visit made, an exception that left the visit)."""
    flash = FakeFlash(4096, _BLOCKS, image)
    fence = flashfs.Fence(flash)
    flashfs.mount(fence, "/flash")
    rig = VisitRig(store_root="/flash/log", noise_counts=40, seed=3)
    st = rig.store
    to_lease_left(st, _LEASE_AHEAD)
    lease = lease_on_flash(st)

    def recover(t_ms):
        flashfs.mount(fence, "/flash")
        st.open(t_ms, None)
        rig.visit.storage_recovered(t_ms)  # nothing to do when no visit waits

    rig.recover = recover
    start = flash.device_ops
    if writes is not None:
        _note_writes(flash, start, writes)
    if fail_after >= 0:
        flash.fail_once(start + fail_after, "raise")
    shown = []
    escaped = None
    try:
        v = rig.visit
        hand = Clinician(rig)
        t_ms = rig.sample()
        try:
            v.start(t_ms, PATIENT, SITES)
        except store.StoreError:  # no visit opened: core.nav shows it, the app recovers
            recover(t_ms)
            if v.state != V.IDLE or v.patient:
                raise AssertionError("a visit half open after a failed start") from None
            v.start(rig.sample(), PATIENT, SITES)
        hand.hold_still()
        for peak in PEAKS:
            result = hand.trial(500, peak)
            hand.hold_still(400)  # a recovery after the trial's flush has its turn
            shown.append((result["seq"], result["ppt_kpa_x10"]))
    except Exception as err:  # noqa: BLE001 (what the sweep looks for)
        escaped = repr(err)
    accesses = flash.device_ops - start
    state = rig.visit.state
    saved = rig.visit.saved
    if escaped is None and fail_after < 0 and lease_on_flash(st) == lease:
        escaped = "the visit did not move the lease"
    st.close()
    store._OPEN.clear()
    vfs.umount("/flash")
    return flash, shown if saved else shown[:-1], state, accesses, escaped


_LEASE_AHEAD = 16  # core.store._LEASE_AHEAD


def lease_on_flash(st):
    return struct.unpack_from("<I", atomic.read(st._root + "/state", bytearray(32)))[0]


def to_lease_left(st, left):
    """Fills the store with flushed trials until `left` seqs are left of its lease."""
    fields = ("thenar", "L", 1, "none", 0, 3000, 3100, 500, 8000)
    while lease_on_flash(st) - st.next_seq > left:
        st.append(record.TYPE_TRIAL, 0, None, fields)
        st.flush()


def _note_writes(flash, start, writes):
    # The access numbers of programs and erases (reads are most accesses: LittleFS reads
    # the whole filesystem to count free blocks).
    program = flash.writeblocks
    control = flash.ioctl

    def writeblocks(block, buf, offset=None):
        writes.append(flash.device_ops - start)
        return program(block, buf, offset)

    def ioctl(op, arg):
        if op == _IOCTL_BLOCK_ERASE:
            writes.append(flash.device_ops - start)
        return control(op, arg)

    flash.writeblocks = writeblocks
    flash.ioctl = ioctl


_IOCTL_BLOCK_ERASE = 6


def errors(read_step):
    """Every program and erase access fails once, in a run of its own, and every
    read_step'th read access."""
    base = FakeFlash(4096, _BLOCKS)
    vfs.VfsLfs2.mkfs(base)  # pyright: ignore[reportArgumentType] (the block protocol)
    image = base.image()
    writes = []
    _flash, ref_shown, ref_state, accesses, escaped = with_error(image, -1, writes)
    if escaped or ref_state != V.SITE_DONE or len(ref_shown) != len(PEAKS):
        print("FAIL the reference visit: %s, state %d, %r" % (escaped, ref_state, ref_shown))
    runs = failures = 0
    for fail_after in range(accesses):
        if fail_after % read_step and fail_after not in writes:
            continue
        flash, shown, state, _n, escaped = with_error(image, fail_after)
        runs += 1
        failure = escaped
        if failure is None and (state != V.SITE_DONE or len(shown) != len(PEAKS)):
            failure = "the visit ended in state %d with %d trials saved" % (state, len(shown))
        if failure is None:
            failure = check(flash, shown)
        if failure is not None:
            failures += 1
            print("FAIL access=%d: %s" % (fail_after, failure))
    print("accesses=%d writes=%d runs=%d failures=%d" % (accesses, len(writes), runs, failures))


def main():
    base = FakeFlash(4096, _BLOCKS)
    vfs.VfsLfs2.mkfs(base)  # pyright: ignore[reportArgumentType] (the block protocol)
    image = base.image()
    ref, ref_saved = visit(image, -1, False)
    ops = ref.ops
    if len(ref_saved) != len(PEAKS):
        print("FAIL the reference visit saved %d trials" % len(ref_saved))
    cuts = failures = 0
    for cut_at in range(ops):
        for torn in (False, True):
            flash, saved = visit(image, cut_at, torn)
            cuts += 1
            failure = check(flash, saved)
            if failure is not None:
                failures += 1
                print("FAIL cut=%d torn=%s: %s" % (cut_at, torn, failure))
    print("ops=%d cuts=%d failures=%d" % (ops, cuts, failures))


if len(sys.argv) > 2 and sys.argv[-2] == "errors":
    errors(int(sys.argv[-1]))
else:
    main()

# A visit with the power cut at a flash operation (tests/test_visit.py): on the real LittleFS
# of the unix port, a whole site of three trials through core.visit, the store flushing at
# every trial end. After each cut the flash is mounted afresh and the log read: every trial
# the visit had reported saved before the cut is there with the values it showed, every CRC
# holds, nothing stored twice. The store's own sweeps (tests/mp/powerloss.py) cut every
# workload everywhere; this one is driven by the visit, as the app drives the store.
# Every program/erase operation of the visit is cut, clean and torn (a few seconds).
# prints: ops=.. cuts=.. failures=..  (and FAIL lines)
import vfs
from fake_flash import FakeFlash
from rig import Clinician, VisitRig, storage_root
from unit import records

from core import store

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


main()

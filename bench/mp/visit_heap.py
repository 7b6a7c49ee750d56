# A whole scripted visit with the firmware (and the simulated hardware) run in place from
# ROMFS images, as a board runs it from flash: two sites, three trials each, scores,
# recommendation, the dose, every record flushed. Run by bench/bench_visit_heap.py at a
# given heapsize; the smallest that completes, less the smallest for the same setup without
# the visit (argument "setup"), is the heap the visit needs, headroom for its garbage and
# fragmentation included (reading the images takes a passing extra of their size on the
# unix port: that is in both, and cancels). Also prints the live
# heap sampled after a collection at every trial and site. The simulated flash is allocated
# first (one contiguous block, no fragmentation charged to the visit) and reported.
import gc
import sys

import fake_hx711  # noqa: F401  (the simulated hardware: a board has none of it)
import vclock  # noqa: F401
from fake_flash import FakeFlash

flash = FakeFlash(4096, 48)
gc.collect()
base = gc.mem_alloc()  # the images, the simulated hardware's code and the flash: not the visit's
if sys.argv[-1] == "setup":  # the same run without the visit: what the bench subtracts
    print("ok", base, 0, len(flash.data))
    sys.exit(0)

import vfs  # noqa: E402
from rig import Clinician, VisitRig, storage_root  # noqa: E402

vfs.VfsLfs2.mkfs(flash)
root, _ = storage_root("log", flash=flash)
rig = VisitRig(store_root=root, noise_counts=40, seed=11)
hand = Clinician(rig)
v = rig.visit
peak = 0


def live():
    global peak
    gc.collect()
    peak = max(peak, gc.mem_alloc() - base)


patient = {"code": "P-0042", "age": 42, "sex": "F", "conditions": ("fibromyalgia",),
           "flags": ("chronic",), "contraindications": (), "overrides": (), "sessions": 0,
           "last_dose": None}  # fmt: skip
live()
v.start(rig.sample(), patient, (("upper_trapezius", "R", "local"), ("thenar", "R", "remote")))
for peaks in ((1500, 1560, 1480), (1310, 1260, 1350)):
    hand.hold_still()
    live()
    for p in peaks:
        hand.trial(500, p)
        live()
    v.next_site(rig.now_ms())
    live()
v.give_dose(rig.now_ms())
live()
ok = v.state == 9 and rig.store.stored_seq >= 18  # DONE, every record flushed
print("ok" if ok else "incomplete", base, peak, len(flash.data))

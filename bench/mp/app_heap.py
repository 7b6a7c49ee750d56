# The virtual unit's clinic visit (simulator/harness/demo.py: the firmware's real main.run and
# app.App, navigation and screens, on the simulator's board) with the firmware, the simulated
# hardware and the script run in place from ROMFS images, as a board runs its firmware from
# flash. Run by bench/bench_app.py at a given heapsize: the smallest that completes, less
# the smallest for the same setup without the visit (argument "setup"), is the heap the unit
# needs, headroom for its garbage and fragmentation included. The simulated flash (a board
# has it outside its heap) is allocated first, as one block, and subtracted.
import gc
import sys

import fake_flash
import unit  # noqa: F401  (the simulated hardware: a board has none of it)

flash = fake_flash.FakeFlash(4096, 48)
gc.collect()
base = gc.mem_alloc()
if sys.argv[-1] == "setup":
    print("ok", base, 0, len(flash.data))
    sys.exit(0)

import demo  # noqa: E402

peak = [0]


def _quiet(_text):
    gc.collect()
    peak[0] = max(peak[0], gc.mem_alloc() - base)


result = demo.run(_quiet, quiet=True, flash=flash)
done = result.board.hand.done and result.shown["dose"] is not None
print("ok" if done else "incomplete", base, peak[0], len(flash.data))

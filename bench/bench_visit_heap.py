"""The heap a whole bedside visit needs, the firmware run in place from a ROMFS image as a
board keeps it in flash (DESIGN 2 and 7): budget 96 KB beyond the image on the 64-bit unix
port (about half on a 32-bit board)."""

from pathlib import Path

from simulator import FAKES_DIR, FIRMWARE_DIR
from simulator.runtime import romfs_image, run_from_romfs

BUDGET_BYTES = 96 * 1024
SCRIPT = (Path(__file__).resolve().parent / "mp" / "visit_heap.py").read_text()


IMAGES = (FIRMWARE_DIR, FAKES_DIR)


def attempt(heap_kb, part="visit", script=SCRIPT, images=IMAGES):
    """The numbers a script printed after "ok" in heap_kb of heap, or None if it failed."""
    proc = run_from_romfs(script, images, heapsize="%dK" % heap_kb, args=[part])
    words = proc.stdout.split()
    if proc.returncode != 0 or not words or words[0] != "ok":
        return None
    return [int(w) for w in words[1:]]


def smallest_heap_kb(part, low_kb=128, high_kb=1024, step_kb=2, script=SCRIPT, images=IMAGES):
    """The smallest heapsize (step_kb steps) in which the part completes, and its numbers."""
    best = attempt(high_kb, part, script, images)
    if best is None:
        raise RuntimeError("the %s does not complete in %d KB" % (part, high_kb))
    while high_kb - low_kb > step_kb:
        mid = (low_kb + high_kb) // 2 // step_kb * step_kb
        got = attempt(mid, part, script, images)
        if got is None:
            low_kb = mid
        else:
            high_kb, best = mid, got
    return high_kb, best


def heap_rows(what, script=SCRIPT, images=IMAGES, sampled="sampled at every trial and site"):
    """The two heap rows of a scripted run: the smallest heap it completes in beyond the
    same setup without it (images and flash), and its live peak after a collection."""
    heap_kb, (_base, live_peak, flash_bytes) = smallest_heap_kb("visit", script=script,
                                                                 images=images)  # fmt: skip
    setup_kb, _ = smallest_heap_kb("setup", script=script, images=images)
    image_bytes = sum(romfs_image(d).stat().st_size for d in images)
    needed = (heap_kb - setup_kb) * 1024
    return [
        {
            "what": "%s, smallest heap beyond images and flash (64-bit unix)" % what,
            "measured": needed,
            "unit": "B",
            "budget": "<= %d B" % BUDGET_BYTES,
            "baseline": "%d KB less %d KB without the visit (images %d B, flash %d B)"
            % (heap_kb, setup_kb, image_bytes, flash_bytes),
            "ok": needed <= BUDGET_BYTES,
        },
        {
            "what": "%s, live heap peak after a collection (64-bit unix)" % what,
            "measured": live_peak,
            "unit": "B",
            "budget": "<= %d B" % BUDGET_BYTES,
            "baseline": sampled,
            "ok": live_peak <= BUDGET_BYTES,
        },
    ]


def rows():
    return heap_rows("whole visit")

"""The bedside app on the MicroPython unix port: what its own sampling task allocates and
takes per HX711 sample (app.App._sampling, on the simulator's board), and the heap a whole
clinic visit needs with the app, the UI and navigation running and the firmware run in place
from a ROMFS image (DESIGN 2 and 7: budget 96 KB beyond the images on the 64-bit port)."""

from pathlib import Path

from simulator import FAKES_DIR, FIRMWARE_DIR, HARNESS_DIR
from simulator.runtime import romfs_image, run_from_romfs, run_micropython

BENCH_DIR = Path(__file__).resolve().parent
BUDGET_BYTES = 96 * 1024
PERIOD_US = 12500
SCRIPT = (BENCH_DIR / "mp" / "app_heap.py").read_text()
IMAGES = (FIRMWARE_DIR, FAKES_DIR, HARNESS_DIR)


def attempt(heap_kb, part="visit"):
    proc = run_from_romfs(SCRIPT, IMAGES, heapsize="%dK" % heap_kb, args=[part])
    words = proc.stdout.split()
    if proc.returncode != 0 or not words or words[0] != "ok":
        return None
    return [int(w) for w in words[1:]]


def smallest_heap_kb(part, low_kb=128, high_kb=1024, step_kb=2):
    """The smallest heapsize (step_kb steps) in which the part completes, and its numbers."""
    best = attempt(high_kb, part)
    if best is None:
        raise RuntimeError("the app's %s does not complete in %d KB" % (part, high_kb))
    while high_kb - low_kb > step_kb:
        mid = (low_kb + high_kb) // 2 // step_kb * step_kb
        got = attempt(mid, part)
        if got is None:
            low_kb = mid
        else:
            high_kb, best = mid, got
    return high_kb, best


def rows():
    proc = run_micropython(script=BENCH_DIR / "mp" / "app_sampling.py", heapsize="1M")
    if proc.returncode != 0:
        raise RuntimeError("app sampling bench failed: " + proc.stdout + proc.stderr)
    allocated, us, samples, state, cue = (int(w) for w in proc.stdout.split())
    if state != 5 or cue == 0:  # core.visit.RAMP, a live cue: the busiest steady state
        raise RuntimeError("app sampling bench: the trial was not ramping: %r" % proc.stdout)
    heap_kb, (_base, live_peak, flash_bytes) = smallest_heap_kb("visit")
    setup_kb, _ = smallest_heap_kb("setup")
    images = sum(romfs_image(d).stat().st_size for d in IMAGES)
    needed = (heap_kb - setup_kb) * 1024
    return [
        {
            "what": "heap per sample by the app's sampling task, ramping (%d samples)" % samples,
            "measured": allocated / samples,
            "unit": "B",
            "budget": "0 B",
            "baseline": "%d B in all" % allocated,
            "ok": allocated == 0,
        },
        {
            "what": "time per sample by the app's task (asyncio, poll, visit, simulated chip)",
            "measured": us / samples,
            "unit": "us",
            "budget": "<= %d us (1 %% of 12.5 ms)" % (PERIOD_US // 100),
            "baseline": "-",
            "ok": us / samples <= PERIOD_US // 100,
        },
        {
            "what": "clinic visit with app, UI and navigation, smallest heap beyond images",
            "measured": needed,
            "unit": "B",
            "budget": "<= %d B" % BUDGET_BYTES,
            "baseline": "%d KB less %d KB without the visit (images %d B, flash %d B)"
            % (heap_kb, setup_kb, images, flash_bytes),
            "ok": needed <= BUDGET_BYTES,
        },
        {
            "what": "clinic visit with app, UI and navigation, live heap peak (64-bit unix)",
            "measured": live_peak,
            "unit": "B",
            "budget": "<= %d B" % BUDGET_BYTES,
            "baseline": "sampled at every line of the story",
            "ok": live_peak <= BUDGET_BYTES,
        },
    ]

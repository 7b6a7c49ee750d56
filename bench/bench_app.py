"""The bedside app on the MicroPython unix port: what its own sampling task allocates and
takes per HX711 sample (app.App._sampling, on the simulator's board), and the heap a whole
clinic visit needs with the app, the UI and navigation running and the firmware run in place
from a ROMFS image (DESIGN 2 and 7: budget 96 KB beyond the images on the 64-bit port)."""

from pathlib import Path

from bench.bench_visit_heap import BUDGET_BYTES, heap_rows
from simulator import FAKES_DIR, FIRMWARE_DIR, HARNESS_DIR
from simulator.runtime import run_from_romfs, run_micropython

BENCH_DIR = Path(__file__).resolve().parent
PERIOD_US = 12500
SCRIPT = (BENCH_DIR / "mp" / "app_heap.py").read_text()
SCRIPT_BLE = (BENCH_DIR / "mp" / "ble_heap.py").read_text()
IMAGES = (FIRMWARE_DIR, FAKES_DIR, HARNESS_DIR)


def rows():
    proc = run_micropython(script=BENCH_DIR / "mp" / "app_sampling.py", heapsize="1M")
    if proc.returncode != 0:
        raise RuntimeError("app sampling bench failed: " + proc.stdout + proc.stderr)
    allocated, us, samples, state, cue = (int(w) for w in proc.stdout.split())
    if state != 5 or cue == 0:  # core.visit.RAMP, a live cue: the busiest steady state
        raise RuntimeError("app sampling bench: the trial was not ramping: %r" % proc.stdout)
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
    ] + _with_ble(
        heap_rows("clinic visit with app and UI", SCRIPT, IMAGES, "sampled at each line told")
    )


def _with_ble(rows):
    return rows + ble_rows(rows[0]["measured"])


def ble_rows(app_heap_bytes):
    proc = run_from_romfs(SCRIPT_BLE, (FIRMWARE_DIR,), heapsize="1M")
    if proc.returncode != 0:
        raise RuntimeError("BLE heap bench failed: " + proc.stdout + proc.stderr)
    ble = int(proc.stdout)
    return [
        {
            "what": "BLE sync server on top: its imports and buffers (64-bit unix)",
            "measured": ble,
            "unit": "B",
            "budget": "-",
            "baseline": "ble.py, core.sync, core.bonds, SyncServer()",
            "ok": None,
        },
        {
            "what": "clinic visit with app, UI and BLE: the two rows above added",
            "measured": app_heap_bytes + ble,
            "unit": "B",
            "budget": "<= %d B" % BUDGET_BYTES,
            "baseline": "a board runs it in about half (32-bit objects)",
            "ok": app_heap_bytes + ble <= BUDGET_BYTES,
        },
    ]

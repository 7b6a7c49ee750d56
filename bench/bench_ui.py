"""The screens on the MicroPython unix port: time and heap per full-screen redraw, the cost of
the two ways to draw text, and the bytecode the UI modules add.

Budgets: the live measurement screen redraws about 10 times a second on the board, beside an
I2C transfer of the 1 KB frame (about 25 ms at 400 kHz). Assuming the ESP32-S3 runs this
bytecode about 20 times slower than the unix port on a desktop CPU (an assumption, not a
measurement), a live redraw of <= 1 ms here is about 20 ms there. Paged screens redraw on a
button press only, laying out every page again: <= 5 ms here (about 100 ms there) still
answers a press at once. Heap: what one redraw allocates is garbage the collector sweeps
later, while sampling runs; a live redraw stays under 2 KB on this 64-bit port (about half
on a 32-bit board).
"""

import json
import tempfile
from pathlib import Path

from simulator.runtime import compile_firmware, run_micropython
from simulator.samples import RECOMMENDATION

BENCH_DIR = Path(__file__).resolve().parent
LIVE_BUDGET_MS = 1.0
PAGED_BUDGET_MS = 5.0
LIVE_HEAP_BUDGET = 2048
UI_MODULES = ("core/ui.py", "core/draw.py", "core/font.py")
LOAD = (
    "import gc\ngc.collect()\nbefore = gc.mem_alloc()\nfrom core import ui\ngc.collect()\n"
    "print(gc.mem_alloc() - before)\n"
)


def rows():
    stdin = json.dumps(RECOMMENDATION)
    proc = run_micropython(script=BENCH_DIR / "mp" / "ui_redraw.py", stdin=stdin, heapsize="256K")
    if proc.returncode != 0:
        raise RuntimeError("ui bench failed on micropython: " + proc.stderr.strip())
    mp = json.loads(proc.stdout)
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {p.relative_to(Path(tmp)).as_posix(): n for p, n in _sizes(tmp)}
    ui_bytes = sum(sizes[name] for name in UI_MODULES)
    load = run_micropython(code=LOAD, heapsize="1M")
    out = []
    for name, what, budget in (
        ("measurement", "live measurement screen", LIVE_BUDGET_MS),
        ("recommendation", "recommendation, dose page", PAGED_BUDGET_MS),
        ("warnings_page", "recommendation, a text page", PAGED_BUDGET_MS),
    ):
        row = mp[name]
        out.append(
            {
                "what": "redraw: %s (unix port)" % what,
                "measured": row["ms"],
                "unit": "ms",
                "budget": "<= %.0f ms" % budget,
                "baseline": "%d B allocated" % row["bytes"],
                "ok": row["ms"] <= budget,
            }
        )
    out.append(
        {
            "what": "heap allocated per live measurement redraw",
            "measured": mp["measurement"]["bytes"],
            "unit": "B",
            "budget": "<= %d B" % LIVE_HEAP_BUDGET,
            "baseline": "dose page %d B" % mp["recommendation"]["bytes"],
            "ok": mp["measurement"]["bytes"] <= LIVE_HEAP_BUDGET,
        }
    )
    out.append(
        {
            "what": "8 rows of text, glyphs blitted (core.draw)",
            "measured": mp["text_blit"]["ms"],
            "unit": "ms",
            "budget": "-",
            "baseline": "fill_rect %.3f ms; C text %.3f ms"
            % (mp["text_fill_rect"]["ms"], mp["text_builtin"]["ms"]),
            "ok": None,
        }
    )
    out.append(
        {
            "what": "UI bytecode: ui, draw, font (mpy-cross)",
            "measured": ui_bytes,
            "unit": "B",
            "budget": "-",
            "baseline": "ui %d, draw %d, font %d"
            % (sizes["core/ui.py"], sizes["core/draw.py"], sizes["core/font.py"]),
            "ok": None,
        }
    )
    out.append(
        {
            "what": "heap after importing core.ui as .mpy (unix port)",
            "measured": int(load.stdout),
            "unit": "B",
            "budget": "-",
            "baseline": "with its imports",
            "ok": None,
        }
    )
    return out


def _sizes(tmp):
    from simulator import FIRMWARE_DIR

    return [
        (Path(tmp) / src.relative_to(FIRMWARE_DIR), size) for src, size in compile_firmware(tmp)
    ]

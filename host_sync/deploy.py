"""`python -m host_sync deploy --port PORT [--romfs] [--target DIR]`: put this laptop's
firmware on a unit over its USB serial port, then prove the copy (docs/deploy.md).

1. Build, before touching the unit: every firmware module compiled with mpy-cross as the
   board runs it (main.py and boot.py stay source: a board starts them from source); with
   --romfs the modules go into one ROMFS image (mpremote's romfs builder) instead.
2. Copy with mpremote's transport over the REPL: files that differ, each written whole to
   NAME.new and renamed over NAME, so a cut cable leaves each file old or new, never torn;
   with --romfs the image is written to the unit's ROMFS partition (mpremote's romfs
   deploy) and main.py, boot.py and the data files as files. Nothing else on the unit is
   touched: the stored records, the settings and the bonds stay as they are.
3. Check on the unit: the sha256 of every file (and of the image) as written; every module
   imported afresh, from the place just written to (a stale copy found first on the unit's
   module path fails the check); and the versions the imported firmware reports,
   version.FIRMWARE_VERSION and core.dosage.RULESET, equal to this laptop's.

Errors a user can cause (no such port, a unit that does not answer, a copy that fails,
versions that do not match) give one line and exit 1; a wrong command line exits 2.
`main(argv)` is the command; `deploy(...)` the same as a function for tests and tools.
"""

import argparse
import ast
import contextlib
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from host_sync import usb

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "firmware"
ON_UNIT = Path(__file__).resolve().parent / "deploy_on_unit.py"
# A board runs these from source at start-up (it looks for main.py, not main.mpy).
SOURCE_FILES = ("main.py", "boot.py")
# Build files that live beside the firmware but are not modules on the unit: a freezing
# manifest and mip's package list.
NOT_ON_UNIT = ("manifest.py", "package.json")
ROM_DIR = "/rom"
# Port names that are not paths on this computer (Windows, and pyserial's URL handlers).
NOT_PATHS = ("COM", "socket:", "rfc2217:")
DEFAULT_TIMEOUT_S = 10  # for the unit's first answer, and between bytes of any answer
CHUNK_BYTES = 1024  # per write over the REPL (raw-paste mode takes more than 256 at once)
# Hosts the unix port runs on: the virtual unit, which has no soft reset (mpremote's
# `resume`); any other platform is a board, soft-reset before the copy so that the app
# stops and the heap is clear (main.py does not run on a soft reset from the raw REPL).
UNIX_PORT_PLATFORMS = ("linux", "darwin")


class DeployError(Exception):
    """One line for the user: what went wrong and what to do."""


class Build:
    """What goes on the unit: files {unit path relative to the target: bytes}, the ROMFS
    image (bytes, or None), the modules to import as the unit will, and the versions."""

    def __init__(self, files, image, modules, firmware_version, ruleset):
        self.files = files
        self.image = image
        self.modules = modules
        self.firmware_version = firmware_version
        self.ruleset = ruleset


def source_constant(path, name):
    """A module-level string constant read from source, without importing it."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError) as e:
        raise DeployError("cannot read %s: %s" % (path, e)) from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            if any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                if isinstance(node.value.value, str):
                    return node.value.value
    raise DeployError('%s has no %s = "..."' % (path, name))


def mpy_version():
    """The .mpy format version mpy-cross writes (6 for MicroPython 1.19 and later)."""
    from simulator.runtime import mpy_cross_binary

    proc = subprocess.run([mpy_cross_binary(), "--version"], capture_output=True, text=True)
    found = re.search(r"mpy v(\d+)", proc.stdout)
    if found is None:
        raise DeployError("mpy-cross did not say its .mpy version: run `make test` to install it")
    return int(found.group(1))


def _module_name(relative):
    parts = list(Path(relative).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def build(firmware_dir, work_dir, romfs=False):
    """Compile firmware_dir into work_dir; returns the Build. Nothing touches a unit."""
    from mpremote.romfs import make_romfs

    from simulator.runtime import compile_tree

    firmware_dir, work_dir = Path(firmware_dir), Path(work_dir)
    if not (firmware_dir / "core").is_dir():
        raise DeployError("%s is not a firmware directory (it has no core/)" % firmware_dir)
    source = work_dir / "source"
    for path in sorted(firmware_dir.rglob("*")):
        relative = path.relative_to(firmware_dir)
        if (
            not path.is_file()
            or path.suffix not in (".py", ".json")
            or "__pycache__" in relative.parts
            or str(relative) in NOT_ON_UNIT
        ):
            continue
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, source / relative)
    compiled = work_dir / "compiled"
    try:
        compile_tree(source, compiled, relative_names=True)
    except subprocess.CalledProcessError as e:
        first = (e.stderr or "").strip().splitlines()
        raise DeployError(
            "mpy-cross cannot compile the firmware: %s" % (first[-1] if first else e)
        ) from None
    for name in SOURCE_FILES:
        (compiled / name).with_suffix(".mpy").unlink(missing_ok=True)
        if (source / name).exists():
            shutil.copyfile(source / name, compiled / name)
    modules = sorted(_module_name(p.relative_to(compiled)) for p in compiled.rglob("*.mpy"))
    image = None
    if romfs:
        in_image = work_dir / "romfs"
        shutil.copytree(compiled, in_image, ignore=shutil.ignore_patterns("*.py", "*.json"))
        with contextlib.redirect_stdout(io.StringIO()):  # the builder lists every file
            image = bytes(make_romfs(str(in_image), mpy_cross=False))
    files = {}
    for path in sorted(compiled.rglob("*")):
        if path.is_file() and not (romfs and path.suffix == ".mpy"):
            files[path.relative_to(compiled).as_posix()] = path.read_bytes()
    return Build(
        files,
        image,
        modules,
        source_constant(firmware_dir / "version.py", "FIRMWARE_VERSION"),
        source_constant(firmware_dir / "core" / "dosage.py", "RULESET"),
    )


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _unit_path(target, relative):
    return target.rstrip("/") + "/" + relative


class _Unit:
    """The connection to one unit: mpremote's SerialTransport in raw REPL, with errors
    turned into DeployError lines."""

    def __init__(self, port, timeout_s):
        self.port = port
        self.timeout_s = timeout_s
        if not usb.is_port_name(port, NOT_PATHS):
            raise DeployError(
                "no serial port %s: plug the unit in, switch it on and give its port "
                "(list them with: mpremote devs)" % port
            )
        try:
            self.transport = usb.open_raw_repl(port, timeout_s)
        except usb.PortBusy:
            raise DeployError(
                "cannot open %s: is another program (a terminal, mpremote, Thonny) using it?"
                % port
            ) from None
        except usb.NoAnswer:
            raise DeployError(
                "the unit on %s does not answer: switch it on while holding its safe-boot "
                "button (so the app does not start), then deploy again" % port
            ) from None

    def exec(self, code, what):
        return self._call(self.transport.exec, code, what)

    def eval(self, expression, what):
        """The value of expression on the unit. Only the last line printed is the value:
        a module may print while it is imported."""
        out = self.exec("print(repr(%s))" % expression, what)
        try:
            return usb.literal_of(out)
        except ValueError:
            raise DeployError("the unit gave no readable answer while %s" % what) from None

    def _call(self, method, argument, what):
        from mpremote.transport import TransportError, TransportExecError

        try:
            return method(argument)
        except TransportExecError as e:
            last = e.error_output.strip().splitlines()
            raise DeployError(
                "%s failed on the unit: %s" % (what, last[-1] if last else e)
            ) from None
        except (TransportError, OSError) as e:  # serial.SerialException is an OSError
            raise DeployError(
                "the connection to the unit was lost while %s (%s): plug it in again and "
                "deploy again; its stored records are not touched" % (what, e)
            ) from None

    def soft_reset(self):
        self._call(
            lambda _: self.transport.enter_raw_repl(
                soft_reset=True, timeout_overall=self.timeout_s
            ),
            None,
            "restarting the unit's interpreter",
        )

    def write_file(self, path, data):
        """The whole file as path.new, then renamed over path."""

        def write(_):
            self.transport.fs_writefile(path + ".new", data, chunk_size=CHUNK_BYTES)

        self._call(write, None, "copying %s" % path)
        self.exec("_deploy_commit(%r)" % path, "copying %s" % path)

    def write_image(self, image_path):
        from mpremote.commands import do_romfs
        from mpremote.main import State

        state = State()
        state.transport = self.transport
        state._auto_soft_reset = False  # the unit is in raw REPL already: no reset here
        args = argparse.Namespace(command=["deploy"], path=str(image_path), partition=0, mpy=True)

        def deploy_image(_):
            try:
                do_romfs(state, args)
            except SystemExit:  # mpremote's own refusal (an image it finds invalid)
                raise DeployError("the unit refused the ROMFS image") from None

        self._call(deploy_image, None, "writing the ROMFS image")

    def close(self):
        usb.close_raw_repl(self.transport)


def deploy(
    port,
    romfs=False,
    target="/",
    firmware_dir=FIRMWARE_DIR,
    timeout_s=DEFAULT_TIMEOUT_S,
    say=print,
):
    """Build, copy and check (the module docstring); returns a summary dict; raises
    DeployError with one line for the user."""
    if not target.startswith("/"):
        raise ValueError("target must be an absolute path on the unit, like / or /flash")
    with tempfile.TemporaryDirectory(prefix="algodose-deploy-") as work:
        built = build(firmware_dir, work, romfs=romfs)
        image_path = Path(work) / "firmware.romfs"
        if built.image is not None:
            image_path.write_bytes(built.image)
        laptop_mpy = mpy_version()
        # mpremote's transport prints what it sees when something fails: keep that off
        # the user's screen; our own lines go through say().
        with contextlib.redirect_stdout(io.StringIO()):
            unit = _Unit(port, timeout_s)
            try:
                return _deploy_to(unit, built, image_path, target, laptop_mpy, say)
            finally:
                unit.close()


def _expected_files(home, module):
    """Where the unit must find a module just deployed to home (a module or a package)."""
    relative = home + "/" + module.replace(".", "/")
    return (relative + ".mpy", relative + "/__init__.mpy")


def _misplaced(module, where, home, romfs):
    """One line: the unit imported module from `where`, not from the copy just written."""
    if where.startswith(ROM_DIR + "/") and not romfs:
        hint = "an older ROMFS image comes first on its module path: deploy with --romfs"
    elif where:
        hint = "remove that file (mpremote rm :%s), then deploy again" % where
    else:
        hint = "a module of that name is built into its MicroPython"
    return "%s comes from %s on the unit, not from the copy just written to %s: %s" % (
        module,
        where or "its firmware",
        home or "/",
        hint,
    )


def mpy_compatible(unit_mpy, laptop_mpy):
    """Whether a unit whose sys.implementation._mpy is unit_mpy (0: too old to say) loads
    bytecode of .mpy version laptop_mpy: the low byte is the version; the bits above it
    matter only for native code, which the firmware has none of."""
    return unit_mpy & 0xFF == laptop_mpy


def image_fits(image_bytes, partition_bytes):
    return 0 < image_bytes <= partition_bytes


def _kb(n):
    return -(-n // 1024)


def _deploy_to(unit, built, image_path, target, laptop_mpy, say):
    platform, unit_mpy = unit.eval(
        "(__import__('sys').platform, getattr(__import__('sys').implementation, '_mpy', 0))",
        "asking the unit what it runs",
    )
    if not mpy_compatible(unit_mpy, laptop_mpy):
        raise DeployError(
            "the unit's MicroPython loads .mpy version %d, this laptop compiles version %d: "
            "install MicroPython 1.29 on the unit (docs/hardware.md)"
            % (unit_mpy & 0xFF, laptop_mpy)
        )
    if platform not in UNIX_PORT_PLATFORMS:
        unit.soft_reset()
    unit.exec(ON_UNIT.read_text(), "preparing the unit")
    written = 0
    if built.image is not None:
        written += _copy_image(unit, built.image, image_path, say)
    paths = [_unit_path(target, name) for name in built.files]
    written += _copy_files(unit, paths, list(built.files.values()), target, say)
    home = ROM_DIR if built.image is not None else target.rstrip("/")
    versions, modules = _check_imports(unit, built, home)
    return {
        "platform": platform,
        "firmware_version": versions[0],
        "ruleset": versions[1],
        "files": len(paths) + (built.image is not None),
        "written": written,
        "modules": modules,
        "romfs": built.image is not None,
        "target": target,
    }


def _copy_image(unit, image, image_path, say):
    """The image into ROMFS partition 0 unless it holds it already; mounted at /rom.
    Returns 1 if written, else 0."""
    size = unit.eval("_deploy_rom_partition()[0]", "reading the ROMFS partition")
    if size == 0:
        raise DeployError(
            "the unit's MicroPython has no ROMFS partition: deploy without --romfs, or "
            "install a MicroPython build with ROMFS (docs/deploy.md)"
        )
    if not image_fits(len(image), size):
        raise DeployError(
            "the firmware image (%d KB) does not fit the unit's ROMFS partition (%d KB): "
            "deploy without --romfs" % (_kb(len(image)), size // 1024)
        )
    wanted = _sha256(image)
    read_back = "_deploy_rom_sha256(%d)" % len(image)
    written = 0
    if unit.eval(read_back, "reading the ROMFS partition") != wanted:
        say("Writing the firmware image (%d KB) to the unit's ROMFS partition" % _kb(len(image)))
        unit.write_image(image_path)
        written = 1
        if unit.eval(read_back, "checking the ROMFS image") != wanted:
            raise DeployError(
                "the ROMFS image on the unit differs from the one sent: deploy again"
            )
    unit.exec("_deploy_mount_rom()", "mounting the ROMFS image")
    return written


def _copy_files(unit, paths, contents, target, say):
    """Each file that differs on the unit, whole; then every file's sha256 checked.
    Returns how many were written."""
    wanted = [_sha256(data) for data in contents]
    found = unit.eval("_deploy_sha256(%r)" % paths, "reading the unit's files")
    changed = [i for i, sha in enumerate(wanted) if found[i] != sha]
    if not changed:
        return 0
    say(
        "Copying %d of %d files (%d KB in all) to %s"
        % (len(changed), len(paths), _kb(sum(len(contents[i]) for i in changed)), target)
    )
    dirs = sorted({p.rsplit("/", 1)[0] for p in paths} - {""})
    unit.exec("_deploy_mkdirs(%r)" % dirs, "making the firmware's directories")
    for i in changed:
        unit.write_file(paths[i], contents[i])
    found = unit.eval("_deploy_sha256(%r)" % paths, "checking the copied files")
    for path, sha, got in zip(paths, wanted, found, strict=True):
        if got != sha:
            raise DeployError("%s on the unit differs from the one sent: deploy again" % path)
    return len(changed)


def _check_imports(unit, built, home):
    """Every module imported afresh on the unit, from home; the versions it reports equal
    this laptop's. Returns ((firmware version, ruleset), modules imported)."""
    imported = unit.eval("_deploy_import(%r)" % built.modules, "importing the firmware")
    for name, _where, error in imported:
        if error is not None:
            hint = ""
            if error.startswith("MemoryError") and built.image is None:
                hint = ": deploy with --romfs (the firmware then runs from flash, not the heap)"
            raise DeployError(
                "the firmware does not import on the unit: %s: %s%s" % (name, error, hint)
            )
    misplaced = [
        _misplaced(name, where, home, built.image is not None)
        for name, where, _error in imported
        if where not in _expected_files(home, name)
    ]
    versions = tuple(unit.eval("_deploy_versions()", "reading the firmware's versions"))
    wanted = (built.firmware_version, built.ruleset)
    if versions != wanted:
        raise DeployError(
            "versions do not match: the unit runs firmware %s, ruleset %s; this laptop "
            "deployed firmware %s, ruleset %s"
            % (versions + wanted)
            + ("" if not misplaced else "; " + misplaced[0])
        )
    if misplaced:
        raise DeployError(misplaced[0])
    return versions, len(imported)


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m host_sync deploy",
        description="Put this laptop's firmware on a unit over USB and check the copy.",
    )
    parser.add_argument(
        "--port", required=True, help="the unit's serial port, e.g. /dev/ttyACM0 or COM3"
    )
    parser.add_argument(
        "--romfs",
        action="store_true",
        help="put the modules in the unit's ROMFS partition (they run from flash)",
    )
    parser.add_argument(
        "--target", default="/", help="the directory on the unit for the files (default /)"
    )
    parser.add_argument("--firmware", default=str(FIRMWARE_DIR), help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    """The command: returns the exit code (0 deployed and checked, 1 failed, 2 usage)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        if not args.target.startswith("/"):
            parser.error("--target must be an absolute path on the unit, like / or /flash")
    except SystemExit as e:  # argparse has printed its usage and the error
        return EXIT_OK if e.code == 0 else EXIT_USAGE
    out = sys.stdout

    def say(line):
        print(line, file=out, flush=True)

    try:
        summary = deploy(
            args.port,
            romfs=args.romfs,
            target=args.target,
            firmware_dir=args.firmware,
            timeout_s=args.timeout,
            say=say,
        )
    except DeployError as e:
        print("deploy: %s" % e, file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("deploy: stopped; the unit may hold a partial copy: deploy again", file=sys.stderr)
        return EXIT_FAILED
    say(
        "Deployed firmware %s (ruleset %s) to %s%s: %d files checked, %d written, %d modules "
        "import."
        % (
            summary["firmware_version"],
            summary["ruleset"],
            args.port,
            " as a ROMFS image" if summary["romfs"] else " in " + summary["target"],
            summary["files"],
            summary["written"],
            summary["modules"],
        )
    )
    if summary["platform"] not in UNIX_PORT_PLATFORMS:
        say("Switch the unit off and on again to start the new firmware.")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())

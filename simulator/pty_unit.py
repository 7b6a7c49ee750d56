"""The virtual unit's USB serial port: the micropython unix port behind socat on a pty, so
mpremote, `host_sync deploy` and the serial pull talk to it as to a board's USB REPL.

    with PtyUnit(tmp_path / "unit") as unit:
        unit.mpremote("exec", "print(1)")        # mpremote connect PORT resume exec ...
        with unit.transport() as t:              # or mpremote's transport, in raw REPL
            t.exec("import os")

The unit's filesystem is the directory `unit.flash_dir`, mounted at "/" on the unit (what a
board's LittleFS is), so a deploy to "/" lands there and the unit imports from it; its
ROMFS partition is the file `unit.rom_file` (simulator/pty_boot.py sets both up). The unix
port has no soft reset: always connect with `resume` (transport() does). A Ctrl-C from the
host interrupts a program the unit runs, as on a board. `cut()` pulls the
cable (the pty and the interpreter vanish, mid-transfer if one is running; the files stay)
and `restart()` plugs it in again on the same port path and the same files.
"""

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from simulator import PACKAGE_DIR
from simulator.runtime import micropython_binary, mpremote_binary

BOOT_SCRIPT = PACKAGE_DIR / "pty_boot.py"
DEFAULT_HEAPSIZE = "1M"  # the ROM partition sits in the heap on the unix port (see pty_boot)
DEFAULT_ROM_BYTES = 256 * 1024
ROM_BLOCK_BYTES = 4096  # a partition is whole erase blocks (pty_boot's _ROM_BLOCK_BYTES)
START_TIMEOUT_S = 15
STOP_TIMEOUT_S = 5
# socat reads its address arguments itself (",", ":", "!" and spaces are syntax there): the
# launcher path it executes must be plain.
_PLAIN_PATH = re.compile(r"^[A-Za-z0-9_./+-]+$")


class PtyError(RuntimeError):
    pass


def socat_binary():
    found = shutil.which("socat")
    if found is None:
        raise PtyError("socat is not installed: apt-get install socat")
    return found


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by socat) counts as gone
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class PtyProcess:
    """`socat PTY,link=PORT,raw,echo=0 EXEC:LAUNCHER,pty,raw,echo=0,isig=1,setsid,ctty`: the
    launcher (a shell script that execs the command) gets a terminal of its own, the host
    opens PORT. Ending socat closes both ends, and the launcher's session gets SIGHUP.
    isig: a Ctrl-C from the host interrupts a running program (SIGINT: KeyboardInterrupt
    in micropython, whose REPL reads its lines with the terminal in raw mode), as a board's
    USB REPL does; mpremote relies on it to stop an app that runs."""

    def __init__(self, port, command, launcher):
        self.port = Path(port)
        self.command = list(command)
        self.launcher = Path(launcher)
        self.socat = None
        self.child_pid = None
        # cut() may come from another thread mid-transfer: a start() waits until it is
        # done, or the old socat's clean-up would remove the new one's port link.
        self._lock = threading.RLock()

    def start(self, timeout_s=START_TIMEOUT_S):
        with self._lock:
            self._start(timeout_s)

    def _start(self, timeout_s):
        if not _PLAIN_PATH.match(str(self.launcher)):
            raise PtyError(
                "the unit's directory must be a plain path for socat: %s" % self.launcher
            )
        self.launcher.write_text("#!/bin/sh\nexec %s\n" % shlex.join(self.command))
        self.launcher.chmod(0o755)
        self.port.unlink(missing_ok=True)  # a link left by a socat that was killed hard
        log = open(self.launcher.with_suffix(".log"), "ab")
        self.socat = subprocess.Popen(
            [
                socat_binary(),
                "PTY,link=%s,raw,echo=0" % self.port,
                "EXEC:%s,pty,raw,echo=0,isig=1,setsid,ctty" % self.launcher,
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while not (self.port.exists() and self.child_pid):
            if self.socat.poll() is not None or time.monotonic() > deadline:
                self.cut()
                raise PtyError("socat did not open %s (see %s)" % (self.port, log.name))
            children = "/proc/%d/task/%d/children" % (self.socat.pid, self.socat.pid)
            with contextlib.suppress(OSError, ValueError, IndexError):  # not forked yet
                self.child_pid = int(Path(children).read_text().split()[0])
            time.sleep(0.02)

    @property
    def running(self):
        return self.socat is not None and self.socat.poll() is None

    def cut(self):
        """End socat and the command: the pty closes under whoever has it open."""
        with self._lock:
            socat, child = self.socat, self.child_pid
            self.socat = self.child_pid = None
            if socat is not None and socat.poll() is None:
                socat.terminate()
                try:
                    socat.wait(timeout=STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    socat.kill()
                    socat.wait(timeout=STOP_TIMEOUT_S)
            if child is not None:
                deadline = time.monotonic() + STOP_TIMEOUT_S
                while _alive(child) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if _alive(child):  # it ignored the hang-up
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
            self.port.unlink(missing_ok=True)


class UnitBootError(PtyError):
    pass


class PtyUnit:
    """The virtual unit on a pty; a context manager that starts it, waits for its prompt
    and stops it. unit_dir holds flash/ (the unit's filesystem), romfs.bin (its ROMFS
    partition), the port link and a log; all stay after stop(), for the test to inspect
    and for restart()."""

    def __init__(
        self,
        unit_dir,
        heapsize=DEFAULT_HEAPSIZE,
        rom_bytes=DEFAULT_ROM_BYTES,
        romfs_image=None,
        extra_path=(),
        port=None,
    ):
        """rom_bytes: the ROMFS partition's size, whole 4 KB blocks; 0 for a MicroPython
        build without ROMFS. romfs_image: a ROMFS image file the partition starts with (a
        unit that came with older firmware in ROM). extra_path: host directories the unit
        imports from after its own, read-only: simulator fakes, or the firmware itself,
        precompiled_dir(FIRMWARE_DIR), for a unit that has it without a deploy."""
        self.unit_dir = Path(unit_dir).resolve()
        self.flash_dir = self.unit_dir / "flash"
        self.rom_file = self.unit_dir / "romfs.bin"
        self.port = str(port or self.unit_dir / "usb-serial")
        self.heapsize = heapsize
        self.rom_bytes = rom_bytes
        if rom_bytes % ROM_BLOCK_BYTES:
            raise ValueError("rom_bytes: whole flash blocks of %d bytes" % ROM_BLOCK_BYTES)
        self.flash_dir.mkdir(parents=True, exist_ok=True)
        if romfs_image is not None:
            image = Path(romfs_image).read_bytes()
            if len(image) > rom_bytes:
                raise ValueError("the image is larger than the partition")
            self.rom_file.write_bytes(image + b"\xff" * (rom_bytes - len(image)))
        command = [micropython_binary(), "-X", "heapsize=" + heapsize, "-i", str(BOOT_SCRIPT)]
        command += [str(self.flash_dir), str(self.rom_file), str(rom_bytes)]
        command += [str(Path(p).resolve()) for p in extra_path]
        self._pty = PtyProcess(self.port, command, self.unit_dir / "unit.sh")

    def start(self, timeout_s=START_TIMEOUT_S):
        self._pty.start(timeout_s)
        try:
            self._wait_for_prompt(timeout_s)
        except BaseException:
            self._pty.cut()
            raise
        return self

    def _wait_for_prompt(self, timeout_s):
        import serial

        deadline = time.monotonic() + timeout_s
        with serial.Serial(self.port, 115200, timeout=0.1) as s:
            # Ask for a fresh prompt. No Ctrl-C: the interpreter is new (no half-typed line)
            # and would take it as an interrupt of the boot script still running.
            s.write(b"\r")
            self._read_until(s, b">>> ", deadline)
            # What the boot printed before we opened the port is gone: ask for its outcome.
            # The markers are built on the unit, so the echoed command does not match them.
            s.write(b"print(chr(123)*3 + unit_boot + chr(125)*3)\r")
            seen = self._read_until(s, b">>> ", deadline)
        found = re.search(rb"\{\{\{(.*?)\}\}\}", seen, re.S)
        if found is None or found.group(1) != b"ok":
            raise UnitBootError(
                "the virtual unit did not start:\n"
                + (found.group(1) if found else seen).decode("utf-8", "replace")
            )

    def _read_until(self, s, ending, deadline):
        seen = b""
        while not seen.endswith(ending):
            if time.monotonic() > deadline:
                raise PtyError("the virtual unit did not answer on %s: %r" % (self.port, seen))
            seen += s.read(256)
        return seen

    def stop(self):
        self._pty.cut()

    def cut(self):
        """Pull the cable: the port vanishes now, mid-transfer if one runs (safe to call
        from another thread or a progress callback). The unit's files stay."""
        self._pty.cut()

    def restart(self, timeout_s=START_TIMEOUT_S):
        """Plug it in again: a fresh interpreter on the same port path and files."""
        self._pty.cut()
        return self.start(timeout_s)

    @property
    def running(self):
        return self._pty.running

    def mpremote(self, *args, timeout_s=60):
        """`mpremote connect PORT resume ARGS...` (CompletedProcess, text)."""
        return subprocess.run(
            [mpremote_binary(), "connect", self.port, "resume", *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )

    @contextlib.contextmanager
    def transport(self, timeout_s=10):
        """mpremote's SerialTransport on the port, in raw REPL without a soft reset."""
        from mpremote.transport_serial import SerialTransport

        t = SerialTransport(self.port, baudrate=115200)
        try:
            t.enter_raw_repl(soft_reset=False, timeout_overall=timeout_s)
            yield t
        finally:
            with contextlib.suppress(Exception):  # the unit may be gone: cut() mid-use
                t.exit_raw_repl()
            with contextlib.suppress(Exception):
                t.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

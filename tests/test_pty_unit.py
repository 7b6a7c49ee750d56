"""The virtual unit's USB serial port: micropython behind socat on a pty, reached with
mpremote as a board is (simulator/pty_unit.py, simulator/pty_boot.py)."""

import shutil
import threading

import pytest
import serial
from mpremote.transport import TransportError

from simulator import FIRMWARE_DIR
from simulator.pty_unit import PtyUnit, UnitBootError
from simulator.runtime import precompiled_dir

pytestmark = pytest.mark.skipif(
    shutil.which("socat") is None, reason="socat is not installed: apt-get install socat"
)


def test_mpremote_reaches_the_unit_and_its_files_are_the_flash_dir(pty_unit):
    proc = pty_unit.mpremote(
        "exec", "import os, sys; open('/note.txt', 'w').write('kept'); print(sys.path)"
    )
    assert proc.returncode == 0, proc.stderr
    # A board's module path (the ESP32 port's; no ROMFS image yet) and its filesystem at /
    assert proc.stdout.strip() == "['', '.frozen', '/lib']"
    assert (pty_unit.flash_dir / "note.txt").read_text() == "kept"


def test_a_restart_keeps_the_files_and_starts_a_fresh_interpreter(pty_unit):
    with pty_unit.transport() as t:
        t.exec("f = open('/boots.txt', 'a'); f.write('1'); f.close(); left_behind = 5")
    pty_unit.restart()
    with pty_unit.transport() as t:
        assert t.eval("open('/boots.txt').read()") == "1"
        assert t.eval("'left_behind' in globals()") is False


def test_rename_replaces_a_file_on_the_unit_by_absolute_and_relative_paths(pty_unit):
    # The port's rooted VfsPosix renames ROOT/new to ROOT/new (measured); the firmware and
    # deploy replace files whole by rename, so the unit's flash must get this right.
    with pty_unit.transport() as t:
        t.exec(
            "import os\n"
            "os.mkdir('/d')\n"
            "for p in ('/a', '/a.new', '/d/b', '/d/b.new'):\n"
            "    f = open(p, 'w'); f.write(p); f.close()\n"
            "os.rename('/a.new', '/a')\n"
            "os.chdir('/d')\n"
            "os.rename('b.new', 'b')\n"
            "os.chdir('/')"
        )
    assert (pty_unit.flash_dir / "a").read_text() == "/a.new"
    assert (pty_unit.flash_dir / "d" / "b").read_text() == "/d/b.new"
    assert sorted(p.name for p in pty_unit.flash_dir.rglob("*")) == ["a", "b", "d"]


def test_cutting_the_cable_mid_transfer_ends_it_and_the_unit_comes_back(pty_unit):
    with pty_unit.transport() as t:
        t.fs_writefile("/before.bin", b"\x01" * 1000)
    sent = []

    def progress(written, total):
        sent.append(written)
        if written >= 8192:  # a quarter of the way: pull the cable
            pty_unit.cut()

    with pytest.raises((TransportError, serial.SerialException, OSError)):
        with pty_unit.transport() as t:
            t.fs_writefile(
                "/during.bin", b"\x02" * 32768, chunk_size=1024, progress_callback=progress
            )
    assert sent[-1] == 8192  # nothing more went once the pty had closed
    assert not pty_unit.running
    pty_unit.restart()
    with pty_unit.transport() as t:
        assert t.eval("len(open('/before.bin', 'rb').read())") == 1000
        partial = t.eval("len(open('/during.bin', 'rb').read())")
    assert partial <= 8192


def test_cut_from_another_thread_while_the_host_waits_for_an_answer(pty_unit):
    with pty_unit.transport() as t:
        timer = threading.Timer(0.3, pty_unit.cut)
        timer.start()
        with pytest.raises((TransportError, serial.SerialException, OSError)):
            t.exec("import time\nwhile True:\n    time.sleep_ms(10)")
        timer.join()
    assert not pty_unit.running


def test_a_unit_that_cannot_start_says_why_and_is_stopped(tmp_path):
    # The ROM partition sits in the heap on the unix port: 256 KB cannot fit in 64 KB.
    unit = PtyUnit(tmp_path / "unit", heapsize="64K", rom_bytes=256 * 1024)
    try:
        with pytest.raises(UnitBootError, match="MemoryError"):
            unit.start()
        assert not unit.running
    finally:
        unit.stop()


def test_the_romfs_partition_is_whole_flash_blocks(tmp_path):
    with pytest.raises(ValueError, match="4096"):
        PtyUnit(tmp_path / "unit", rom_bytes=4096 + 1)
    PtyUnit(tmp_path / "unit", rom_bytes=4096)  # one whole block


def test_the_firmware_on_its_path_keeps_a_store_on_its_flash_across_restarts(tmp_path):
    # What the serial pull builds on: the firmware importable on the unit (here from the
    # precompiled tree, read-only at /sim0) and its record store on the unit's flash.
    firmware = precompiled_dir(FIRMWARE_DIR)
    opened = "from core import store\nst = store.Store('/log')\nst.open(0)\nst.flush()"
    seen = []
    with PtyUnit(tmp_path / "unit", extra_path=[firmware]) as unit:
        for _boot in range(2):
            with unit.transport() as t:
                t.exec(opened)
                seen.append(t.eval("(st.boot, st.count(), st.stored_seq, store.__file__)"))
            unit.restart()
    # Each boot stores its boot event; a reboot's seq skips ahead (docs/storage.md, lease)
    assert [s[:2] for s in seen] == [(1, 1), (2, 2)]
    assert seen[0][2] == 1 and seen[1][2] > 1
    assert {s[3] for s in seen} == {"/sim0/core/store.mpy"}
    assert (tmp_path / "unit" / "flash" / "log" / "state").exists()

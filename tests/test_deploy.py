"""`python -m host_sync deploy` against the virtual unit on a pty: the firmware arrives,
imports on the unit from where it was written and reports this laptop's versions; every
failure a user can meet is one line on stderr and exit 1 (host_sync/deploy.py)."""

import shutil
import threading

import pytest

from host_sync import deploy
from simulator import FIRMWARE_DIR
from simulator.pty_unit import PtyUnit

pytestmark = pytest.mark.skipif(
    shutil.which("socat") is None, reason="socat is not installed: apt-get install socat"
)

FIRMWARE_VERSION = deploy.source_constant(FIRMWARE_DIR / "version.py", "FIRMWARE_VERSION")
RULESET = deploy.source_constant(FIRMWARE_DIR / "core" / "dosage.py", "RULESET")


def run(capsys, *argv):
    code = deploy.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err):
    assert "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("deploy: "), err
    return err.strip()


def failure(capsys, *argv):
    """The one line a failed deploy says (exit 1, nothing on stdout but progress)."""
    code, out, err = run(capsys, *argv)
    assert code == 1, (out, err)
    return one_line(err)


def old_firmware(tmp_path, version="0.0.9"):
    """A copy of the firmware that reports another version, as an older release would."""
    old = tmp_path / "old-firmware"
    shutil.copytree(FIRMWARE_DIR, old, ignore=shutil.ignore_patterns("__pycache__"))
    text = (old / "version.py").read_text()
    (old / "version.py").write_text(text.replace(FIRMWARE_VERSION, version))
    return old


def unit_imports(unit):
    """What the unit imports now, asked in a fresh interpreter (a restart)."""
    unit.restart()
    proc = unit.mpremote(
        "exec",
        "import version; from core import dosage; "
        "print(version.FIRMWARE_VERSION, dosage.RULESET, dosage.__file__)",
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_the_versions_read_from_source_are_the_ones_the_firmware_has():
    import version  # firmware/, through simulator.use_firmware() in conftest

    from core import dosage

    assert (FIRMWARE_VERSION, RULESET) == (version.FIRMWARE_VERSION, dosage.RULESET)
    with pytest.raises(deploy.DeployError, match="has no NO_SUCH"):
        deploy.source_constant(FIRMWARE_DIR / "version.py", "NO_SUCH")


def test_files_arrive_import_and_a_second_deploy_writes_nothing(pty_unit, capsys, tmp_path):
    code, out, err = run(capsys, "--port", pty_unit.port)
    assert (code, err) == (0, "")
    built = deploy.build(FIRMWARE_DIR, tmp_path / "build")
    for name, data in built.files.items():  # byte for byte where the unit keeps its files
        assert (pty_unit.flash_dir / name).read_bytes() == data
    assert "main.mpy" not in built.files and "version.mpy" in built.files
    assert "core/dosage.mpy" in built.files and "core/dosage.py" not in built.files
    assert not list(pty_unit.flash_dir.rglob("*.new"))
    assert "Deployed firmware %s (ruleset %s)" % (FIRMWARE_VERSION, RULESET) in out
    assert "%d written" % len(built.files) in out

    code, out, err = run(capsys, "--port", pty_unit.port)
    assert (code, err) == (0, "")
    assert "Copying" not in out and " 0 written" in out
    # The unit, started afresh, runs what was deployed: from its files (cwd "/")
    assert unit_imports(pty_unit) == [FIRMWARE_VERSION, RULESET, "core/dosage.mpy"]


def test_romfs_image_arrives_and_the_unit_imports_from_it_after_a_restart(
    pty_unit, capsys, tmp_path
):
    code, out, err = run(capsys, "--port", pty_unit.port, "--romfs")
    assert (code, err) == (0, "")
    image = deploy.build(FIRMWARE_DIR, tmp_path / "build", romfs=True).image
    assert image is not None
    assert pty_unit.rom_file.read_bytes()[: len(image)] == image
    assert "as a ROMFS image" in out
    # Only what a board needs as files: main.py (a board starts it from source) and the data
    assert sorted(p.name for p in pty_unit.flash_dir.rglob("*") if p.is_file()) == [
        "main.py",
        "qst_reference.json",
    ]
    assert unit_imports(pty_unit) == [FIRMWARE_VERSION, RULESET, "/rom/core/dosage.mpy"]

    code, out, err = run(capsys, "--port", pty_unit.port, "--romfs")
    assert (code, err) == (0, "")
    assert "Writing" not in out and " 0 written" in out


def test_an_older_romfs_image_first_on_the_path_fails_the_check_until_romfs_deploy(
    tmp_path, capsys
):
    old = deploy.build(old_firmware(tmp_path), tmp_path / "old-build", romfs=True).image
    assert old is not None
    (tmp_path / "old.romfs").write_bytes(old)
    with PtyUnit(tmp_path / "unit", romfs_image=tmp_path / "old.romfs") as unit:
        line = failure(capsys, "--port", unit.port)
        assert line == (
            "deploy: versions do not match: the unit runs firmware 0.0.9, ruleset %s; this "
            "laptop deployed firmware %s, ruleset %s; app comes from /rom/app.mpy on the "
            "unit, not from the copy just written to /: an older ROMFS image comes first on "
            "its module path: deploy with --romfs" % (RULESET, FIRMWARE_VERSION, RULESET)
        )
        code, _out, err = run(capsys, "--port", unit.port, "--romfs")
        assert (code, err) == (0, "")
        assert unit_imports(unit) == [FIRMWARE_VERSION, RULESET, "/rom/core/dosage.mpy"]


def test_a_stale_source_file_that_shadows_the_copy_is_named(pty_unit, capsys):
    # Someone once copied the sources by hand: the unit finds drivers/hx711.py before the
    # deployed drivers/hx711.mpy. The versions still match: only the origin check sees it.
    (pty_unit.flash_dir / "drivers").mkdir()
    shutil.copyfile(
        FIRMWARE_DIR / "drivers" / "hx711.py", pty_unit.flash_dir / "drivers" / "hx711.py"
    )
    line = failure(capsys, "--port", pty_unit.port)
    assert line == (
        "deploy: drivers.hx711 comes from /drivers/hx711.py on the unit, not from the copy "
        "just written to /: remove that file (mpremote rm :/drivers/hx711.py), then deploy "
        "again"
    )


def test_no_such_port(capsys, tmp_path):
    assert failure(capsys, "--port", str(tmp_path / "ttyACM9")) == (
        "deploy: no serial port %s: plug the unit in, switch it on and give its port "
        "(list them with: mpremote devs)" % (tmp_path / "ttyACM9")
    )


def test_a_unit_that_does_not_answer(tmp_path, capsys):
    from simulator.pty_unit import PtyProcess

    silent = PtyProcess(tmp_path / "tty", ["sleep", "60"], tmp_path / "silent.sh")
    silent.start()
    try:
        line = failure(capsys, "--port", str(silent.port), "--timeout", "1")
    finally:
        silent.cut()
    assert line.startswith("deploy: the unit on %s does not answer" % silent.port)


def test_a_copy_that_fails_leaves_the_rest_of_the_unit_alone(pty_unit, capsys):
    (pty_unit.flash_dir / "records").write_text("stored")  # a file where a directory must go
    line = failure(capsys, "--port", pty_unit.port, "--target", "/records")
    assert line == (
        "deploy: making the firmware's directories failed on the unit: "
        "OSError: /records is a file, not a directory"
    )
    assert (pty_unit.flash_dir / "records").read_text() == "stored"


def test_a_cable_pulled_mid_copy_is_one_line_and_the_next_deploy_completes(pty_unit, tmp_path):
    lines = []
    cable = threading.Timer(0.05, pty_unit.cut)

    def say(line):  # called just before the copy starts: the cable goes 50 ms into it
        lines.append(line)
        cable.start()

    with pytest.raises(deploy.DeployError, match="connection to the unit was lost while"):
        deploy.deploy(pty_unit.port, say=say)
    cable.join()
    assert lines and lines[0].startswith("Copying ")
    pty_unit.restart()
    deploy.deploy(pty_unit.port, say=lambda line: None)  # completes: copied and checked
    built = deploy.build(FIRMWARE_DIR, tmp_path / "build")
    for name, data in built.files.items():
        assert (pty_unit.flash_dir / name).read_bytes() == data


def test_romfs_on_a_unit_without_a_romfs_partition(tmp_path, capsys):
    with PtyUnit(tmp_path / "unit", rom_bytes=0) as unit:
        line = failure(capsys, "--port", unit.port, "--romfs")
    assert line == (
        "deploy: the unit's MicroPython has no ROMFS partition: deploy without --romfs, or "
        "install a MicroPython build with ROMFS (docs/deploy.md)"
    )


def test_an_image_larger_than_the_partition_is_refused_before_writing(tmp_path, capsys):
    with PtyUnit(tmp_path / "unit", rom_bytes=64 * 1024) as unit:
        line = failure(capsys, "--port", unit.port, "--romfs")
        assert unit.rom_file.read_bytes() == b"\xff" * 64 * 1024  # not a byte written
    assert line.endswith("does not fit the unit's ROMFS partition (64 KB): deploy without --romfs")


def test_an_image_fits_up_to_the_last_byte_of_the_partition():
    assert deploy.image_fits(65536, 65536)
    assert not deploy.image_fits(65537, 65536)
    assert not deploy.image_fits(0, 65536)  # an empty image is no firmware


def test_the_unit_must_load_the_mpy_version_this_laptop_compiles():
    # sys.implementation._mpy: low byte the version, the bits above for native code only
    assert deploy.mpy_compatible(0x0B06, 6)  # the unix port 1.29 (x64)
    assert deploy.mpy_compatible(0x2A06, 6)  # an ESP32-S3 (xtensawin)
    assert not deploy.mpy_compatible(0x0B05, 6)  # MicroPython before 1.19
    assert not deploy.mpy_compatible(0, 6)  # too old to say


def test_firmware_that_does_not_compile_fails_before_the_unit_is_touched(tmp_path, capsys):
    broken = old_firmware(tmp_path)
    (broken / "core" / "broken.py").write_text("def f(:\n")
    line = failure(capsys, "--port", str(tmp_path / "no-unit"), "--firmware", str(broken))
    assert line.startswith("deploy: mpy-cross cannot compile the firmware: ")


def test_a_module_that_fails_to_import_on_the_unit_is_named(pty_unit, tmp_path, capsys):
    firmware = old_firmware(tmp_path, version=FIRMWARE_VERSION)
    # A module no other imports (board.py imports the buzzer's driver, and sorts first)
    (firmware / "drivers" / "pwm_probe.py").write_text("import machine\nmachine.PWM(10)\n")
    # A module that prints while imported: its line comes before the check's answer
    (firmware / "core" / "chatty.py").write_text("print('imported', [1, 2])\n")
    line = failure(capsys, "--port", pty_unit.port, "--firmware", str(firmware))
    assert line.startswith(
        "deploy: the firmware does not import on the unit: drivers.pwm_probe: AttributeError: "
    )


def test_usage_errors_exit_2(capsys):
    assert deploy.main([]) == 2
    assert deploy.main(["--port", "/dev/null", "--target", "relative/dir"]) == 2
    err = capsys.readouterr().err
    assert "--port" in err and "absolute path" in err


def test_the_command_runs_as_a_module_and_says_one_line(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "host_sync.deploy", "--port", str(tmp_path / "ttyUSB7")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stdout) == (1, "")
    assert one_line(proc.stderr).startswith("deploy: no serial port ")


def test_deploy_is_a_host_sync_command_too(tmp_path, capsys):
    from host_sync import cli

    assert cli.main(["deploy", "--port", str(tmp_path / "ttyUSB7")]) == 1
    assert one_line(capsys.readouterr().err).startswith("deploy: no serial port ")
    assert cli.main(["deploy"]) == 2  # its own usage error: --port is required
    assert "--port" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    listed = capsys.readouterr().out
    assert "deploy" in listed and "put this laptop's firmware on a unit" in listed

"""The USB serial pull: `python -m host_sync pull --serial PORT` against the virtual unit on a
pty (the firmware's usb module on micropython, its record store on the unit's flash, written
by the real store), the unit's side on both runtimes, and the wire format's edges
(firmware/usb.py, firmware/core/usbwire.py, host_sync/usb.py)."""

import asyncio
import binascii
import shutil
import time

import pytest
import serial
import usb_rig
from usb_rig import DEVICE_ID, cli, held, stored, usb_unit

from core import protocol, record, usbwire
from host_sync import cli as host_cli
from host_sync import usb
from host_sync.db import Database
from host_sync.pull import pull
from host_sync.transport import EXIT_INCOMPLETE, EXIT_NO_DEVICE, LinkLost
from host_sync.usb import UsbTransport
from simulator.pty_unit import PtyProcess, PtyUnit

needs_socat = pytest.mark.skipif(
    shutil.which("socat") is None, reason="socat is not installed: apt-get install socat"
)

# -- the unit's side, on both runtimes ------------------------------------------------------


def lines_seqs(lines, from_seq):
    """The seqs the host reads from report lines, checking each line follows the last."""
    seqs = []
    expect = from_seq
    kind = None
    for line in lines:
        kind, first, second, data = usbwire.parse_line(line.rstrip("\n"))
        if kind == usbwire.END:
            assert (first, second) == (protocol.RSP_SUCCESS, len(seqs))
            break
        assert first == expect
        seqs += [record.seq_of(r, 0) for r in usbwire.split_records(data, first, second)]
        expect = second
    assert kind == usbwire.END and expect == 0
    return seqs


def test_a_safe_booted_unit_opens_its_store_and_answers_on_both_runtimes(both_runtimes):
    out = both_runtimes("usb_cases.safe_boot", heapsize="1M")
    assert out["info"] == {
        "device_id": "A0B1C2D3E4F5",
        "manufacturer": "AlgoDose project",
        "model": "AlgoDose AD-1",
        "firmware": "0.1.0",
        "ruleset": out["info"]["ruleset"],
        "app_stopped": False,
    }
    assert out["mounts"] == 1 and out["mounts_after_second_start"] == 1
    # The app's boot event, 40 trials (seqs 1-41), then the boot start() counted: a new
    # lease, so its seq jumps to 65 (docs/storage.md)
    assert (out["count_1"], out["count_0"], out["count_41"]) == (42, 42, 2)
    report = out["report_1"]
    assert report["code"] == protocol.RSP_SUCCESS
    assert lines_seqs(report["lines"], 1) == list(range(1, 42)) + [65]
    assert len(report["lines"]) == 3  # 1 024-byte buffers: 36 records, then 6, then the end
    assert out["report_past_end"] == {"code": protocol.RSP_NO_RECORDS, "lines": ["E 6 0\n"]}
    assert out["ack_beyond"] == protocol.RSP_INVALID_OPERAND
    assert (out["ack_41"], out["ack_again"]) == (protocol.RSP_SUCCESS, protocol.RSP_SUCCESS)
    assert out["count_after_ack"] == 42  # acknowledged records stay until space is needed
    assert out["acked_on_flash"] == 41


def test_an_interrupted_app_s_store_is_opened_again_and_its_batch_written(both_runtimes):
    out = both_runtimes("usb_cases.app_running", heapsize="512K")
    assert out["info"]["app_stopped"] is True
    assert out["mounts"] == 0  # the app's storage: mounted already
    # The record the app held in RAM is stored by the re-open and sent
    assert (out["unflushed"], out["stored_seq"]) == (5, 5)
    assert lines_seqs(out["report"]["lines"], 1) == [1, 2, 3, 4, 5]
    assert (out["ack"], out["acked"]) == (protocol.RSP_SUCCESS, 5)
    assert out["feeds"] == 3  # start, the one buffer of the report, ack
    assert out["still_open"] is True


# -- the wire format's edges ----------------------------------------------------------------


def packed(*seqs, corrupt=None):
    buf = bytearray(record.MAX_BYTES * len(seqs))
    off = 0
    fields = usb_rig.SAMPLE_FIELDS[0]
    for seq in seqs:
        off += record.encode(buf, off, fields[0], seq, 1, 1000, None, fields[1])
    if corrupt is not None:
        buf[corrupt] ^= 0x01
    return bytes(buf[:off])


def test_a_records_line_round_trips():
    data = packed(7, 8, 9)
    line = usbwire.records_line(bytearray(data) + b"\xff" * 10, len(data), 5, 10)
    assert line.endswith("\n") and "\n" not in line[:-1]
    kind, first, second, got = usbwire.parse_line(line.rstrip("\n"))
    assert (kind, first, second, got) == (usbwire.RECORDS, 5, 10, data)
    assert record.count_records(data, len(data)) == 3
    assert [record.seq_of(r, 0) for r in usbwire.split_records(got, 5, 10)] == [7, 8, 9]
    assert usbwire.parse_line("E 1 3") == (usbwire.END, 1, 3, None)


@pytest.mark.parametrize(
    "line",
    ["", "R 1 2", "R 1 2 AA== x", "X 1 2 AA==", "R one 2 AA==", "E 1", "E 1 2 3", "R 1 2 A"],
)
def test_what_is_not_a_line_of_the_stream_is_refused(line):
    with pytest.raises(ValueError):
        usbwire.parse_line(line)


def test_a_value_read_back_is_the_last_line_printed_and_a_port_name_is_checked(tmp_path):
    assert usb.literal_of(b"loading\r\n{'a': 1}\r\n") == {"a": 1}
    for output in (b"", b"\r\n", b"Traceback", b"{'a':"):
        with pytest.raises(ValueError):
            usb.literal_of(output)
    assert usb.is_port_name(str(tmp_path)) and usb.is_port_name("COM3")
    assert not usb.is_port_name(str(tmp_path / "ttyACM9"))
    assert not usb.is_port_name("loop://", ("COM",))


def test_a_line_s_records_must_be_whole_in_order_and_end_where_it_says():
    data = packed(7, 8, 9)
    assert len(usbwire.split_records(data, 7, 10)) == 3  # next seq: the last one's + 1
    assert len(usbwire.split_records(data, 1, 0)) == 3  # or 0: the last line
    for from_seq, next_seq in ((7, 11), (7, 9), (8, 10)):  # a record before from_seq: no
        with pytest.raises(ValueError):
            usbwire.split_records(data, from_seq, next_seq)
    with pytest.raises(ValueError, match="out of order"):
        usbwire.split_records(packed(7, 7), 7, 8)  # the same seq twice
    with pytest.raises(ValueError, match="not a record"):
        usbwire.split_records(packed(7, 8, corrupt=40), 7, 9)  # a bit flipped: its CRC
    with pytest.raises(ValueError, match="not a record"):
        usbwire.split_records(data[:-1], 7, 10)  # cut short
    with pytest.raises(ValueError):
        usbwire.split_records(b"", 7, 0)  # a line with no record is never sent


# -- the laptop and the virtual unit on a pty -----------------------------------------------


def pull_once(unit, db, cut=None):
    """One pull over a fresh connection, in process; cut(link, step, n) may pull the cable."""

    async def run():
        link = await CuttingTransport(unit.port, cut).connect()
        try:
            return await pull(link, db)
        finally:
            await link.close()

    return asyncio.run(run())


class CuttingTransport(UsbTransport):
    """The real transport, with a hook before each step (the test pulls the cable there)."""

    def __init__(self, port, cut=None):
        super().__init__(port, timeout_s=5)
        self.cut = cut or (lambda step, n: None)

    async def count(self, from_seq):
        self.cut("count", 0)
        return await super().count(from_seq)

    async def report(self, from_seq, on_records):
        def arrived(records):
            on_records(records)
            self.cut("records", self.received)

        return await super().report(from_seq, arrived)

    async def delete_through(self, seq):
        self.cut("ack", 0)
        return await super().delete_through(seq)


@needs_socat
def test_records_arrive_and_a_second_pull_transfers_nothing(tmp_path):
    unit = usb_unit(tmp_path / "unit", records=600)
    db_path = str(tmp_path / "laptop.db")
    with unit:
        first = cli("pull", "--serial", unit.port, "--db", db_path)
        second = cli("pull", "--serial", unit.port, "--db", db_path)
    on_unit, acked = stored(unit)
    # 600 records, the store's boot event when they were written, the one the unit's own
    # start-up counted (usb.start opened the store: the app did not run)
    assert len(on_unit) == 602
    highest = max(on_unit)
    assert (first.returncode, first.stderr) == (0, "")
    assert first.stdout.splitlines() == [
        "%s: 602 records received, 602 new" % DEVICE_ID,
        "the unit may now free records up to %d" % highest,
    ]
    assert (second.returncode, second.stderr) == (0, "")
    assert second.stdout.splitlines()[0] == "%s: nothing new" % DEVICE_ID
    db = Database(db_path)
    assert held(db) == on_unit  # every record once, byte for byte
    assert acked == highest
    assert db.devices()[0]["address"] is None  # a USB port name is not the unit's address
    assert db.count(DEVICE_ID, "curve") == 120


@needs_socat
def test_the_firmware_deployed_over_the_cable_then_pulls_over_it(tmp_path):
    unit = PtyUnit(tmp_path / "unit")  # a unit with MicroPython and nothing else
    with unit:
        deployed = cli("deploy", "--port", unit.port)  # the CLI's deploy subcommand
    assert deployed.returncode == 0, deployed.stderr
    assert "Deployed firmware" in deployed.stdout
    assert (unit.flash_dir / "usb.mpy").exists()
    assert (unit.flash_dir / "core" / "usbwire.mpy").exists()
    usb_rig.give_board(unit)
    usb_rig.add_records(unit, 50)
    db_path = str(tmp_path / "laptop.db")
    with unit:
        pulled = cli("pull", "--serial", unit.port, "--db", db_path)
        where = unit.mpremote("exec", "import usb; print(usb.__file__)").stdout.strip()
    assert (pulled.returncode, pulled.stderr) == (0, "")
    assert where == "usb.mpy"  # the deployed module, not a copy from this computer
    assert held(Database(db_path)) == stored(unit)[0]


@needs_socat
@pytest.mark.parametrize(
    "step, at",
    [("count", 0), ("records", 1), ("records", 1500), ("records", 2990), ("ack", 0)],
)
def test_a_cut_cable_loses_nothing_and_the_next_pull_resumes(tmp_path, step, at):
    unit = usb_unit(tmp_path / "unit", records=3000)
    db = Database(str(tmp_path / "laptop.db"))

    def cut(where, received):
        if where == step and received >= at:
            unit.cut()

    with unit:
        with pytest.raises(LinkLost, match="USB link to the unit was lost|stopped answering"):
            pull_once(unit, db, cut)
        assert not unit.running
    before, acked_before = stored(unit)
    kept = held(db)
    assert acked_before == 0  # nothing acknowledged that this laptop had not committed
    # What arrived before the cut is committed: a prefix of the unit's records, whole
    expected_kept = {"count": 0, "records": at, "ack": len(before)}[step]
    assert len(kept) >= expected_kept and kept == {
        s: before[s] for s in sorted(before)[: len(kept)]
    }
    with unit:  # plugged in again
        result = pull_once(unit, db)
    after, acked = stored(unit)
    assert held(db) == after  # every record once: none lost, none twice
    assert result.new == len(after) - len(kept) and result.duplicates == 0
    assert acked == max(after) == result.acked_through


@needs_socat
def test_a_running_app_is_interrupted_and_its_open_store_used(tmp_path):
    unit = usb_unit(tmp_path / "unit", records=10)
    db_path = str(tmp_path / "laptop.db")
    with unit:
        start_app(unit)
        result = cli("pull", "--serial", unit.port, "--db", db_path)
        with unit.transport() as t:  # the same interpreter: no reset, the app stopped
            feeds, same = t.eval("(pty_app.watchdog.feeds, pty_app.usb._store is pty_app.store)")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines()[-1] == (
        "the unit's app was stopped for the transfer: switch the unit off and on again"
    )
    assert same is True and feeds >= 3
    on_unit, acked = stored(unit)
    # Every record the app stored, those still in its RAM batch too, and nothing more
    assert held(Database(db_path)) == on_unit and acked == max(on_unit)
    assert len(on_unit) > 12


def start_app(unit, attach=True):
    """The stand-in app runs on the unit, as after switching it on (tests/device/pty_app)."""
    shutil.copyfile(usb_rig.DEVICE_DIR / "pty_app.py", unit.flash_dir / "pty_app.py")
    with serial.Serial(unit.port, 115200, timeout=10) as console:
        console.write(b"import board, pty_app; pty_app.run(board, attach=%r)\r" % attach)
        assert b"app running" in console.read_until(b"app running")
        time.sleep(0.3)  # it stores records meanwhile


@needs_socat
def test_an_app_that_did_not_attach_its_store_says_to_start_in_safe_boot(tmp_path):
    unit = usb_unit(tmp_path / "unit", records=10)
    with unit:
        start_app(unit, attach=False)
        proc = cli("pull", "--serial", unit.port, "--db", str(tmp_path / "l.db"))
    assert proc.returncode == EXIT_INCOMPLETE
    assert "app holds its storage" in one_line(proc) and "safe boot" in proc.stderr
    assert stored(unit)[1] == 0  # nothing acknowledged


@needs_socat
def test_records_another_laptop_freed_are_reported_from_the_oldest_left(tmp_path):
    unit = usb_unit(tmp_path / "unit", records=40)
    db = Database(str(tmp_path / "laptop.db"))
    with unit:
        first_gone = pull_once(unit, db).acked_through + 1
    # Meanwhile another laptop pulled more, acknowledged it all, and the unit freed it
    usb_rig.add_records(unit, 400, flush_every=1)
    st = usb_rig.store_on(unit)
    st.ack(st.stored_seq)
    st._free = lambda: 0  # the flash is full now: reclaim every acknowledged segment
    st.room_for_session()
    gone_below = st.first_seq()
    st.close()
    usb_rig.add_records(unit, 5)
    with unit:
        result = pull_once(unit, db)
    on_unit, _acked = stored(unit)
    have = held(db)
    assert "acknowledged by another computer" in result.warnings[0]
    assert {seq: have[seq] for seq in on_unit} == on_unit  # what is left, all of it
    assert min(on_unit) == gone_below and set(range(first_gone, gone_below)) - set(have)


# -- one line for what a user can get wrong -------------------------------------------------


def one_line(proc):
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    return proc.stderr.strip()


def test_no_such_port_is_one_line(tmp_path):
    proc = cli("pull", "--serial", str(tmp_path / "ttyACM9"), "--db", str(tmp_path / "l.db"))
    assert proc.returncode == EXIT_NO_DEVICE
    assert "no serial port" in one_line(proc) and "mpremote devs" in proc.stderr


@needs_socat
def test_a_port_that_does_not_answer_is_one_line(tmp_path):
    silent = PtyProcess(tmp_path / "port", ["sleep", "60"], tmp_path / "silent.sh")
    silent.start()
    try:
        proc = cli(
            "pull", "--serial", str(silent.port), "--timeout", "1", "--db", str(tmp_path / "l.db")
        )
    finally:
        silent.cut()
    assert proc.returncode == EXIT_NO_DEVICE
    assert "does not answer" in one_line(proc)


@needs_socat
def test_a_unit_without_the_usb_module_says_to_deploy(pty_unit, tmp_path):
    proc = cli("pull", "--serial", pty_unit.port, "--db", str(tmp_path / "l.db"))
    assert proc.returncode == EXIT_INCOMPLETE
    line = one_line(proc)
    assert "no USB sync" in line and "host_sync deploy --port %s" % pty_unit.port in line


@needs_socat
def test_the_cable_pulled_mid_pull_is_one_line_and_what_arrived_is_kept(
    tmp_path, capsys, monkeypatch
):
    unit = usb_unit(tmp_path / "unit", records=3000)
    db_path = str(tmp_path / "laptop.db")

    def update(self, done, total):
        if done >= 1000:
            unit.cut()

    monkeypatch.setattr(host_cli._Progress, "update", update)
    with unit:
        code = host_cli.main(["pull", "--serial", unit.port, "--db", db_path])
    out, err = capsys.readouterr()
    assert code == EXIT_INCOMPLETE and out == ""
    assert err.count("\n") == 1 and "was lost while receiving records" in err
    assert "plug it in again and pull again" in err
    assert 1000 <= Database(db_path).count(DEVICE_ID) < 3001


def test_damaged_lines_stop_the_pull_after_what_came_whole():
    data = packed(1, 2)
    good = usbwire.records_line(bytearray(data), len(data), 1, 3)
    b64 = binascii.b2a_base64(packed(3, corrupt=20)).decode().strip()
    stream = good + "R 3 0 " + b64 + "\nE 1 3\n"
    received = []
    link = ScriptedTransport(stream.encode() + b"\x04\x04>")
    with pytest.raises(ValueError, match="not a record"):
        link._stream(1, received.extend)
    assert [record.seq_of(r, 0) for r in received] == [1, 2]
    gap = good + usbwire.records_line(bytearray(packed(4)), len(packed(4)), 4, 0)
    with pytest.raises(ValueError, match="records from 3 missing"):
        ScriptedTransport(gap.encode() + b"E 1 3\n\x04\x04>")._stream(1, received.extend)
    short = good + "E 1 3\n"  # the unit says 3, 2 arrived
    with pytest.raises(ValueError, match="sent 3 records, 2 arrived"):
        ScriptedTransport(short.encode() + b"\x04\x04>")._stream(1, received.extend)


class ScriptedTransport(UsbTransport):
    """The host's reading of a report from given bytes: what a broken cable or a faulty
    USB-UART bridge could deliver, which the virtual unit never sends."""

    def __init__(self, data):
        super().__init__("scripted")
        self._data = bytearray(data)

    def _read(self):
        if not self._data:
            raise AssertionError("read past the script")
        chunk = bytes(self._data[:7])  # a few bytes at a time: lines arrive in pieces
        del self._data[:7]
        return chunk

"""The USB serial link to a unit (docs/protocol.md, "Over USB"): mpremote's SerialTransport
(pyserial underneath) in the unit's raw REPL, calling the firmware's `usb` module, which
answers as the Bluetooth record service does, from the same store. host_sync.pull runs on it
unchanged: count, report, commit, then "delete <= N".

Entering the raw REPL interrupts the unit's app if it runs (Ctrl-C, no soft reset: the
unit's memory, its open store, stays); the app is then stopped until the unit restarts.
The records travel as core.usbwire lines, each record CRC-checked here and each line
checked to follow the one before; a line that does not is an error, never a gap.

The serial calls block (a pull does nothing else meanwhile); every read has a timeout.
"""

import ast
import contextlib
import io
import os

from core import protocol, usbwire
from host_sync.transport import DeviceRefused, LinkLost, NoDevice, SyncError, Transport

BAUDRATE = 115200  # a board's own USB port ignores it; a USB-UART bridge needs it
ANSWER_TIMEOUT_S = 10.0  # the unit's first answer, and the longest silence inside one
BOARD_MODULE = "board"  # the firmware's hardware module: storage, device id, clock
# Port names that are not paths on this computer (Windows, and pyserial's URL handlers).
NOT_PATHS = ("COM", "socket:", "rfc2217:", "loop:")
_REPORT_ENDS = (protocol.RSP_SUCCESS, protocol.RSP_NO_RECORDS, protocol.RSP_RECORDS_GONE)
_EOT = b"\x04"  # the raw REPL ends a command's output, then its error output, with this


class PortBusy(Exception):
    """open_raw_repl(): the serial port cannot be opened."""


class NoAnswer(Exception):
    """open_raw_repl(): the port opened, but no raw REPL answered on it."""


def is_port_name(port, not_paths=NOT_PATHS):
    """Whether port may name a serial port: a path that exists, or a name starting with one
    of not_paths (names that are not paths on this computer)."""
    return os.path.exists(port) or port.startswith(not_paths)


def open_raw_repl(port, timeout_s):
    """mpremote's SerialTransport on port, in the raw REPL without a soft reset (the unit's
    memory, its open store, stays). Raises PortBusy, or NoAnswer with the port closed again;
    the caller says what to do."""
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport

    try:
        repl = SerialTransport(port, baudrate=BAUDRATE, timeout=timeout_s)
    except TransportError:
        raise PortBusy(port) from None
    try:
        repl.enter_raw_repl(soft_reset=False, timeout_overall=timeout_s)
    except Exception:  # TransportError, serial.SerialException (an OSError), ...
        close_raw_repl(repl)
        raise NoAnswer(port) from None
    return repl


def close_raw_repl(repl):
    """Leaves the raw REPL and closes the port; a unit already gone is no error."""
    with contextlib.suppress(Exception):
        repl.exit_raw_repl()
    with contextlib.suppress(Exception):
        repl.close()


def literal_of(output):
    """The Python literal a command printed last (output: its bytes). Only the last line is
    the value: a module may print while it is imported. ValueError if it is not one."""
    lines = output.decode("utf-8", "replace").strip().splitlines()
    try:
        return ast.literal_eval(lines[-1])
    except (IndexError, ValueError, SyntaxError):
        raise ValueError("not a Python literal: %r" % output[-40:]) from None


class UsbTransport(Transport):
    """One connection to a unit's USB REPL. address stays None: the database keeps the
    unit's Bluetooth address, which a USB port name must not replace."""

    address = None

    def __init__(self, port, timeout_s=ANSWER_TIMEOUT_S, board=BOARD_MODULE):
        self.port = port
        self.timeout_s = timeout_s
        self.board = board
        self.app_stopped = False  # the unit's app was running and is stopped now
        self.received = 0
        self._repl = None
        self._streaming = False  # a report's output may still be coming

    async def connect(self):
        port = self.port
        if not is_port_name(port):
            raise NoDevice(
                "no serial port %s: plug the unit in, switch it on and give its port"
                " (list them with: mpremote devs)" % port
            )
        # mpremote prints what it saw when something fails: our own line says it instead.
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                self._repl = open_raw_repl(port, self.timeout_s)
            except PortBusy:
                raise NoDevice(
                    "cannot open %s: is another program (a terminal, mpremote, Thonny,"
                    " a deploy) using it?" % port
                ) from None
            except NoAnswer:
                raise NoDevice(
                    "the unit on %s does not answer: switch it off and on again, wait for"
                    " its home screen, then pull again" % port
                ) from None
        return self

    async def close(self):
        repl, self._repl = self._repl, None
        if repl is None:
            return
        with contextlib.suppress(Exception):  # the unit may be gone (the cable pulled)
            if self._streaming:
                repl.serial.write(b"\x03")  # stop a report the unit is still printing
            repl.exit_raw_repl()
        with contextlib.suppress(Exception):
            repl.close()

    # --- calls ---------------------------------------------------------------------------

    def _lost(self, what):
        return LinkLost(
            "the USB link to the unit was lost while %s: plug it in again and pull again"
            " (what arrived is kept)" % what
        )

    def _failed(self, error_output, what):
        """The unit raised: one line that says what to do."""
        lines = error_output.strip().splitlines()
        last = lines[-1] if lines else "no message"
        if last.startswith("ImportError"):
            return SyncError(
                "the unit's firmware has no USB sync (%s): deploy this laptop's firmware to"
                " it (python -m host_sync deploy --port %s), then pull again" % (last, self.port)
            )
        if "storage in use" in last:  # an app that did not attach its store has it open
            return SyncError(
                "the unit's app holds its storage: switch the unit off, then on with its"
                " select button held (safe boot), and pull again"
            )
        if "StoreError" in last or last.startswith("OSError"):
            return SyncError(
                "the unit's storage failed while %s (%s): switch the unit off and on again,"
                " then pull again" % (what, last)
            )
        return SyncError(
            "the unit failed while %s (%s): switch it off and on again, then pull again"
            % (what, last)
        )

    def _eval(self, expression, what):
        """The value of expression on the unit (a Python literal)."""
        from mpremote.transport import TransportError, TransportExecError

        if self._repl is None:
            raise self._lost(what)
        try:
            out = self._repl.exec("print(repr(%s))" % expression)
        except TransportExecError as e:
            raise self._failed(e.error_output, what) from None
        except (TransportError, OSError):  # serial.SerialException is an OSError
            raise self._lost(what) from None
        try:
            return literal_of(out)
        except ValueError:
            raise SyncError(
                "the unit gave no answer this laptop reads while %s: is it an AlgoDose"
                " unit?" % what
            ) from None

    async def device_info(self):
        info = self._eval(
            "__import__('usb').start(__import__(%r))" % self.board, "reading what the unit is"
        )
        if not isinstance(info, dict) or not info.get("device_id"):
            raise SyncError("the unit has no serial number: it is not an AlgoDose unit")
        self.app_stopped = bool(info.pop("app_stopped", False))
        return info

    async def count(self, from_seq):
        return self._eval("__import__('usb').count(%d)" % from_seq, "counting records")

    async def report(self, from_seq, on_records):
        return self._report(max(from_seq, 1), on_records)

    async def report_all(self, on_records):
        return self._report(0, on_records)

    async def delete_through(self, seq):
        code = self._eval("__import__('usb').ack(%d)" % seq, "acknowledging records")
        if code != protocol.RSP_SUCCESS:
            raise DeviceRefused("the unit refused: %s" % protocol.response_text(code), code)

    # --- the record stream ----------------------------------------------------------------

    def _report(self, from_seq, on_records):
        from mpremote.transport import TransportError

        what = "receiving records"
        if self._repl is None:
            raise self._lost(what)
        try:
            self._repl.exec_raw_no_follow("__import__('usb').report(%d)" % from_seq)
            self._streaming = True
            code = self._stream(from_seq, on_records)
            self._streaming = False
            # The last read may have taken the prompt of the next command with the end of
            # this one: enter the raw REPL again (it discards what is left, asks anew).
            self._repl.enter_raw_repl(soft_reset=False, timeout_overall=self.timeout_s)
        except (TransportError, OSError):
            raise self._lost(what) from None
        except ValueError as error:  # a line that is not one, or does not follow
            raise LinkLost(
                "the records from the unit arrived damaged (%s): pull again (what arrived"
                " whole is kept)" % error
            ) from None
        if code in _REPORT_ENDS:
            return code
        raise DeviceRefused("the unit could not finish: %s" % protocol.response_text(code), code)

    def _read(self):
        assert self._repl is not None
        serial = self._repl.serial
        data = serial.read(max(1, serial.in_waiting))
        if not data:
            raise LinkLost(
                "the unit stopped answering while sending records: plug it in again and pull"
                " again (what arrived is kept)"
            )
        return data

    def _stream(self, from_seq, on_records):
        """Reads report lines until the end line and the raw REPL's two ends; passes each
        line's records on as it arrives. Returns the RACP code of the end line."""
        pending = bytearray()
        expect = from_seq
        received = 0
        while True:
            at = pending.find(b"\n")
            if at < 0:
                if _EOT in pending:  # the output ended without an end line: it raised
                    raise self._failed(self._error_output(pending), "sending records")
                pending += self._read()
                continue
            line = bytes(pending[:at]).rstrip(b"\r").decode("ascii", "replace")
            del pending[: at + 1]
            kind, first, second, data = usbwire.parse_line(line)
            if kind == usbwire.END:
                if second != received:
                    raise ValueError("the unit sent %d records, %d arrived" % (second, received))
                error = self._error_output(pending)
                if error:
                    raise self._failed(error, "sending records")
                return first
            if first != expect:
                raise ValueError("records from %d missing" % expect)
            records = usbwire.split_records(data, first, second)
            received += len(records)
            self.received += len(records)
            on_records(records)
            expect = second

    def _error_output(self, pending):
        """What follows the records: the rest of the output, then the error output, each
        ended by 0x04 (as mpremote's follow() reads them). Returns the error output."""
        while pending.count(_EOT) < 2:
            pending += self._read()
        _output, error, _rest = bytes(pending).split(_EOT, 2)
        return error.decode("utf-8", "replace")

# The unit's side of the USB serial pull (docs/protocol.md, "Over USB"): the laptop's
# `python -m host_sync pull --serial PORT` reaches the unit's REPL with mpremote's transport
# (interrupting the app if it runs) and calls these functions in the raw REPL:
#   import usb, board; usb.start(board)  -> the unit's Device Information (a dict)
#   usb.count(from_seq)                  -> stored records with seq >= from_seq
#   usb.report(from_seq)                 -> prints them, core.usbwire's lines
#   usb.ack(seq)                         -> "delete <= seq": the laptop has committed them
# The same answers as the Bluetooth RACP (core.protocol's response codes), from the same
# Store: the app registers its open one with attach(); without it (the app did not run: safe
# boot) start() opens the store where the app keeps it, with the board's storage. What the
# board module gives: STORE_ROOT, mount_storage(), device_id() (the serial the laptop keys
# records on, the same as over Bluetooth) and clock (ticks_ms).
# Nothing here acknowledges anything on its own: only ack(), which the laptop calls after
# its commit.
import sys

from version import FIRMWARE_VERSION, MANUFACTURER, MODEL

from core import protocol, record
from core.store import RecordsGone, Store, StoreError

STORE_DIR = "/log"  # under board.STORE_ROOT: where app.App keeps its Store

_store = None
_watchdog = None
_attached = False


def attach(store, watchdog=None):
    """The app's open Store (and its watchdog, fed while a pull runs: an interrupted app
    no longer feeds it). One line in the app once its store is open. attach(None) forgets
    the store, and closes one start() opened itself."""
    global _store, _watchdog, _attached
    if _store is not None and not _attached and _store is not store:
        _store.close()
    _store = store
    _watchdog = watchdog
    _attached = store is not None


def _feed():
    if _watchdog is not None:
        _watchdog.feed()


def start(board):
    """The first call of a pull. The attached Store is opened again, as after a storage
    error: the app was interrupted between any two of its steps, maybe inside a flush, so
    the store's view in RAM is read again from the flash (its unflushed records are written
    then, with their seqs). Without one, the board's storage is mounted and the store
    opened (counted as a boot of the store). Returns the Device Information, with
    app_stopped: whether an app was running (it is stopped now)."""
    global _store
    _feed()
    uptime_ms = board.clock.ticks_ms()  # the store's boot time: informative only
    if _store is None:
        board.mount_storage()
        store = Store(board.STORE_ROOT + STORE_DIR)
        store.open(uptime_ms)
        _store = store
    else:
        _store.open(uptime_ms)
    from core.dosage import RULESET  # the rules' tables load here, not at every boot

    return {
        "device_id": board.device_id(),
        "manufacturer": MANUFACTURER,
        "model": MODEL,
        "firmware": FIRMWARE_VERSION,
        "ruleset": RULESET,
        "app_stopped": _attached,
    }


def _opened():
    if _store is None:
        raise StoreError("usb.start() first")
    return _store


def count(from_seq):
    _feed()
    return _opened().count(max(from_seq, 1))


def report(from_seq, write=None):
    """Prints the stored records with seq >= from_seq (0: from the oldest), one line per
    read_into() buffer, then the end line with the RACP code: success, no records, records
    gone (from_seq was acknowledged and deleted) or procedure not completed (storage
    error). Returns the code."""
    from core import usbwire  # loaded by a pull only, not with the app that attaches

    store = _opened()
    write = write or sys.stdout.write
    buf = bytearray(usbwire.CHUNK_BYTES)
    sent = 0
    seq = from_seq
    code = protocol.RSP_SUCCESS
    try:
        while True:
            _feed()
            used, nxt = store.read_into(buf, seq)
            if used:
                write(usbwire.records_line(buf, used, seq, nxt))
                sent += record.count_records(buf, used)
            if not nxt:
                break
            seq = nxt
    except RecordsGone:
        code = protocol.RSP_RECORDS_GONE
    except StoreError:
        code = protocol.RSP_NOT_COMPLETED
    if code == protocol.RSP_SUCCESS and not sent:
        code = protocol.RSP_NO_RECORDS
    write(usbwire.end_line(code, sent))
    return code


def ack(seq):
    """The laptop has committed every record <= seq (RACP "delete <= seq"): success, or
    invalid operand for a seq beyond the last stored record."""
    _feed()
    try:
        _opened().ack(seq)
    except ValueError:
        return protocol.RSP_INVALID_OPERAND
    return protocol.RSP_SUCCESS

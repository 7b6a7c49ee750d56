# The device side of a sync, as synchronous state machines with time passed in (no radio, no
# clock): ble.py feeds them what its IRQs recorded and sends what they say; tests drive the
# same objects directly. docs/protocol.md has the protocol; in short:
#
# Sync: the Record Access Control Point over one link.
#   inputs   link_up / link_down / set_mtu / security (IRQ 28), control(data) (a control
#            point write), frame_sent / frame_enomem, indication_sent / indication_enomem /
#            indicate_done (IRQ 20), tick(t_ms)
#   outputs  next_frame(t_ms): the next record-data notification (a memoryview, valid until
#            frame_sent), next_indication(t_ms): the next control point indication,
#            disconnect_wanted: the link is stuck (a wait timed out), drop it
#   - One procedure at a time: a request while a report runs is answered "procedure not
#     completed" (the running one goes on); abort stops a report at once.
#   - Nothing streams and every request is answered RSP_NOT_AUTHENTICATED unless the link is
#     encrypted with MITM: NimBLE cannot protect a CCCD (docs/protocol.md).
#   - ENOMEM: the same frame again after a back-off; never skipped.
#   - "Delete <= N" is store.ack(N): the host has durably stored every record <= N.
#
# Pairing: the clinician's pairing window, the passkey to show and which secrets IRQ 30 may
# keep (only a bond made with a passkey shown on this device).
from micropython import const

from core import protocol, record
from core.store import RecordsGone, StoreError

IDLE = const(0)
REPORTING = const(1)

_MTU_DEFAULT = const(23)
_ATT_HEADER_BYTES = const(3)
_QUEUE = const(4)  # indications waiting: a running report's end, refusals, an abort's answer
# Waits, each with its end: an indication is confirmed within ATT's 30 s transaction timeout
# or the link is dropped; a notification that finds no free buffer for this long means the
# radio is stuck (the link is dropped too).
INDICATE_TIMEOUT_MS = const(30000)
STALL_TIMEOUT_MS = const(10000)
BACKOFF_MIN_MS = const(1)
BACKOFF_MAX_MS = const(64)


class Sync:
    def __init__(
        self,
        store,
        indicate_timeout_ms=INDICATE_TIMEOUT_MS,
        stall_timeout_ms=STALL_TIMEOUT_MS,
        payload_max=244,
    ):
        self.store = store
        self._indicate_timeout_ms = indicate_timeout_ms
        self._stall_timeout_ms = stall_timeout_ms
        self._framer = protocol.Framer(self._read, payload_max)
        self._queue = [bytearray(protocol.NUMBER_RESPONSE_BYTES) for _ in range(_QUEUE)]
        self._queue_len = [0] * _QUEUE
        self._head = 0  # next free place in the queue
        self._tail = 0  # the next indication to send
        self._reset_link()
        self.conn = None
        self.requests = 0  # control point writes answered (for tests and the log)
        self.refused = 0  # of those, refused for an unauthenticated link

    def _reset_link(self):
        self.encrypted = False
        self.authenticated = False
        self.mtu = _MTU_DEFAULT
        self.procedure = IDLE
        self.sent = 0  # records handed to notifications in this report
        self.total = 0  # records the report has to send (counted at its start)
        self.disconnect_wanted = False
        self._head = self._tail = 0
        self._in_flight = False
        self._in_flight_since = 0
        self._frame_retry_at = 0
        self._indicate_retry_at = 0
        self._backoff_ms = BACKOFF_MIN_MS
        self._progress_at = 0

    # --- the link --------------------------------------------------------------------------

    def link_up(self, conn, t_ms):
        self._reset_link()
        self.conn = conn
        self._progress_at = t_ms

    def link_down(self, conn):
        """The link is gone: whatever ran stops; nothing was acknowledged that the host did
        not ask for."""
        if conn == self.conn:
            self._reset_link()
            self.conn = None

    def set_mtu(self, conn, mtu):
        if conn == self.conn:
            self.mtu = mtu

    def security(self, conn, encrypted, authenticated):
        """IRQ 28. authenticated: the key was made with MITM protection (a passkey)."""
        if conn == self.conn:
            self.encrypted = bool(encrypted)
            self.authenticated = bool(encrypted) and bool(authenticated)

    @property
    def secure(self):
        return self.conn is not None and self.encrypted and self.authenticated

    @property
    def busy(self):
        """A procedure runs or an answer waits: the task should not sleep long."""
        return self.procedure != IDLE or self._head != self._tail

    # --- requests --------------------------------------------------------------------------

    def control(self, conn, data, t_ms):
        """A control point write (its bytes, copied). Queues the answer; may start a report."""
        if conn != self.conn:
            return
        self.requests += 1
        op = data[0] if len(data) else 0
        if not self.secure:
            self.refused += 1
            self._answer(op, protocol.RSP_NOT_AUTHENTICATED)
            return
        try:
            op, low, high = protocol.parse_request(data)
        except protocol.ProtocolError as err:
            self._answer(op, err.code)
            return
        if op == protocol.OP_ABORT:
            self._stop()
            self._answer(op, protocol.RSP_SUCCESS)
            return
        if self.procedure != IDLE:
            self._answer(op, protocol.RSP_NOT_COMPLETED)  # one procedure at a time
            return
        if op == protocol.OP_REPORT_NUMBER:
            self._count(low, high)
        elif op == protocol.OP_DELETE:
            self._delete(data[1], high)
        else:
            self._report(low, high, t_ms)

    def _count(self, low, high):
        try:
            n = self.store.count(low, high)
        except StoreError:
            self._answer(protocol.OP_REPORT_NUMBER, protocol.RSP_NOT_COMPLETED)
            return
        protocol.number_response(n, self._slot())
        self._queue_message(protocol.NUMBER_RESPONSE_BYTES)

    def _delete(self, operator, high):
        # Acknowledgement is a prefix: only "<= N" means something (the host has every
        # record up to N). "All" would let a host acknowledge records it never received.
        if operator != protocol.OPER_LE:
            self._answer(protocol.OP_DELETE, protocol.RSP_OPERATOR_NOT_SUPPORTED)
            return
        try:
            self.store.ack(high)
        except ValueError:  # beyond the last stored record
            self._answer(protocol.OP_DELETE, protocol.RSP_INVALID_OPERAND)
            return
        except StoreError:
            self._answer(protocol.OP_DELETE, protocol.RSP_NOT_COMPLETED)
            return
        self._answer(protocol.OP_DELETE, protocol.RSP_SUCCESS)

    def _report(self, low, high, t_ms):
        try:
            total = self.store.count(low, high)
        except StoreError:
            self._answer(protocol.OP_REPORT, protocol.RSP_NOT_COMPLETED)
            return
        if not total:
            self._answer(protocol.OP_REPORT, protocol.RSP_NO_RECORDS)
            return
        self.total = total
        self.sent = 0
        self._framer.set_payload_max(self.mtu - _ATT_HEADER_BYTES)
        self._framer.start(low, high)
        self.procedure = REPORTING
        self._progress_at = t_ms
        self._backoff_ms = BACKOFF_MIN_MS
        self._frame_retry_at = 0

    def _read(self, buf, from_seq, to_seq):
        # The Framer's source: the store's records, counted for the progress shown.
        used, nxt = self.store.read_into(buf, from_seq, to_seq)
        self.sent += record.count_records(buf, used)
        return used, nxt

    def _stop(self):
        self.procedure = IDLE

    def _finish(self, code):
        self.procedure = IDLE
        self._answer(protocol.OP_REPORT, code)

    # --- the record stream -------------------------------------------------------------------

    def next_frame(self, t_ms):
        """The next notification payload, or None (nothing to send now). The same frame comes
        back until frame_sent() says it went out."""
        if self.procedure != REPORTING or not self.secure or t_ms < self._frame_retry_at:
            return None
        try:
            frame = self._framer.frame()
        except RecordsGone:
            self._finish(protocol.RSP_RECORDS_GONE)
            return None
        except StoreError:
            self._finish(protocol.RSP_NOT_COMPLETED)
            return None
        if frame is None:
            self._finish(protocol.RSP_SUCCESS)
        return frame

    def frame_sent(self, n, t_ms):
        self._framer.sent(n)
        self._progress_at = t_ms
        self._backoff_ms = BACKOFF_MIN_MS

    def frame_enomem(self, t_ms):
        """gatts_notify found no free buffer: the same frame after a back-off."""
        self._frame_retry_at = t_ms + self._backoff_ms
        self._backoff_ms = min(2 * self._backoff_ms, BACKOFF_MAX_MS)
        if t_ms - self._progress_at >= self._stall_timeout_ms:
            self._finish(protocol.RSP_NOT_COMPLETED)
            self.disconnect_wanted = True

    def retry_in_ms(self, t_ms):
        """How long until a backed-off frame or indication may be tried again (0: now)."""
        wait = self._frame_retry_at - t_ms if self.procedure != IDLE else 0
        other = self._indicate_retry_at - t_ms if self._head != self._tail else 0
        if other > 0 and (wait <= 0 or other < wait):
            wait = other
        return max(wait, 0)

    # --- indications -------------------------------------------------------------------------

    def _slot(self):
        return self._queue[self._head % _QUEUE]

    def _answer(self, op, code):
        protocol.response(op, code, self._slot())
        self._queue_message(protocol.RESPONSE_BYTES)

    def _queue_message(self, nbytes):
        # The message was built in _slot(); beyond _QUEUE waiting answers a request is
        # dropped (a host that floods the control point gets no answer to the extra ones).
        if self._head - self._tail >= _QUEUE:
            return
        self._queue_len[self._head % _QUEUE] = nbytes
        self._head += 1

    def next_indication(self, t_ms):
        """The next control point indication (a memoryview), or None. One at a time: the
        next comes after indicate_done()."""
        if (
            self._in_flight
            or self._head == self._tail
            or self.conn is None
            or t_ms < self._indicate_retry_at
        ):
            return None
        i = self._tail % _QUEUE
        return memoryview(self._queue[i])[: self._queue_len[i]]

    def indication_sent(self, t_ms):
        self._in_flight = True
        self._in_flight_since = t_ms

    def indication_enomem(self, t_ms):
        self._indicate_retry_at = t_ms + BACKOFF_MAX_MS

    def indicate_done(self, conn, status):
        """IRQ 20: confirmed (status 0), or never will be (the link went)."""
        if conn == self.conn and self._in_flight:
            self._in_flight = False
            self._tail += 1

    def tick(self, t_ms):
        if self._in_flight and t_ms - self._in_flight_since >= self._indicate_timeout_ms:
            self.disconnect_wanted = True  # ATT: an unconfirmed indication ends the link


# --- pairing ---------------------------------------------------------------------------------

PASSKEY_ACTION_DISPLAY = const(3)
PASSKEYS = const(1000000)
# The window closes by itself; a clinician who needs longer opens it again.
PAIRING_WINDOW_S = const(120)
_SECRET_OUR_IRK = const(10)


class Pairing:
    """Pairing is accepted only while the clinician has opened the window on the device, and
    only with a passkey shown here (LE Secure Connections, MITM). Outside the window a
    request is refused: no passkey is shown or answered and the link is dropped."""

    def __init__(self):
        self.until_ms = 0  # the window is open while t_ms < until_ms
        self.passkey = None  # the number on the screen while a laptop pairs
        self._passkey_conn = None
        self._bond_kept = False  # IRQ 30 kept a bond for the pairing on the screen
        self.paired = 0  # laptops paired since boot
        self.refused = 0  # pairing requests refused (window closed, or not a passkey)

    def open(self, t_ms, seconds=PAIRING_WINDOW_S):
        self.until_ms = t_ms + 1000 * seconds

    def close(self):
        self.until_ms = 0

    def is_open(self, t_ms):
        return t_ms < self.until_ms

    def seconds_left(self, t_ms):
        return (self.until_ms - t_ms + 999) // 1000 if t_ms < self.until_ms else 0

    def request(self, conn, action, t_ms, random32):
        """IRQ 31: the passkey to show and answer with (random32: 32 random bits), or None:
        refuse (do not answer, drop the link)."""
        if action != PASSKEY_ACTION_DISPLAY or not self.is_open(t_ms):
            self.refused += 1
            return None
        self.passkey = random32 % PASSKEYS
        self._passkey_conn = conn
        self._bond_kept = False
        return self.passkey

    def may_store(self, sec_type):
        """IRQ 30: keep a new secret? The device's own IRK always; a bond only when a passkey
        was shown for the pairing now running (Just Works bonds nothing). A deletion is the
        caller's to allow."""
        if sec_type == _SECRET_OUR_IRK:
            return True
        if self._passkey_conn is None:
            return False
        self._bond_kept = True
        return True

    def security(self, conn, encrypted, authenticated):
        """IRQ 28. Returns True when the passkey on the screen should go (pairing ended)."""
        if conn != self._passkey_conn:
            return False
        self._end(encrypted and authenticated)
        return True

    def link_down(self, conn):
        """Returns True when a passkey was on the screen for that link. A bond kept for it
        counts as a pairing even if the link went before IRQ 28 was seen."""
        if conn != self._passkey_conn:
            return False
        self._end(self._bond_kept)
        return True

    def _end(self, paired):
        if paired:
            self.paired += 1
            self.close()  # one laptop per opening
        self.passkey = None
        self._passkey_conn = None
        self._bond_kept = False

# The GATT server: the device's side of the laptop sync on an injected bluetooth.BLE (board.py
# builds it; tests pass the simulator's). Thin glue around core.sync (the RACP procedures and
# the pairing window) and core.bonds (the stack's secrets); docs/protocol.md has the GATT
# layout, the security and the protocol.
#
# IRQ handlers only record: a few ints into a preallocated ring, a copy of a control point or
# Current Time write into preallocated buffers, a patient-list chunk into the receiver's
# buffer, and the secrets IRQs 29/30 answered from RAM. The task (run()) does the work:
# store reads, answers, notifications, the bond file, the status value. Every wait in it is a
# sleep of at most POLL_MS (or a back-off), so it never hangs on an event that does not come.
import asyncio
import os

from micropython import const
from version import FIRMWARE_VERSION, MANUFACTURER, MODEL

from core import protocol
from core.bonds import Bonds
from core.sync import Pairing, Sync

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_GATTS_READ_REQUEST = const(4)
_IRQ_GATTS_INDICATE_DONE = const(20)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IRQ_PASSKEY_ACTION = const(31)

_FLAG_READ = const(0x0002)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)
_FLAG_INDICATE = const(0x0020)
_FLAG_READ_ENCRYPTED = const(0x0200)
_FLAG_READ_AUTHENTICATED = const(0x0400)
_FLAG_WRITE_ENCRYPTED = const(0x1000)
_FLAG_WRITE_AUTHENTICATED = const(0x2000)
_WRITE_PROTECTED = const(_FLAG_WRITE | _FLAG_WRITE_ENCRYPTED | _FLAG_WRITE_AUTHENTICATED)
_READ_PROTECTED = const(_FLAG_READ | _FLAG_READ_ENCRYPTED | _FLAG_READ_AUTHENTICATED)

_IO_DISPLAY_ONLY = const(0)
_MTU = const(247)
_ENOMEM = const(12)
_ADV_INTERVAL_US = const(250000)
POLL_MS = const(10)  # idle: how often the task looks at what the IRQs recorded
_BURST = const(8)  # notifications sent before the task yields (the radio frees buffers)
_BOND_RETRY_MS = const(1000)

# The events IRQ handlers record: [kind, conn, x, y] per entry of a ring.
_EV_CONNECT = const(1)
_EV_DISCONNECT = const(2)
_EV_CONTROL = const(3)  # x: control slot, y: bytes
_EV_TIME = const(4)
_EV_PATIENTS = const(5)  # x: 1 a whole list to take, 2 a bad write
_EV_INDICATED = const(6)  # x: status
_EV_MTU = const(7)  # x: mtu
_EV_SECURITY = const(8)  # x: encrypted, y: authenticated
_EV_PASSKEY = const(9)  # x: action
_RING = const(32)
_CONTROL_SLOTS = const(4)
_CONTROL_BYTES = const(32)  # the control point's buffer: longer writes are cut, then refused
_PATIENT_CHUNK_BYTES = const(244)  # [u16 offset] + 242 bytes: one write at MTU 247


def monotonic_ms():
    """A millisecond clock that does not wrap: time.ticks_ms on a board (wraps at 2^30, so
    the differences are summed), time.monotonic on CPython (the simulator). The one place
    where the runtimes differ for this module."""
    import time

    ticks = getattr(time, "ticks_ms", None)
    diff = getattr(time, "ticks_diff", None)
    if ticks is None or diff is None:
        monotonic = getattr(time, "monotonic", None)
        return lambda: int(monotonic() * 1000)  # pyright: ignore[reportOptionalCall]
    state = [ticks(), 0]

    def now():
        t = ticks()
        state[1] += diff(t, state[0])
        state[0] = t
        return state[1]

    return now


def _random32():
    return int.from_bytes(os.urandom(4), "little")


class SyncServer:
    """The device's GATT server.

    ble: a bluetooth.BLE; uuid: bluetooth.UUID (board.py passes both: only it imports
    bluetooth). store: the open core.store.Store. device_id: the serial the laptop keys
    records on (hex of machine.unique_id() on a board). bonds_path: the bond file on flash.
    Callbacks, all called from the task, never from an IRQ:
      show_passkey(passkey or None): show the 6 digits (None: take them off the screen);
      on_time_set(wall_s): the laptop set the clock (the app keeps it, records EV_TIME_SET);
      on_patients(list_time_s, patients): a patient list arrived (core.protocol's dicts);
        raise ValueError or OSError to refuse it (the laptop is told).
    ticks_ms: the clock (ms, not wrapping; default monotonic_ms()); the t_ms given to
    open_pairing() is on it (now_ms()). random32: 32 random bits (default os.urandom).
    """

    def __init__(
        self,
        ble,
        store,
        uuid=None,
        device_id="",
        bonds_path="/bonds",
        show_passkey=None,
        on_time_set=None,
        on_patients=None,
        firmware_version=FIRMWARE_VERSION,
        model=MODEL,
        manufacturer=MANUFACTURER,
        ruleset=None,
        ticks_ms=None,
        random32=None,
    ):
        if uuid is None or not device_id:
            raise ValueError("SyncServer: uuid (bluetooth.UUID) and device_id are needed")
        if ruleset is None:
            from core.dosage import RULESET

            ruleset = RULESET
        self._ble = ble
        self._uuid = uuid
        self.store = store
        self.device_id = device_id
        # The name in the advertisement beside the service UUID (31 bytes in all): "AD-" and
        # the serial's last four characters, printed on the unit's label.
        self.name = "AD-" + device_id[-4:]
        self._info = (manufacturer, model, device_id, firmware_version, ruleset)
        self.ruleset = ruleset
        self._show_passkey = show_passkey
        self._on_time_set = on_time_set
        self._on_patients = on_patients
        self._clock = ticks_ms or monotonic_ms()
        self._random32 = random32 or _random32
        self.sync = Sync(store)
        self.pairing = Pairing()
        self.bonds = Bonds(bonds_path)
        try:
            self.bonds.load()
        except OSError:
            pass  # unreadable: no bonds (laptops pair again); the file is rewritten whole
        self._ring = [0] * (4 * _RING)
        self._head = 0
        self._tail = 0
        self._overflow = False
        control = [bytearray(_CONTROL_BYTES) for _ in range(_CONTROL_SLOTS)]
        self._control_mv = [memoryview(b) for b in control]
        self._control_head = 0
        self._control_tail = 0
        self._time = bytearray(protocol.CURRENT_TIME_BYTES)
        self._receiver = protocol.PatientListReceiver()
        self._advertising = False
        self._bonds_retry_at = 0
        self._status_stored = -1
        self._status_acked = -1
        self._status_flags = -1
        self._pairing_was_open = False
        self.clock_valid = False
        self.battery_pct = None
        self.visit_open = False
        self.storage_full = False
        self.ignored = 0  # writes ignored: not a valid time or list, or an insecure link
        self.started = False
        self._now = 0
        self._h_time = self._h_records = self._h_control = -1
        self._h_patients = self._h_status = -1

    # --- for the app and its screens --------------------------------------------------------

    def now_ms(self):
        return self._clock()

    def open_pairing(self, t_ms, seconds=120):
        """The clinician opens the pairing window for `seconds` (t_ms: now_ms())."""
        self.pairing.open(t_ms, seconds)

    def close_pairing(self, t_ms=None):
        self.pairing.close()

    def forget_laptops(self):
        """Forget every paired laptop (they must pair again); written by the task."""
        self.bonds.clear()

    def set_state(self, clock_valid=None, battery_pct=None, visit_open=None, storage_full=None):
        """What the status characteristic reports that the app knows (None: unchanged)."""
        if clock_valid is not None:
            self.clock_valid = clock_valid
        if battery_pct is not None:
            self.battery_pct = battery_pct
        if visit_open is not None:
            self.visit_open = visit_open
        if storage_full is not None:
            self.storage_full = storage_full
        self._status_flags = -1  # rewrite the status value

    @property
    def pairing_open(self):
        return self.pairing.is_open(self._now)

    @property
    def pairing_left_s(self):
        """Seconds until the pairing window closes (0: closed), for the screen."""
        return self.pairing.seconds_left(self._now)

    @property
    def passkey(self):
        return self.pairing.passkey

    @property
    def connected(self):
        return self.sync.conn is not None

    @property
    def syncing(self):
        return self.sync.procedure != 0

    @property
    def sent(self):
        return self.sync.sent

    @property
    def total(self):
        return self.sync.total

    # --- IRQ: record only -------------------------------------------------------------------

    def _push(self, kind, conn, x, y):
        if self._head - self._tail >= _RING:
            self._overflow = True
            return
        i = (self._head % _RING) * 4
        ring = self._ring
        ring[i] = kind
        ring[i + 1] = conn
        ring[i + 2] = x
        ring[i + 3] = y
        self._head += 1

    def _irq(self, event, data):
        if event == _IRQ_GATTS_WRITE:
            conn, handle = data
            if handle == self._h_control:
                self._record_control(conn)
            elif handle == self._h_patients:
                self._record_patients(conn)
            elif handle == self._h_time:
                value = self._ble.gatts_read(handle)
                if len(value) == protocol.CURRENT_TIME_BYTES:
                    self._time[:] = value
                    self._push(_EV_TIME, conn, 0, 0)
                else:
                    self.ignored += 1
        elif event == _IRQ_GET_SECRET:
            sec_type, index, key = data
            return self.bonds.get(sec_type, index, None if key is None else bytes(key))
        elif event == _IRQ_SET_SECRET:
            sec_type, key, value = data
            if value is not None and not self.pairing.may_store(sec_type):
                return False  # a bond not made with a passkey shown here is not kept
            return self.bonds.set(sec_type, key, value)
        elif event == _IRQ_GATTS_READ_REQUEST:
            return 0
        elif event == _IRQ_CENTRAL_CONNECT:
            self._push(_EV_CONNECT, data[0], 0, 0)
        elif event == _IRQ_CENTRAL_DISCONNECT:
            self._push(_EV_DISCONNECT, data[0], 0, 0)
        elif event == _IRQ_GATTS_INDICATE_DONE:
            self._push(_EV_INDICATED, data[0], data[2], 0)
        elif event == _IRQ_MTU_EXCHANGED:
            self._push(_EV_MTU, data[0], data[1], 0)
        elif event == _IRQ_ENCRYPTION_UPDATE:
            self._push(_EV_SECURITY, data[0], 1 if data[1] else 0, 1 if data[2] else 0)
        elif event == _IRQ_PASSKEY_ACTION:
            self._push(_EV_PASSKEY, data[0], data[1], 0)
        return None

    def _record_control(self, conn):
        value = self._ble.gatts_read(self._h_control)
        if self._control_head - self._control_tail >= _CONTROL_SLOTS:
            self.ignored += 1  # four requests unanswered: the extra one is ignored
            return
        slot = self._control_head % _CONTROL_SLOTS
        n = min(len(value), _CONTROL_BYTES)
        self._control_mv[slot][:n] = memoryview(value)[:n]
        self._control_head += 1
        self._push(_EV_CONTROL, conn, slot, n)

    def _record_patients(self, conn):
        try:
            whole = self._receiver.put(self._ble.gatts_read(self._h_patients))
        except protocol.ProtocolError:
            self._push(_EV_PATIENTS, conn, 2, 0)
            return
        if whole:
            self._push(_EV_PATIENTS, conn, 1, 0)

    # --- the task ---------------------------------------------------------------------------

    def start(self):
        """Registers the services and starts advertising (run() calls it first)."""
        ble = self._ble
        uuid = self._uuid
        ble.irq(self._irq)
        ble.config(gap_name=self.name, mtu=_MTU, bond=True, mitm=True, le_secure=True)
        ble.config(io=_IO_DISPLAY_ONLY)
        ble.active(True)
        info = (
            uuid(protocol.DEVICE_INFORMATION_UUID16),
            (
                (uuid(protocol.MANUFACTURER_UUID16), _FLAG_READ),
                (uuid(protocol.MODEL_UUID16), _FLAG_READ),
                (uuid(protocol.SERIAL_UUID16), _FLAG_READ),
                (uuid(protocol.FIRMWARE_UUID16), _FLAG_READ),
                (uuid(protocol.SOFTWARE_UUID16), _FLAG_READ),
            ),
        )
        clock = (
            uuid(protocol.CURRENT_TIME_SERVICE_UUID16),
            ((uuid(protocol.CURRENT_TIME_UUID16), _WRITE_PROTECTED),),
        )
        records = (
            uuid(protocol.SERVICE_UUID),
            (
                (uuid(protocol.RECORDS_UUID), _FLAG_NOTIFY),
                (uuid(protocol.CONTROL_POINT_UUID), _WRITE_PROTECTED | _FLAG_INDICATE),
                (uuid(protocol.PATIENTS_UUID), _WRITE_PROTECTED | _READ_PROTECTED),
                (uuid(protocol.STATUS_UUID), _FLAG_READ),
            ),
        )
        handles = ble.gatts_register_services((info, clock, records))
        for i in range(len(self._info)):  # (MicroPython's zip has no strict=)
            ble.gatts_write(handles[0][i], self._info[i].encode())
        self._h_time = handles[1][0]
        self._h_records, self._h_control, self._h_patients, self._h_status = handles[2]
        ble.gatts_set_buffer(self._h_control, _CONTROL_BYTES)
        ble.gatts_set_buffer(self._h_patients, _PATIENT_CHUNK_BYTES)
        ble.gatts_write(self._h_patients, protocol.patients_result(protocol.PATIENTS_NONE))
        service = bytes(uuid(protocol.SERVICE_UUID))
        name = self.name.encode()
        self._adv = (
            b"\x02\x01\x06"  # flags: general discoverable, no BR/EDR
            + bytes((len(service) + 1, 0x07))  # complete list of 128-bit service UUIDs
            + service
            + bytes((len(name) + 1, 0x09))  # complete local name
            + name
        )
        self.started = True
        self._now = self._clock()
        self._service(self._now)

    async def run(self):
        """The BLE task: run it beside the sampling and UI tasks (asyncio.create_task)."""
        if not self.started:
            self.start()
        while True:
            now = self._clock()
            sent = self._service(now)
            if sent or self._head != self._tail:
                await asyncio.sleep(0)
                continue
            wait_ms = self.sync.retry_in_ms(now) or POLL_MS
            await asyncio.sleep(min(wait_ms, POLL_MS) / 1000)

    def _service(self, now):
        """One pass: apply what the IRQs recorded, send what is due, keep the rest current.
        Returns how many notifications went out."""
        self._now = now
        self._drain(now)
        self.sync.tick(now)
        sent = self._send(now)
        self._housekeeping(now)
        return sent

    def _drain(self, now):
        ring = self._ring
        sync = self.sync
        while self._tail != self._head:
            i = (self._tail % _RING) * 4
            kind, conn, x, y = ring[i], ring[i + 1], ring[i + 2], ring[i + 3]
            self._tail += 1
            if kind == _EV_CONTROL:
                self._control_tail += 1
                sync.control(conn, self._control_mv[x][:y], now)
            elif kind == _EV_CONNECT:
                if sync.conn is None:
                    sync.link_up(conn, now)
                    self._advertising = False
                else:
                    self._disconnect(conn)  # one laptop at a time
            elif kind == _EV_DISCONNECT:
                if conn == sync.conn:
                    sync.link_down(conn)
                    self._advertising = False  # NimBLE stopped it at connect: start again
                if self.pairing.link_down(conn):
                    self._passkey_shown(None)
            elif kind == _EV_INDICATED:
                sync.indicate_done(conn, x)
            elif kind == _EV_MTU:
                sync.set_mtu(conn, x)
            elif kind == _EV_SECURITY:
                sync.security(conn, x, y)
                if self.pairing.security(conn, x, y):
                    self._passkey_shown(None)
                self._status_flags = -1
            elif kind == _EV_PASSKEY:
                passkey = self.pairing.request(conn, x, now, self._random32())
                if passkey is None:
                    self._disconnect(conn)  # window closed: no passkey, no answer, no link
                else:
                    self._passkey_shown(passkey)
                    self._ble.gap_passkey(conn, x, passkey)
            elif kind == _EV_TIME:
                self._time_written(conn)
            elif kind == _EV_PATIENTS:
                self._patients_written(conn, x)
        if self._overflow:
            # Events were lost: what the link's state is cannot be known. Start it over.
            self._overflow = False
            if sync.conn is not None:
                self._disconnect(sync.conn)

    def _passkey_shown(self, passkey):
        if self._show_passkey is not None:
            self._show_passkey(passkey)

    def _disconnect(self, conn):
        try:
            self._ble.gap_disconnect(conn)
        except OSError:
            pass  # already gone

    def _time_written(self, conn):
        if conn != self.sync.conn or not self.sync.secure:
            self.ignored += 1
            return
        try:
            wall_s = protocol.parse_current_time(self._time)
        except protocol.ProtocolError:
            self.ignored += 1
            return
        if self._on_time_set is not None:
            self._on_time_set(wall_s)

    def _patients_written(self, conn, what):
        result = protocol.patients_result(protocol.PATIENTS_REFUSED)
        try:
            parsed = self._receiver.take() if what == 1 else None
        except protocol.ProtocolError:
            parsed = None
        if parsed is not None and conn == self.sync.conn and self.sync.secure:
            list_time_s, patients = parsed
            try:
                if self._on_patients is not None:
                    self._on_patients(list_time_s, patients)
                result = protocol.patients_result(
                    protocol.PATIENTS_ACCEPTED, list_time_s, len(patients)
                )
            except (ValueError, OSError):
                pass
        else:
            self.ignored += 1
        self._ble.gatts_write(self._h_patients, result)

    def _send(self, now):
        sync = self.sync
        conn = sync.conn
        if conn is None:
            return 0
        self._indicate(conn, now)
        sent = 0
        while sent < _BURST:
            frame = sync.next_frame(now)
            if frame is None:
                break
            try:
                self._ble.gatts_notify(conn, self._h_records, frame)
            except OSError:
                # ENOMEM: no buffer free until the radio sends one; any other error: the
                # link is going (IRQ 2 follows). Either way the same frame waits.
                sync.frame_enomem(now)
                break
            sync.frame_sent(len(frame), now)
            sent += 1
        if not sent:
            self._indicate(conn, now)  # a report that ended in this pass: its answer now
        return sent

    def _indicate(self, conn, now):
        indication = self.sync.next_indication(now)
        if indication is None:
            return
        try:
            self._ble.gatts_indicate(conn, self._h_control, indication)
        except OSError as err:
            if err.args[0] == _ENOMEM:
                self.sync.indication_enomem(now)
            return  # any other error: the link is going; IRQ 2 follows
        self.sync.indication_sent(now)

    def _housekeeping(self, now):
        sync = self.sync
        if sync.disconnect_wanted and sync.conn is not None:
            sync.disconnect_wanted = False
            self._disconnect(sync.conn)
        if self.bonds.dirty and now >= self._bonds_retry_at:
            try:
                self.bonds.save()
            except OSError:
                self._bonds_retry_at = now + _BOND_RETRY_MS  # kept in RAM; written later
        if sync.conn is None and not self._advertising:
            try:
                self._ble.gap_advertise(_ADV_INTERVAL_US, self._adv)
                self._advertising = True
            except OSError:
                pass
        self._update_status(now)

    def _update_status(self, now):
        store = self.store
        pairing_open = self.pairing.is_open(now)
        flags = (
            (1 if pairing_open else 0)
            | (2 if self.clock_valid else 0)
            | (4 if self.storage_full else 0)
            | (8 if self.visit_open else 0)
        )
        if (
            flags == self._status_flags
            and store.stored_seq == self._status_stored
            and store.acked_seq == self._status_acked
        ):
            return
        self._status_flags = flags
        self._status_stored = store.stored_seq
        self._status_acked = store.acked_seq
        stats = store.stats()
        free = stats["free_bytes"]
        unacked = stats["unacked"]
        value = protocol.status(
            stats["records"],
            0 if unacked is None else unacked,
            store.stored_seq,
            store.acked_seq,
            None if free is None else free // 1024,
            self.battery_pct,
            self.ruleset,
            clock_valid=self.clock_valid,
            pairing_open=pairing_open,
            storage_full=self.storage_full,
            visit_open=self.visit_open,
        )
        self._ble.gatts_write(self._h_status, value)

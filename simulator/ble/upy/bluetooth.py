"""MicroPython's `bluetooth` module for the simulator: the subset a secure peripheral uses.

One implementation of the API's semantics for both runtimes. The value database, write
buffers, IRQ dispatch, the NimBLE-like ENOMEM credit window and the connection table live
here; a *radio* below carries the traffic:

- on CPython, in process: `simulator.ble.peripheral.Peripheral`, a Bumble `Device` on a
  `LocalLink` (the rig sets `_radio_factory`, or passes the radio to `BLE(radio)`);
- on the `micropython` interpreter: `_SocketRadio` below, JSON lines over TCP to the bridge
  (`simulator.ble.bridge`), address in the environment variable ALGODOSE_BLE_BRIDGE.

Supported: BLE() (one instance per radio, as the board's singleton), active, config (mac,
addr_mode, gap_name, mtu, bond, mitm, le_secure, io), irq, gap_advertise, gap_disconnect,
gap_pair, gap_passkey, gatts_register_services, gatts_read, gatts_write, gatts_notify,
gatts_indicate, gatts_set_buffer; UUID; FLAG_*. The central role, L2CAP and HCI raise
NotImplementedError. docs/ble-simulator.md says what is modelled and what is not.
"""

import errno

import micropython
from micropython import const

FLAG_READ = const(0x0002)
FLAG_WRITE_NO_RESPONSE = const(0x0004)
FLAG_WRITE = const(0x0008)
FLAG_NOTIFY = const(0x0010)
FLAG_INDICATE = const(0x0020)

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_GATTS_READ_REQUEST = const(4)
_IRQ_GATTS_INDICATE_DONE = const(20)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_CONNECTION_UPDATE = const(27)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IRQ_PASSKEY_ACTION = const(31)

# What a characteristic value holds before gatts_set_buffer grows it (MicroPython's
# MP_BLUETOOTH_DEFAULT_ATTR_LEN): a longer remote write is cut to this silently.
_DEFAULT_BUFFER_LEN = const(20)
# NimBLE's syscfg BLE_ATT_PREFERRED_MTU, what config('mtu') reports before it is set.
_DEFAULT_MTU = const(256)
_REPLY_TIMEOUT_MS = const(10000)
# Notifications/indications in flight before gatts_notify raises ENOMEM: MicroPython's
# NimBLE has about 12 ACL mbufs (BLE.md); a credit comes back when the radio has sent one.
_NIMBLE_MBUF_CREDITS = const(12)

# Each event the radio reports, as (IRQ number, argument names carrying an address):
# the radio speaks names, the firmware sees MicroPython's numbers and tuple shapes.
_EVENT_IRQ = {
    "connect": _IRQ_CENTRAL_CONNECT,
    "disconnect": _IRQ_CENTRAL_DISCONNECT,
    "indicate_done": _IRQ_GATTS_INDICATE_DONE,
    "mtu": _IRQ_MTU_EXCHANGED,
    "conn_update": _IRQ_CONNECTION_UPDATE,
    "encryption": _IRQ_ENCRYPTION_UPDATE,
    "passkey": _IRQ_PASSKEY_ACTION,
}

# The radio the next BLE() binds to when none is passed: the simulator's in-process rig
# sets this on CPython; None means "the socket bridge" (the micropython interpreter).
_radio_factory = None
# One _State per radio, so BLE() twice gives the same stack, as on a board.
_STATES = {}


class UUID:
    """A 16-bit or 128-bit UUID; `bytes(uuid)` gives its little-endian bytes, as on a board."""

    def __init__(self, value):
        if type(value) is int:
            if value < 0 or value > 0xFFFF:
                raise ValueError("invalid UUID")
            self._le = bytes((value & 0xFF, value >> 8))
        elif isinstance(value, str):
            text = value.replace("-", "")
            if len(text) != 32:
                raise ValueError("invalid UUID")
            self._le = bytes(reversed(bytes.fromhex(text)))
        elif isinstance(value, UUID):
            self._le = value._le
        else:
            raw = bytes(value)  # a memoryview from an IRQ, or bytes: little-endian
            if len(raw) not in (2, 4, 16):
                raise ValueError("invalid UUID")
            self._le = raw

    def __iter__(self):  # MicroPython classes cannot offer the buffer protocol
        return iter(self._le)

    def __len__(self):
        return len(self._le)

    def __eq__(self, other):
        return isinstance(other, UUID) and other._le == self._le

    def __hash__(self):
        return hash(self._le)

    def __repr__(self):
        if len(self._le) == 2:
            return "UUID(0x%04x)" % (self._le[0] | self._le[1] << 8)
        h = bytes(reversed(self._le)).hex()
        return "UUID('%s-%s-%s-%s-%s')" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


class _Value:
    """One attribute's local value, as MicroPython's gatts_db entry."""

    def __init__(self):
        self.data = b""
        self.capacity = _DEFAULT_BUFFER_LEN
        self.append = False


class _State:
    """Everything one radio's BLE() shares: the board has one controller and one stack."""

    def __init__(self, radio):
        self.radio = radio
        self.active = False
        self.handler = None
        self.values = {}
        self.connections = {}  # conn_handle -> (addr_type, addr bytes)
        self.config = {
            "gap_name": "MPY NIMBLE",
            "mtu": _DEFAULT_MTU,
            "bond": False,
            "mitm": False,
            "le_secure": False,
            "io": 3,
            "addr_mode": 1,
        }
        self.mac = None
        self.adv = [None, None]
        # Test hooks (set by the simulator, never by firmware): NimBLE's mbuf pool as a
        # window of notifications/indications in flight, and a forced ENOMEM.
        self.credits = _NIMBLE_MBUF_CREDITS
        self.enomem_every = 0
        self.notify_calls = 0
        self.addr_buf = bytearray(6)

    # -- what the radio reports ------------------------------------------------------
    def on_event(self, name, args):
        """A radio event: update the local state, then run the firmware's IRQ handler."""
        if name == "credit":
            if self.credits is not None:
                self.credits += args[0]
            return None
        if name == "sim":
            self._sim(args[0])
            return None
        if name == "write":
            conn, handle, data = args
            value = self.values.get(handle)
            if value is None:
                return None
            if value.append:
                room = value.capacity - len(value.data)
                value.data = value.data + bytes(data[: max(room, 0)])
            else:
                value.data = bytes(data[: value.capacity])
            return self._irq(_IRQ_GATTS_WRITE, (conn, handle))
        if name == "read":
            conn, handle = args
            value = self.values.get(handle)
            if value is None:
                return (0x0A, b"")  # attribute not found
            status = self._irq(_IRQ_GATTS_READ_REQUEST, (conn, handle))
            if status:
                return (status, b"")
            return (0, self.values[handle].data)
        if name == "get_secret":
            sec_type, index, key = args
            result = self._irq_with_buffers(_IRQ_GET_SECRET, (sec_type, index), (key,))
            return None if result is None else bytes(result)
        if name == "set_secret":
            sec_type, key, value = args
            return bool(self._irq_with_buffers(_IRQ_SET_SECRET, (sec_type,), (key, value)))
        irq = _EVENT_IRQ[name]
        if irq in (_IRQ_CENTRAL_CONNECT, _IRQ_CENTRAL_DISCONNECT):
            conn, addr_type, addr = args
            if irq == _IRQ_CENTRAL_CONNECT:
                self.connections[conn] = (addr_type, bytes(addr))
            else:
                self.connections.pop(conn, None)
            buf = self.addr_buf
            buf[:] = addr
            view = memoryview(buf)
            try:
                return self._irq(irq, (conn, addr_type, view))
            finally:
                _invalidate(view, buf)
        return self._irq(irq, tuple(args))

    def _sim(self, settings):
        if "credits" in settings:
            self.credits = settings["credits"]
        if "enomem_every" in settings:
            self.enomem_every = settings["enomem_every"]
            self.notify_calls = 0

    def _irq(self, event, data):
        if self.handler is None:
            return None
        return self.handler(event, data)

    def _irq_with_buffers(self, event, head, buffers):
        # Keys and values are memoryviews into the stack's buffer on a board, valid only
        # while the handler runs: copy them there, as the firmware must.
        bufs = [None if b is None else bytearray(b) for b in buffers]
        views = [None if b is None else memoryview(b) for b in bufs]
        try:
            return self._irq(event, head + tuple(views))
        finally:
            for i in range(len(bufs)):
                if bufs[i] is not None:
                    _invalidate(views[i], bufs[i])


def _invalidate(view, buf):
    # What a handler kept past its return reads zeros here (MicroPython) or raises
    # (CPython releases the view): a stale ringbuffer on the board reads garbage.
    for i in range(len(buf)):
        buf[i] = 0
    release = getattr(view, "release", None)
    if release is not None:
        release()


class BLE:
    """MicroPython's bluetooth.BLE, peripheral role. BLE() returns the board's one stack."""

    def __init__(self, radio=None):
        if radio is None:
            radio = _radio_factory() if _radio_factory is not None else _SocketRadio.shared()
        state = _STATES.get(id(radio))
        if state is None or state.radio is not radio:
            state = _State(radio)
            _STATES[id(radio)] = state
            radio.attach(state)
        self._s = state

    def _check_active(self):
        if not self._s.active:
            raise OSError(errno.ENODEV)

    def active(self, active=None):
        s = self._s
        if active is None:
            return s.active
        active = bool(active)
        if active and not s.active:
            s.mac = s.radio.activate(s.config)
            s.active = True
        elif not active and s.active:
            s.radio.deactivate()
            s.active = False
            s.connections.clear()
        return s.active

    def config(self, *args, **kwargs):
        s = self._s
        if args:
            if len(args) != 1 or kwargs:
                raise TypeError("config takes one name to read, or keywords to set")
            name = args[0]
            if name == "mac":
                self._check_active()
                return s.mac
            if name in s.config:
                return s.config[name]
            raise ValueError("unknown config param")
        for name, value in kwargs.items():
            if name not in s.config:
                raise ValueError("unknown config param")
            s.config[name] = value
        if s.active and kwargs:
            s.radio.configure(kwargs)
        return None

    def irq(self, handler):
        self._s.handler = handler
        self._s.radio.irq_registered()

    def gap_advertise(self, interval_us, adv_data=None, *, resp_data=None, connectable=True):
        self._check_active()
        s = self._s
        if adv_data is not None:
            s.adv[0] = bytes(adv_data)
        if resp_data is not None:
            s.adv[1] = bytes(resp_data)
        if interval_us is None:
            s.radio.advertise(None, None, None, connectable)
            return
        s.radio.advertise(interval_us, s.adv[0] or b"", s.adv[1] or b"", bool(connectable))

    def gap_disconnect(self, conn_handle):
        self._check_active()
        if conn_handle not in self._s.connections:
            return False
        self._s.radio.disconnect(conn_handle)
        return True

    def gap_pair(self, conn_handle):
        self._check_active()
        if conn_handle not in self._s.connections:
            raise OSError(errno.ENOTCONN)
        self._s.radio.pair(conn_handle)

    def gap_passkey(self, conn_handle, action, passkey):
        self._check_active()
        if action not in (2, 3, 4):
            raise OSError(errno.EINVAL)
        if conn_handle not in self._s.connections:
            raise OSError(errno.ENOTCONN)
        self._s.radio.passkey(conn_handle, action, int(passkey))

    def gatts_register_services(self, services_definition):
        self._check_active()
        s = self._s
        spec = []
        for service in services_definition:
            service_uuid, characteristics = service[0], service[1]
            chars = []
            for char in characteristics:
                descriptors = char[2] if len(char) > 2 else ()
                chars.append(
                    [
                        bytes(char[0]).hex(),
                        char[1],
                        [[bytes(d[0]).hex(), d[1]] for d in descriptors],
                    ]
                )
            spec.append([bytes(service_uuid).hex(), chars])
        handles = s.radio.register(spec)
        s.values = {}
        result = []
        for service_handles in handles:
            for handle in service_handles:
                s.values[handle] = _Value()
            result.append(tuple(service_handles))
        return tuple(result)

    def _value(self, value_handle):
        value = self._s.values.get(value_handle)
        if value is None:
            raise OSError(errno.ENOENT)
        return value

    def gatts_read(self, value_handle):
        self._check_active()
        value = self._value(value_handle)
        data = value.data
        if value.append:
            value.data = b""
        return data

    def gatts_write(self, value_handle, data, send_update=False):
        self._check_active()
        value = self._value(value_handle)
        value.data = bytes(data)
        if len(value.data) > value.capacity:
            value.capacity = len(value.data)
        if send_update:
            for conn in list(self._s.connections):
                self._s.radio.notify(conn, value_handle, value.data, True)

    def gatts_set_buffer(self, value_handle, length, append=False):
        self._check_active()
        value = self._value(value_handle)
        value.capacity = length
        value.append = bool(append)
        value.data = value.data[:length]

    def _send_check(self, conn_handle, value_handle):
        self._check_active()
        s = self._s
        if conn_handle not in s.connections:
            raise OSError(errno.ENOTCONN)
        value = self._value(value_handle)
        if s.credits is not None:
            if s.credits <= 0:
                raise OSError(errno.ENOMEM)  # NimBLE: no mbuf free until the radio sends
            s.credits -= 1
        return value

    def gatts_notify(self, conn_handle, value_handle, data=None):
        s = self._s
        s.notify_calls += 1
        if s.enomem_every and s.notify_calls % s.enomem_every == 0:
            self._check_active()
            raise OSError(errno.ENOMEM)
        value = self._send_check(conn_handle, value_handle)
        s.radio.notify(conn_handle, value_handle, value.data if data is None else bytes(data))

    def gatts_indicate(self, conn_handle, value_handle, data=None):
        value = self._send_check(conn_handle, value_handle)
        payload = value.data if data is None else bytes(data)
        self._s.radio.indicate(conn_handle, value_handle, payload)

    def _unsupported(self, *args, **kwargs):
        raise NotImplementedError("the simulator models the peripheral role only")

    gap_scan = gap_connect = _unsupported
    gattc_discover_services = gattc_discover_characteristics = _unsupported
    gattc_discover_descriptors = gattc_read = gattc_write = _unsupported
    gattc_exchange_mtu = l2cap_listen = l2cap_connect = l2cap_disconnect = _unsupported
    l2cap_send = l2cap_recvinto = hci_cmd = _unsupported


# ---------------------------------------------------------------------------------------
# The micropython side of the socket bridge (simulator/ble/bridge.py is the other side).
# Wire: one JSON array per line; bytes travel as {"b": hex}. Calls that need an answer
# carry an id and get ["ret", id, result]; the bridge's requests (read, secrets) likewise
# get ["reply", id, result]. Everything else is fire-and-forget, in order.
_BYTES_KEY = "$b"


def _encode(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {_BYTES_KEY: bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


def _decode(value):
    if isinstance(value, dict):
        if _BYTES_KEY in value:
            return bytes.fromhex(value[_BYTES_KEY])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


class _SocketRadio:
    _shared = None

    @classmethod
    def shared(cls):
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def __init__(self):
        import _thread
        import json
        import os
        import socket

        self._json = json
        self._socket = socket
        where = os.getenv("ALGODOSE_BLE_BRIDGE")
        if not where:
            raise OSError(errno.ENODEV)  # no bridge: as a board without a radio
        host, port = where.rsplit(":", 1)
        self._sock = socket.socket()
        self._sock.connect(socket.getaddrinfo(host, int(port))[0][-1])
        # The unix port's socket is its own stream; CPython's needs file objects.
        if hasattr(self._sock, "readline"):
            self._rfile = self._wfile = self._sock
        else:
            self._rfile = self._sock.makefile("rb")
            self._wfile = self._sock.makefile("wb", buffering=0)
        self._state = None
        self._lock = _thread.allocate_lock()
        self._inbox = []
        self._replies = {}
        self._next_id = 1
        self._pending = False
        self._wake = None
        self._wake_tx = None
        self._wake_addr = None
        self._closed = False
        _thread.start_new_thread(self._reader, ())

    def attach(self, state):
        self._state = state

    # -- the reader thread: queue, then let the main thread run the handlers ----------
    def _reader(self):
        while True:
            line = self._rfile.readline()
            try:
                msg = _decode(self._json.loads(line)) if line else ["event", "closed", []]
            except ValueError:
                continue  # not a message of ours: drop it, keep the radio alive
            self._lock.acquire()
            if msg[0] == "ret":
                self._replies[msg[1]] = msg[2]
            else:
                self._inbox.append(msg)
            self._lock.release()
            if msg[0] != "ret":
                self._kick()
            if not line:
                return

    def _kick(self):
        # Runs on the reader thread: schedule the pump (the board's IRQ path), then wake
        # the asyncio poller, in that order, so the wake never precedes the work.
        if self._pending:
            return
        self._pending = True
        try:
            micropython.schedule(self._pump, None)
        except RuntimeError:  # schedule queue full: the next event retries
            self._pending = False
            return
        if self._wake_addr is not None:
            try:
                self._wake_tx.sendto(b"!", self._wake_addr)
            except OSError:
                pass

    def _pump(self, _arg):
        self._pending = False
        while True:
            self._lock.acquire()
            msg = self._inbox.pop(0) if self._inbox else None
            self._lock.release()
            if msg is None:
                return
            kind = msg[0]
            if kind == "event" and msg[1] == "closed":
                self._closed = True  # the bridge went away: the radio is dead from now on
                continue
            try:
                if kind == "req":
                    self._send(["reply", msg[1], self._state.on_event(msg[2], msg[3])])
                else:
                    self._state.on_event(msg[1], msg[2])
            except Exception as e:  # as on a board: the handler's error is printed, the
                import sys  # stack goes on delivering events

                sys.print_exception(e)

    def irq_registered(self):
        # Once a handler exists, and if the firmware uses asyncio, keep a task reading the
        # wake socket: the poller then returns as soon as an event is scheduled (BLE.md:
        # otherwise an IRQ waits for the next timer, up to 1 s).
        if self._wake is not None:
            return
        try:
            import asyncio
        except ImportError:
            return
        socket = self._socket
        # The unix port's sockets have no getsockname: the bridge names a free port.
        port = self._call("free_udp_port")
        self._wake_addr = socket.getaddrinfo("127.0.0.1", port)[0][-1]
        self._wake = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._wake.bind(self._wake_addr)
        # Non-blocking: a blocking read(n) on the unix port waits for n bytes, i.e. for
        # further datagrams, and would hold the whole loop.
        self._wake.setblocking(False)
        self._wake_tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        async def drain(sock):
            reader = asyncio.StreamReader(sock)
            while True:
                await reader.read(64)

        asyncio.create_task(drain(self._wake))

    # -- calls --------------------------------------------------------------------------
    def _send(self, msg):
        if self._closed:
            raise OSError(errno.ENODEV)
        self._wfile.write((self._json.dumps(_encode(msg)) + "\n").encode())

    def _call(self, op, *args):
        import time

        call_id = self._next_id
        self._next_id += 1
        self._send(["call", call_id, op, list(args)])
        deadline = time.ticks_add(time.ticks_ms(), _REPLY_TIMEOUT_MS)
        while True:
            self._lock.acquire()
            done = call_id in self._replies
            result = self._replies.pop(call_id, None)
            self._lock.release()
            if done:
                return result
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                raise OSError(errno.ETIMEDOUT)
            time.sleep_ms(1)

    def activate(self, config):
        addr_type, addr = self._call("activate", config)
        return (addr_type, bytes(addr))

    def deactivate(self):
        self._call("deactivate")

    def _op(self, op, *args):
        self._send(["op", op, list(args)])

    def configure(self, changes):
        self._op("configure", changes)

    def register(self, spec):
        return self._call("register", spec)

    def advertise(self, interval_us, adv_data, resp_data, connectable):
        self._op("advertise", interval_us, adv_data, resp_data, connectable)

    def notify(self, conn, handle, data, update=False):
        self._op("notify", conn, handle, data, update)

    def indicate(self, conn, handle, data):
        self._op("indicate", conn, handle, data)

    def disconnect(self, conn):
        self._op("disconnect", conn)

    def pair(self, conn):
        self._op("pair", conn)

    def passkey(self, conn, action, passkey):
        self._op("passkey", conn, action, passkey)

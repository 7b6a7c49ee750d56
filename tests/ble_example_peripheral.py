"""A small secure peripheral written against MicroPython's `bluetooth` API (a test fixture,
not product code): it runs unchanged in process on CPython and on the `micropython`
interpreter through the bridge, so tests/test_ble_sim.py can drive both the same way.

- STREAM (notify): records of 32 bytes (u32 sequence + pattern), packed as many
  per notification as the MTU allows; ENOMEM from gatts_notify -> yield and retry.
- COMMAND (write with or without response, 64-byte buffer): "stream N", "fill N",
  "burst N", "indicate", "secure" (gap_pair: the peripheral asks the central to pair).
- SECRET (read, READ_AUTHENTICATED): a fixed value only a MITM-paired central may read.
- EVENTS (indicate): "indicate" sends one indication and logs IRQ 20's status.
- Display-only, LE Secure Connections, MITM, bonding: IRQ 31 answered with PASSKEY;
  secrets (IRQ 29/30) kept in a JSON file, so a restarted process keeps its bonds.

Every event is logged as one line (stdout on micropython; `self.log` in process).
micropython usage: micropython ble_example_peripheral.py SECRETS.json PASSKEY
"""

import asyncio
import errno
import json

from micropython import const

_IRQ_CENTRAL_CONNECT = const(1)
_IRQ_CENTRAL_DISCONNECT = const(2)
_IRQ_GATTS_WRITE = const(3)
_IRQ_GATTS_INDICATE_DONE = const(20)
_IRQ_MTU_EXCHANGED = const(21)
_IRQ_CONNECTION_UPDATE = const(27)
_IRQ_ENCRYPTION_UPDATE = const(28)
_IRQ_GET_SECRET = const(29)
_IRQ_SET_SECRET = const(30)
_IRQ_PASSKEY_ACTION = const(31)

_FLAG_READ = const(0x0002)
_FLAG_WRITE_NO_RESPONSE = const(0x0004)
_FLAG_WRITE = const(0x0008)
_FLAG_NOTIFY = const(0x0010)
_FLAG_INDICATE = const(0x0020)
_FLAG_READ_AUTHENTICATED = const(0x0400)

_PASSKEY_ACTION_DISPLAY = const(3)
_IO_DISPLAY_ONLY = const(0)
_ADV_INTERVAL_US = const(100000)
RECORD_SIZE = const(32)

SERVICE_UUID = "8a1f0001-5e1c-4c3b-9a57-1d2f3e4a5b6c"
STREAM_UUID = "8a1f0002-5e1c-4c3b-9a57-1d2f3e4a5b6c"
COMMAND_UUID = "8a1f0003-5e1c-4c3b-9a57-1d2f3e4a5b6c"
SECRET_UUID = "8a1f0004-5e1c-4c3b-9a57-1d2f3e4a5b6c"
EVENTS_UUID = "8a1f0005-5e1c-4c3b-9a57-1d2f3e4a5b6c"
SECRET_VALUE = b"only for a MITM-paired central"
NAME = "Example"


def record(seq):
    """Record `seq`: its u32 sequence (little-endian) and 28 bytes derived from it."""
    body = bytes((seq * 7 + i) & 0xFF for i in range(RECORD_SIZE - 4))
    return bytes((seq & 0xFF, (seq >> 8) & 0xFF, (seq >> 16) & 0xFF, seq >> 24)) + body


def advertising_payload(name, service_uuid):
    flags = b"\x02\x01\x06"
    name_field = bytes((len(name) + 1, 0x09)) + name.encode()
    uuid_le = bytes(service_uuid)
    return flags + name_field + bytes((len(uuid_le) + 1, 0x07)) + uuid_le


class ExamplePeripheral:
    def __init__(self, bluetooth, ble, secrets_path, passkey, log=None):
        self._ble = ble
        self._secrets_path = secrets_path
        self._passkey = passkey
        self.lines = []
        self._print = log
        self._secrets = self._load()
        self._wake = asyncio.Event()
        self._commands = []
        self._indicated = []
        self._mtu = {}
        self.conn = None
        self.enomem = 0
        self._needs_adv = True
        ble.irq(self._irq)
        ble.config(gap_name=NAME, mtu=247, bond=True, mitm=True, le_secure=True)
        ble.config(io=_IO_DISPLAY_ONLY)
        ble.active(True)
        service = (
            bluetooth.UUID(SERVICE_UUID),
            (
                (bluetooth.UUID(STREAM_UUID), _FLAG_NOTIFY),
                (bluetooth.UUID(COMMAND_UUID), _FLAG_WRITE | _FLAG_WRITE_NO_RESPONSE),
                (bluetooth.UUID(SECRET_UUID), _FLAG_READ | _FLAG_READ_AUTHENTICATED),
                (bluetooth.UUID(EVENTS_UUID), _FLAG_INDICATE),
            ),
        )
        handles = ble.gatts_register_services((service,))
        ((self.h_stream, self.h_command, self.h_secret, self.h_events),) = handles
        ble.gatts_set_buffer(self.h_command, 64)
        ble.gatts_write(self.h_secret, SECRET_VALUE)
        self._adv = advertising_payload(NAME, bluetooth.UUID(SERVICE_UUID))

    def log(self, line):
        self.lines.append(line)
        if self._print is not None:
            self._print(line)

    # -- secrets: a fixture writes its file in the IRQ; the firmware defers to a task ----
    def _load(self):
        try:
            with open(self._secrets_path) as f:
                return json.load(f)
        except OSError:
            return []

    def _save(self):
        with open(self._secrets_path, "w") as f:
            json.dump(self._secrets, f)

    def _get_secret(self, sec_type, index, key):
        matches = [e for e in self._secrets if e[0] == sec_type]
        if key is None:
            return bytes.fromhex(matches[index][2]) if index < len(matches) else None
        key_hex = bytes(key).hex()
        for entry in matches:
            if entry[1] == key_hex:
                return bytes.fromhex(entry[2])
        return None

    def _set_secret(self, sec_type, key, value):
        key_hex = bytes(key).hex()
        self._secrets = [e for e in self._secrets if not (e[0] == sec_type and e[1] == key_hex)]
        if value is not None:
            self._secrets.append([sec_type, key_hex, bytes(value).hex()])
        self._save()
        self.log("secret_set %d %s" % (sec_type, "store" if value is not None else "delete"))
        return True

    # -- IRQ: record, wake the task --------------------------------------------------------
    def _irq(self, event, data):
        if event == _IRQ_CENTRAL_CONNECT:
            self.conn = data[0]
            self.log("connect %d" % data[0])
        elif event == _IRQ_CENTRAL_DISCONNECT:
            self.conn = None
            self._needs_adv = True
            self.log("disconnect %d" % data[0])
        elif event == _IRQ_GATTS_WRITE:
            if data[1] == self.h_command:
                self._commands.append((data[0], self._ble.gatts_read(self.h_command)))
        elif event == _IRQ_GATTS_INDICATE_DONE:
            self._indicated.append(data[2])
        elif event == _IRQ_MTU_EXCHANGED:
            self._mtu[data[0]] = data[1]
            self.log("mtu %d" % data[1])
        elif event == _IRQ_CONNECTION_UPDATE:
            self.log("conn_update %d %d %d %d" % data[1:])
        elif event == _IRQ_ENCRYPTION_UPDATE:
            self.log("encryption %d %d %d" % (int(data[1]), int(data[2]), int(data[3])))
        elif event == _IRQ_PASSKEY_ACTION:
            conn, action, _number = data
            self.log("passkey %d" % action)
            if action == _PASSKEY_ACTION_DISPLAY:
                self._ble.gap_passkey(conn, action, self._passkey)
        elif event == _IRQ_GET_SECRET:
            return self._get_secret(data[0], data[1], data[2])
        elif event == _IRQ_SET_SECRET:
            return self._set_secret(data[0], data[1], data[2])
        self._wake.set()
        return None

    # -- the task --------------------------------------------------------------------------
    async def run(self):
        self.log("ready")
        while True:
            if self._needs_adv and self.conn is None:
                self._needs_adv = False
                self._ble.gap_advertise(_ADV_INTERVAL_US, self._adv)
            while self._commands:
                conn, command = self._commands.pop(0)
                await self._command(conn, bytes(command).decode())
            self._wake.clear()
            if self._commands or (self._needs_adv and self.conn is None):
                continue
            await self._wake.wait()

    async def _command(self, conn, command):
        words = command.split()
        if words[0] == "stream":
            await self._stream(conn, int(words[1]))
        elif words[0] == "fill":
            sent = await self._notify(conn, bytes(i & 0xFF for i in range(int(words[1]))))
            self.log("filled %d" % int(sent))
        elif words[0] == "burst":
            for i in range(1, int(words[1]) + 1):
                try:
                    self._ble.gatts_notify(conn, self.h_stream, b"b")
                except OSError as e:
                    self.log(
                        "burst enomem at %d" % i if e.args[0] == errno.ENOMEM else "burst error"
                    )
                    return
            self.log("burst ok")
        elif words[0] == "secure":
            self._ble.gap_pair(conn)
        elif words[0] == "indicate":
            self._indicated = []
            self._ble.gatts_indicate(conn, self.h_events, b"indicated")
            while not self._indicated:
                self._wake.clear()
                await self._wake.wait()
            self.log("indicate_done %d" % self._indicated[0])

    async def _notify(self, conn, payload):
        while True:
            try:
                self._ble.gatts_notify(conn, self.h_stream, payload)
                return True
            except OSError as e:
                if e.args[0] != errno.ENOMEM:
                    return False  # the link is gone
                self.enomem += 1
                await asyncio.sleep(0.001)  # NimBLE: wait for the radio to free a buffer

    async def _stream(self, conn, count):
        per_packet = max((self._mtu.get(conn, 23) - 3) // RECORD_SIZE, 1)
        seq = 0
        while seq < count:
            n = min(per_packet, count - seq)
            payload = b"".join(record(s) for s in range(seq, seq + n))
            if not await self._notify(conn, payload):
                self.log("stream stopped at %d" % seq)
                return
            seq += n
        self.log("streamed %d enomem %d" % (count, self.enomem))


def main(argv):
    import bluetooth

    peripheral = ExamplePeripheral(bluetooth, bluetooth.BLE(), argv[1], int(argv[2]), log=print)
    asyncio.run(peripheral.run())


if __name__ == "__main__":
    import sys

    main(sys.argv)

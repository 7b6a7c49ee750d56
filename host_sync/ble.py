"""The BLE link to an AlgoDose unit, on bleak (docs/protocol.md). Host code names no bleak
backend: on a laptop bleak picks the platform's; the simulator makes it Bumble."""

import asyncio
import contextlib
import re
import time

from bleak import BleakClient, BleakScanner
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
)

from core import protocol, record
from host_sync.transport import (
    DeviceRefused,
    LinkLost,
    NoAdapter,
    NoDevice,
    NotPaired,
    SyncError,
    Transport,
)

SCAN_S = 3.0
CONNECT_TIMEOUT_S = 20.0
ANSWER_TIMEOUT_S = 10.0  # a control point request's answer
STALL_TIMEOUT_S = 10.0  # a record stream with no notification for this long is given up
_ATT_INSUFFICIENT_AUTHENTICATION = 0x05
_ATT_INSUFFICIENT_ENCRYPTION = 0x0F
_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$|^[0-9A-Fa-f-]{36}$")
_INFO = (
    ("manufacturer", protocol.MANUFACTURER_UUID16),
    ("model", protocol.MODEL_UUID16),
    ("device_id", protocol.SERIAL_UUID16),
    ("firmware", protocol.FIRMWARE_UUID16),
    ("ruleset", protocol.SOFTWARE_UUID16),
)
NOT_PAIRED = (
    "this laptop is not paired with the device: open the pairing window on the device,"
    " then run `python -m host_sync pair`"
)


def uuid16(value):
    return "0000%04x-0000-1000-8000-00805f9b34fb" % value


@contextlib.contextmanager
def bluetooth_errors():
    """Turns the platform's "no Bluetooth here" into NoAdapter, link trouble into LinkLost."""
    try:
        yield
    except BleakBluetoothNotAvailableError as error:
        raise NoAdapter("no Bluetooth adapter: %s (is Bluetooth on?)" % error.args[0]) from None
    except (FileNotFoundError, ConnectionRefusedError) as error:
        # BlueZ: no D-Bus system bus socket, i.e. no Bluetooth service on this computer
        raise NoAdapter("no Bluetooth adapter or service on this computer (%s)" % error) from None
    except BleakGATTProtocolError as error:
        if error.args[0] in (_ATT_INSUFFICIENT_AUTHENTICATION, _ATT_INSUFFICIENT_ENCRYPTION):
            raise NotPaired(NOT_PAIRED) from None
        raise SyncError("the device refused: %s" % error.args[1]) from None
    except BleakDeviceNotFoundError:
        raise NoDevice("the device is not in range: is it on and near?") from None
    except TimeoutError:
        raise LinkLost(
            "the device did not answer in time: bring it closer and try again"
        ) from None
    except BleakError as error:
        raise LinkLost(
            "Bluetooth link lost (%s): bring the device closer and try again" % error
        ) from None


async def scan(timeout_s=SCAN_S):
    """AlgoDose units advertising nearby: [(address, name)]."""
    with bluetooth_errors():
        found = await BleakScanner.discover(
            timeout=timeout_s, service_uuids=[protocol.SERVICE_UUID]
        )
    return sorted((d.address, d.name or "") for d in found)


async def find(device=None, known=(), timeout_s=SCAN_S):
    """The unit to talk to: `device` is an address or a name (or the end of one); without
    it, the one this laptop knows that is in range, or the only one in range. Stops
    scanning as soon as the named or known unit is seen."""
    known = [k for k in known if k]
    with bluetooth_errors():
        if device and _ADDRESS.match(device):
            found = await BleakScanner.find_device_by_address(device, timeout=timeout_s)
        elif device or known:
            wanted = device.upper() if device else None

            def match(d, adv):
                if protocol.SERVICE_UUID not in adv.service_uuids:
                    return False
                if wanted is not None:
                    return bool(d.name) and wanted in d.name.upper()
                return d.address in known

            found = await BleakScanner.find_device_by_filter(match, timeout=timeout_s)
        else:
            found = None
        if found is not None:
            return found
        if device:
            raise NoDevice(
                "no AlgoDose unit %s in range: is it on, near, and not connected to another"
                " laptop?" % device
            )
        devices = await BleakScanner.discover(
            timeout=timeout_s, service_uuids=[protocol.SERVICE_UUID]
        )
    if not devices:
        raise NoDevice(
            "no AlgoDose unit in range: is it on, near, and not connected to another laptop?"
        )
    if len(devices) > 1:
        raise NoDevice(
            "several units in range (%s): choose one with --device"
            % ", ".join("%s %s" % (d.name, d.address) for d in devices)
        )
    return devices[0]


class BleTransport(Transport):
    """One connection to a unit: RACP on the control point, records as notifications."""

    def __init__(self, device, timeout_s=CONNECT_TIMEOUT_S):
        self._device = device
        self.address = getattr(device, "address", device)
        self._timeout_s = timeout_s
        self.client = None
        self._answers = []
        self._wake = asyncio.Event()
        self._lost = False
        self._stream = None  # the Reassembler of the running report
        self._on_records = None
        self._stream_error = None
        self._activity = 0.0

    async def connect(self):
        self.client = BleakClient(
            self._device, disconnected_callback=self._disconnected, timeout=self._timeout_s
        )
        with bluetooth_errors():
            await self.client.connect()
        return self

    async def close(self):
        if self.client is not None:
            with contextlib.suppress(BleakError, OSError):
                await self.client.disconnect()

    async def __aenter__(self):
        return await self.connect()

    async def __aexit__(self, *exc):
        await self.close()

    def _disconnected(self, _client):
        self._lost = True
        self._wake.set()

    # --- reads ---------------------------------------------------------------------------

    async def read(self, uuid):
        assert self.client is not None
        with bluetooth_errors():
            return bytes(await self.client.read_gatt_char(uuid))

    async def device_info(self):
        info = {}
        for name, uuid in _INFO:
            info[name] = (await self.read(uuid16(uuid))).decode("utf-8", "replace")
        if not info["device_id"]:
            raise SyncError("the device has no serial number: it is not an AlgoDose unit")
        return info

    async def status(self):
        try:
            return protocol.parse_status(await self.read(protocol.STATUS_UUID))
        except protocol.ProtocolError as error:
            raise SyncError("the device's status is not one this host reads: %s" % error) from None

    async def write(self, uuid, data):
        assert self.client is not None
        with bluetooth_errors():
            await self.client.write_gatt_char(uuid, data, response=True)

    # --- RACP ----------------------------------------------------------------------------

    async def _subscribe(self):
        if self._on_records is not None or self.client is None:
            return
        self._on_records = False
        with bluetooth_errors():
            await self.client.start_notify(protocol.CONTROL_POINT_UUID, self._indicated)
            await self.client.start_notify(protocol.RECORDS_UUID, self._notified)

    def _indicated(self, _char, data):
        try:
            self._answers.append(protocol.parse_response(bytes(data)))
        except protocol.ProtocolError as error:
            self._stream_error = error
        self._wake.set()

    def _notified(self, _char, data):
        self._activity = time.monotonic()
        if self._stream is None or self._stream_error is not None:
            return
        try:
            records = self._stream.feed(bytes(data))
        except protocol.ProtocolError as error:
            self._stream_error = error  # a lost notification: stop, keep what came before
            self._wake.set()
            return
        if records and callable(self._on_records):
            self._on_records(records)

    async def _request(self, data, timeout_s=ANSWER_TIMEOUT_S, stream=False):
        await self._subscribe()
        self._answers.clear()
        self._stream_error = None
        self._activity = time.monotonic()
        await self.write(protocol.CONTROL_POINT_UUID, data)
        while True:
            if self._answers:
                return self._answers.pop(0)
            if self._stream_error is not None:
                raise LinkLost(
                    "the record stream broke (%s): run pull again to fetch the rest"
                    % self._stream_error
                )
            if self._lost:
                raise LinkLost(
                    "Bluetooth link lost: bring the device closer and run pull again"
                    " (what arrived is kept)"
                )
            idle = time.monotonic() - self._activity
            if idle >= (STALL_TIMEOUT_S if stream else timeout_s):
                raise LinkLost("the device stopped answering: run pull again")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.5)

    def _check(self, answer, op):
        if answer[0] == "response" and answer[1] == op and answer[2] == protocol.RSP_SUCCESS:
            return
        if answer[0] == "response" and answer[2] == protocol.RSP_NOT_AUTHENTICATED:
            raise NotPaired(NOT_PAIRED)
        code = answer[2] if answer[0] == "response" else 0
        raise DeviceRefused("the device refused: %s" % protocol.response_text(code), code)

    async def count(self, from_seq):
        answer = await self._request(protocol.request("count", ">=", max(from_seq, 1)))
        if answer[0] != "number":
            self._check(answer, protocol.OP_REPORT_NUMBER)
        return answer[1]

    async def report(self, from_seq, on_records):
        return await self._report(protocol.request("report", ">=", max(from_seq, 1)), on_records)

    async def report_all(self, on_records):
        return await self._report(protocol.request("report", "all"), on_records)

    async def _report(self, request, on_records):
        await self._subscribe()
        self._stream = protocol.Reassembler(record.check)
        self._on_records = on_records
        try:
            answer = await self._request(request, stream=True)
        finally:
            stream, self._stream = self._stream, None
            self._on_records = False
        if answer[0] == "response" and answer[1] == protocol.OP_REPORT:
            if answer[2] in (protocol.RSP_SUCCESS, protocol.RSP_NO_RECORDS):
                try:
                    stream.finish()
                except protocol.ProtocolError as error:
                    raise LinkLost(
                        "the record stream broke (%s): run pull again" % error
                    ) from None
                return answer[2]
            if answer[2] == protocol.RSP_RECORDS_GONE:
                return answer[2]
        self._check(answer, protocol.OP_REPORT)
        return answer[2]

    async def delete_through(self, seq):
        self._check(await self._request(protocol.request("delete", "<=", seq)), protocol.OP_DELETE)

    # --- the other characteristics -------------------------------------------------------

    async def set_time(self, wall_s):
        await self.write(uuid16(protocol.CURRENT_TIME_UUID16), protocol.current_time(wall_s))

    async def push_patients(self, message, timeout_s=ANSWER_TIMEOUT_S):
        """Writes a patient list message in chunks, then waits for the device's verdict:
        (result, list time, count)."""
        assert self.client is not None
        chunk_max = max(min(self.client.mtu_size - 3, 244) - 2, 18)
        list_time_s = protocol.patient_list_time(message)
        for chunk in protocol.patient_chunks(message, chunk_max):
            await self.write(protocol.PATIENTS_UUID, chunk)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            result = protocol.parse_patients_result(await self.read(protocol.PATIENTS_UUID))
            if result is not None and result[1] == list_time_s:
                return result
            if result is not None and result[0] == protocol.PATIENTS_REFUSED:
                return result
            await asyncio.sleep(0.05)
        raise LinkLost("the device did not confirm the patient list: push it again")

    async def is_paired(self):
        """True when this link is encrypted with a passkey bond (a protected read works)."""
        try:
            await self.read(protocol.PATIENTS_UUID)
        except NotPaired:
            return False
        return True

    async def pair(self):
        assert self.client is not None
        try:
            await self.client.pair()
        except BleakError as error:
            raise NotPaired(
                "pairing failed (%s): check the passkey on the device's screen and try"
                " again while its pairing window is open" % error
            ) from None

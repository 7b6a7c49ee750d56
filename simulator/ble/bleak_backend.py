"""A bleak backend on a Bumble central: host code runs unchanged through bleak's public API.

    client = BleakClient(address, backend=BumbleClient, device=central, passkey=lambda: 123456)
    scanner = BleakScanner(service_uuids=[...], backend=BumbleScanner, device=central)

or, for code that builds its own `BleakClient(address)` / `BleakScanner()` (host_sync):

    with use_bumble(central, passkey=...):
        ...   # bleak's platform backend is Bumble until the block ends

Keywords (both classes): `device` is a powered-on Bumble `Device` on the rig's LocalLink,
or an async factory of one (default: the one given to `use_bumble`). BumbleClient also
takes `passkey` (a callable, sync or async, returning the 6-digit number shown on the
peripheral, or None to refuse; default: typed at a prompt on the terminal), `mtu`
(requested on connect, default 247) and `io_capability` ("keyboard", the default, or
"none" for a Just Works central).

What it does as BlueZ would: connect exchanges the MTU and fills `services`; a bonded
peer is encrypted on connect with the stored keys (no pairing); a Security Request from the
peripheral pairs or encrypts; a failed pairing drops the link (Bumble cannot pair twice on
one link, BLE.md). Link loss fails every pending operation with BleakError (never a
CancelledError) and calls disconnected_callback once; ATT errors become
BleakGATTProtocolError with the ATT code. UUIDs are lower-case 128-bit strings.
"""

import asyncio
import contextlib
import inspect
import logging

import bleak
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_str
from bumble import core, hci
from bumble.att import ATT_Error
from bumble.core import AdvertisingData
from bumble.device import Peer
from bumble.pairing import PairingConfig, PairingDelegate

log = logging.getLogger(__name__)

DEFAULT_MTU = 247
_defaults = {"device": None, "passkey": None}

_PROPERTY_NAMES = (
    (0x01, "broadcast"),
    (0x02, "read"),
    (0x04, "write-without-response"),
    (0x08, "write"),
    (0x10, "notify"),
    (0x20, "indicate"),
    (0x40, "authenticated-signed-writes"),
    (0x80, "extended-properties"),
)
_IO_CAPABILITIES = {
    "keyboard": PairingDelegate.IoCapability.KEYBOARD_INPUT_ONLY,
    "none": PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT,
}


def uuid_str(uuid):
    """A Bumble UUID as bleak writes it: lower-case 128-bit, 16-bit ones expanded."""
    raw = bytes(reversed(uuid.uuid_bytes))
    if len(raw) in (2, 4):
        return normalize_uuid_str(raw.hex())
    text = raw.hex()
    return "%s-%s-%s-%s-%s" % (text[:8], text[8:12], text[12:16], text[16:20], text[20:])


_opened = {}  # event loop -> central opened by a factory on it


async def _resolve_device(source):
    """`source` is a powered-on Bumble Device, or an async factory returning one (opened
    once per event loop: host code may call asyncio.run more than once)."""
    source = source or _defaults["device"]
    if source is None:
        raise BleakError("no Bumble device: pass device=... or use use_bumble(device)")
    if not callable(source):
        return source
    loop = asyncio.get_running_loop()
    if loop not in _opened:
        _opened.clear()  # a finished loop's device is dead with it
        _opened[loop] = await source()
    return _opened[loop]


def prompt_passkey():
    """Ask the clinician for the number the peripheral shows (the host's default)."""
    text = input("Enter the 6-digit passkey shown on the device: ").strip()
    if not text.isdigit() or len(text) > 6:
        return None
    return int(text)


class _KeyboardDelegate(PairingDelegate):
    def __init__(self, passkey_source, io_capability):
        super().__init__(io_capability=io_capability)
        self._source = passkey_source
        self.prompts = 0

    async def get_number(self):
        self.prompts += 1
        value = self._source()
        if inspect.isawaitable(value):
            value = await value
        return None if value is None else int(value)

    async def compare_numbers(self, number, digits):
        return False  # keyboard-only: never asked; refuse rather than guess


class BumbleClient(BaseBleakClient):
    """bleak's client interface on a Bumble central."""

    def __init__(self, address_or_ble_device, services=None, **kwargs):
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs.pop("disconnected_callback", None),
            timeout=kwargs.pop("timeout", 10.0),
        )
        self._device_source = kwargs.get("device")
        self._device = None
        self._passkey = kwargs.get("passkey") or _defaults["passkey"] or prompt_passkey
        self._mtu = kwargs.get("mtu", DEFAULT_MTU)
        self._io = _IO_CAPABILITIES[kwargs.get("io_capability", "keyboard")]
        self._service_filter = services
        self._connection = None
        self._peer = None
        self._lost = None
        self._delegate = None
        self._subscriptions = {}

    # -- connection ----------------------------------------------------------------------
    @property
    def mtu_size(self):
        return self._connection.att_mtu if self._connection is not None else 23

    @property
    def is_connected(self):
        return self._connection is not None

    @property
    def name(self):
        return self.address

    @property
    def pairing_prompts(self):
        """How many times pairing asked for a passkey (tests: a bonded reconnect asks none)."""
        return self._delegate.prompts if self._delegate is not None else 0

    def _pairing_config(self, _connection):
        self._delegate = self._delegate or _KeyboardDelegate(self._passkey, self._io)
        return PairingConfig(
            sc=True,
            mitm=self._io != PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT,
            bonding=True,
            delegate=self._delegate,
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )

    async def connect(self, pair=False, **kwargs):
        if self._connection is not None:
            return
        device = self._device = await _resolve_device(self._device_source)
        device.pairing_config_factory = self._pairing_config
        try:
            connection = await device.connect(
                hci.Address(self.address), timeout=kwargs.get("timeout", self._timeout)
            )
        except core.TimeoutError as error:
            raise BleakDeviceNotFoundError(
                self.address, "device not found: " + str(error)
            ) from None
        except (core.BaseBumbleError, hci.HCI_Error) as error:
            raise BleakError("connect failed: %s" % error) from None
        self._connection = connection
        self._lost = asyncio.get_running_loop().create_future()
        connection.on("disconnection", self._on_disconnection)
        connection.on("security_request", self._on_security_request)
        self._peer = Peer(connection)
        try:
            if await self._bonded():
                await self._guard(self._encrypt())
            await self._guard(self._peer.request_mtu(self._mtu))
            await self._guard(self._discover())
            if pair and not await self._bonded():
                await self.pair()
        except BaseException:
            await self.disconnect()
            raise

    async def _bonded(self):
        keystore = self._device.keystore if self._device is not None else None
        return keystore is not None and await keystore.get(self._peer_name()) is not None

    def _peer_name(self):
        return (
            str(self._connection.peer_address)
            if self._connection
            else str(hci.Address(self.address))
        )

    async def _encrypt(self):
        try:
            await self._connection.encrypt()
        except hci.HCI_Error as error:
            if error.error_code == hci.HCI_PIN_OR_KEY_MISSING_ERROR:
                # The peripheral lost our bond (reset or unpaired): forget ours, so the
                # next pair() starts clean, and go on unencrypted.
                await self._device.keystore.delete(self._peer_name())
                return
            raise

    def _on_security_request(self, _auth_req):
        async def respond():
            with contextlib.suppress(BleakError):
                if await self._bonded():
                    await self._guard(self._encrypt())
                else:
                    await self.pair()

        asyncio.get_running_loop().create_task(respond())

    def _on_disconnection(self, reason):
        self._connection = None
        self._peer = None
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self):
        connection = self._connection
        if connection is None:
            return
        with contextlib.suppress(core.BaseBumbleError, hci.HCI_Error, asyncio.CancelledError):
            await connection.disconnect()
        if self._connection is connection:  # the disconnection event did not come
            self._on_disconnection(hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)

    async def pair(self, *args, **kwargs):
        if self._connection is None:
            raise BleakError("Not connected")
        try:
            await self._guard(self._connection.pair())
        except BleakError:
            # A failed SMP session stays half-open on this link: drop it, as BlueZ does.
            await self.disconnect()
            raise

    async def unpair(self):
        keystore = self._device.keystore if self._device is not None else None
        if keystore is not None:
            with contextlib.suppress(KeyError):
                await keystore.delete(self._peer_name())
        await self.disconnect()

    @property
    def _gatt(self):
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    async def _guard(self, awaitable):
        """Run one GATT/SMP operation; link loss -> BleakError, ATT error -> protocol error."""
        if self._connection is None or self._lost is None:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            raise BleakError("Not connected")
        lost = self._lost
        task = asyncio.ensure_future(awaitable)
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise BleakError("Bluetooth link lost (HCI reason 0x%02X)" % lost.result())
        if task.cancelled():
            raise BleakError("Bluetooth link lost")
        error = task.exception()
        if error is None:
            return task.result()
        if isinstance(error, ATT_Error):
            raise BleakGATTProtocolError(error.error_code) from None
        if isinstance(error, core.ProtocolError):
            raise BleakError(
                "%s failed: %s" % (error.error_namespace or "operation", error.error_name)
            ) from None
        if isinstance(error, (core.BaseBumbleError, hci.HCI_Error, TimeoutError)):
            raise BleakError(str(error) or type(error).__name__) from None
        raise error

    # -- services ------------------------------------------------------------------------
    async def _discover(self):
        assert self._peer is not None
        collection = BleakGATTServiceCollection()
        for service in await self._peer.discover_services():
            s = BleakGATTService(service, service.handle, uuid_str(service.uuid))
            collection.add_service(s)
            for char in await self._peer.discover_characteristics(service=service):
                properties = [name for bit, name in _PROPERTY_NAMES if char.properties & bit]
                c = BleakGATTCharacteristic(
                    char, char.handle, uuid_str(char.uuid), properties, self._max_write, s
                )
                collection.add_characteristic(c)
                for desc in await self._peer.discover_descriptors(characteristic=char):
                    collection.add_descriptor(
                        BleakGATTDescriptor(desc, desc.handle, uuid_str(desc.type), c)
                    )
        self.services = collection

    def _max_write(self):
        return self.mtu_size - 3

    # -- I/O -----------------------------------------------------------------------------
    async def read_gatt_char(self, characteristic, *, use_cached=False, **kwargs):
        value = await self._guard(self._gatt.read_value(characteristic.handle))
        return bytearray(value)

    async def read_gatt_descriptor(self, descriptor, *, use_cached=False, **kwargs):
        value = await self._guard(self._gatt.read_value(descriptor.handle))
        return bytearray(value)

    async def write_gatt_char(self, characteristic, data, response):
        await self._guard(
            self._gatt.write_value(characteristic.handle, bytes(data), with_response=response)
        )

    async def write_gatt_descriptor(self, descriptor, data):
        await self._guard(
            self._gatt.write_value(descriptor.handle, bytes(data), with_response=True)
        )

    async def start_notify(self, characteristic, callback, **kwargs):
        def subscriber(value):
            callback(bytearray(value))

        self._subscriptions[characteristic.handle] = subscriber
        await self._guard(self._gatt.subscribe(characteristic.obj, subscriber, prefer_notify=True))

    async def stop_notify(self, characteristic):
        subscriber = self._subscriptions.pop(characteristic.handle, None)
        await self._guard(self._gatt.unsubscribe(characteristic.obj, subscriber))


class BumbleScanner(BaseBleakScanner):
    """bleak's scanner interface on a Bumble central."""

    def __init__(self, detection_callback, service_uuids, scanning_mode="active", **kwargs):
        super().__init__(detection_callback, service_uuids)
        self._device_source = kwargs.get("device")
        self._device = None
        self._active = scanning_mode != "passive"
        self._listening = False

    async def start(self):
        self.seen_devices = {}
        self._device = await _resolve_device(self._device_source)
        if not self._listening:
            self._device.on("advertisement", self._on_advertisement)
            self._listening = True
        await self._device.start_scanning(active=self._active, filter_duplicates=False)

    async def stop(self):
        if self._device is None:
            return
        with contextlib.suppress(core.BaseBumbleError, hci.HCI_Error):
            await self._device.stop_scanning()
        if self._listening:
            self._device.remove_listener("advertisement", self._on_advertisement)
            self._listening = False

    def _on_advertisement(self, advertisement):
        data = advertisement.data
        uuids = []
        for ad_type in (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        ):
            uuids.extend(uuid_str(u) for u in (data.get(ad_type) or []))
        if not self.is_allowed_uuid(uuids):
            return
        name = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
            AdvertisingData.SHORTENED_LOCAL_NAME
        )
        manufacturer = {}
        raw_manufacturer = data.get(AdvertisingData.MANUFACTURER_SPECIFIC_DATA, raw=True)
        if raw_manufacturer and len(raw_manufacturer) >= 2:
            manufacturer[int.from_bytes(raw_manufacturer[:2], "little")] = bytes(
                raw_manufacturer[2:]
            )
        tx_power = data.get(AdvertisingData.TX_POWER_LEVEL)
        address = advertisement.address.to_string(with_type_qualifier=False)
        adv = AdvertisementData(
            local_name=name if isinstance(name, str) else None,
            manufacturer_data=manufacturer,
            service_data={},
            service_uuids=uuids,
            tx_power=tx_power if isinstance(tx_power, int) else None,
            rssi=advertisement.rssi,
            platform_data=(advertisement,),
        )
        device = self.create_or_update_device(address, address, adv.local_name, advertisement, adv)
        self.call_detection_callbacks(device, adv)


@contextlib.contextmanager
def use_bumble(device, passkey=None):
    """Make Bumble bleak's platform backend (for code that passes no `backend=`), with
    `device` as the central (a Device, or an async factory of one) and `passkey` as the
    passkey source (default: typed at a prompt), until the block ends."""
    saved = (
        bleak.get_platform_client_backend_type,
        bleak.get_platform_scanner_backend_type,
        dict(_defaults),
    )
    bleak.get_platform_client_backend_type = lambda: (BumbleClient, "BumbleClient")
    bleak.get_platform_scanner_backend_type = lambda: (BumbleScanner, "BumbleScanner")
    _defaults["device"] = device
    _defaults["passkey"] = passkey
    try:
        yield
    finally:
        bleak.get_platform_client_backend_type = saved[0]
        bleak.get_platform_scanner_backend_type = saved[1]
        _defaults.clear()
        _defaults.update(saved[2])


__all__ = [
    "BLEDevice",
    "BumbleClient",
    "BumbleScanner",
    "prompt_passkey",
    "use_bumble",
    "uuid_str",
]

"""The radio under the simulator's `bluetooth` module: one Bumble `Device` on a `LocalLink`.

`Peripheral` is what `bluetooth.BLE` (simulator/ble/upy/bluetooth.py) calls on CPython in
process, and what the bridge drives for a `micropython` process. It behaves as MicroPython's
NimBLE binding where the firmware can tell the difference:

- characteristic security flags are enforced as NimBLE's ble_att_svr_check_perms does
  (unencrypted: ATT 0x05, or 0x0F once the peer has a stored key; encrypted without MITM:
  0x05); descriptors and CCCDs carry no protection (NimBLE drops descriptor flags);
- bonds go through IRQ 29/30 (get/set secret) to the firmware, which keeps them on its own
  flash; a passkey comes from the firmware through IRQ 31 and gap_passkey;
- notifications and indications are sent whether or not the client subscribed; each one
  holds a credit until the host's ACL queue has drained (NimBLE's mbuf pool);
- IRQ 28 reports "authenticated" from the key's MITM flag (Bumble's own flag is true for
  Just Works too, BLE.md).

Events go to a *host*: `event(name, args)`, and `request(name, args)` for the three that
need an answer (read, get_secret, set_secret), which may return an awaitable (the bridge).
"""

import asyncio
import contextlib
import inspect
import logging
import secrets
import traceback

from bumble import core, gatt, hci
from bumble import gatt_server as bumble_gatt_server
from bumble.att import ATT_Error, ATT_Handle_Value_Notification
from bumble.controller import Controller
from bumble.device import AdvertisingType, Device
from bumble.host import Host
from bumble.keys import KeyStore, PairingKeys
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.smp import PairingMethod
from bumble.transport.common import AsyncPipeSink

log = logging.getLogger(__name__)

# MicroPython characteristic flags (bluetooth.rst) that matter to the server.
_FLAG_READ = 0x0002
_FLAG_WRITE_NO_RESPONSE = 0x0004
_FLAG_WRITE = 0x0008
_FLAG_NOTIFY = 0x0010
_FLAG_INDICATE = 0x0020
_FLAG_READ_ENCRYPTED = 0x0200
_FLAG_READ_AUTHENTICATED = 0x0400
_FLAG_WRITE_ENCRYPTED = 0x1000
_FLAG_WRITE_AUTHENTICATED = 0x2000

_ATT_READ_NOT_PERMITTED = 0x02
_ATT_WRITE_NOT_PERMITTED = 0x03
_ATT_INSUFFICIENT_AUTHENTICATION = 0x05
_ATT_INSUFFICIENT_ENCRYPTION = 0x0F
_ATT_UNLIKELY_ERROR = 0x0E

_HCI_CONNECTION_TIMEOUT = 0x08  # what a central reports when the link is lost

# NimBLE's store object types (ble_store.h) and MicroPython's own IRK slot.
SECRET_OUR_SEC = 1
SECRET_PEER_SEC = 2
SECRET_OUR_IRK = 10

PASSKEY_ACTION_INPUT = 2
PASSKEY_ACTION_DISPLAY = 3
PASSKEY_ACTION_NUMERIC_COMPARISON = 4

_IO_CAPABILITY = {
    0: PairingDelegate.IoCapability.DISPLAY_OUTPUT_ONLY,
    1: PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT,
    2: PairingDelegate.IoCapability.KEYBOARD_INPUT_ONLY,
    3: PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT,
    4: PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_KEYBOARD_INPUT,
}

# The SMP timeout (Core Vol 3 Part H 3.4): a firmware that never answers IRQ 31 fails the
# pairing after it.
SMP_TIMEOUT_S = 30.0
# The fastest legal advertising interval, and what tests cap the firmware's interval to.
MIN_ADVERTISING_INTERVAL_MS = 20.0
# LE Data Length Extension as on an ESP32-S3: one ACL fragment per 247-byte ATT PDU.
ACL_DATA_PACKET_LENGTH = 251


def make_controller(name, link, address, host_source=None, host_sink=None):
    controller = Controller(
        name, host_source=host_source, host_sink=host_sink, link=link, public_address=address
    )
    controller.le_acl_data_packet_length = ACL_DATA_PACKET_LENGTH
    return controller


def make_device(name, link, address):
    """A powered-off Bumble device on `link` with a static random address (str)."""
    controller = make_controller(name, link, address)
    host = Host(controller, AsyncPipeSink(controller))
    device = Device(name=name, address=hci.Address(address), host=host)
    return device, controller


def address_key(address):
    """NimBLE's store key for a peer: ble_addr_t, i.e. type byte + 6 address bytes LE."""
    return bytes([address.address_type]) + bytes(address.address_bytes)


_KEY_FIELDS = ("ltk", "ltk_central", "ltk_peripheral", "irk", "csrk")
_LTK_FIELDS = ("ltk", "ltk_central", "ltk_peripheral")


def encode_bond(address, keys):
    """A bond as the opaque bytes the firmware stores (NimBLE's ble_store_value_sec is an
    opaque struct to it too): version, peer address, which keys, which are MITM, keys."""
    present = authenticated = 0
    body = b""
    for bit, field in enumerate(_KEY_FIELDS):
        key = getattr(keys, field)
        if key is None:
            continue
        present |= 1 << bit
        authenticated |= (1 << bit) if key.authenticated else 0
        body += bytes(key.value)
        if field in _LTK_FIELDS:
            body += (key.ediv or 0).to_bytes(2, "little") + (key.rand or bytes(8))
    return bytes([1]) + address_key(address) + bytes([present, authenticated]) + body


def decode_bond(value):
    """(address, PairingKeys) from encode_bond's bytes; ValueError if they are not that."""
    value = bytes(value)
    if len(value) < 10 or value[0] != 1:
        raise ValueError("not a simulator bond record")
    address = hci.Address(value[2:8], address_type=value[1])
    present, authenticated = value[8], value[9]
    keys = PairingKeys(address_type=hci.AddressType(value[1]))
    pos = 10
    for bit, field in enumerate(_KEY_FIELDS):
        if not present & (1 << bit):
            continue
        key = PairingKeys.Key(
            value=value[pos : pos + 16], authenticated=bool(authenticated & 1 << bit)
        )
        pos += 16
        if field in _LTK_FIELDS:
            key.ediv = int.from_bytes(value[pos : pos + 2], "little")
            key.rand = value[pos + 2 : pos + 10]
            pos += 10
        setattr(keys, field, key)
    if pos != len(value):
        raise ValueError("truncated simulator bond record")
    return address, keys


class _FirmwareKeyStore(KeyStore):
    """Bumble's key store, answered by the firmware through IRQ 29/30, as NimBLE does."""

    def __init__(self, peripheral):
        self._p = peripheral
        self.loaded = {}  # name -> PairingKeys, what encryption at reconnect used

    async def get(self, name):
        address = hci.Address(name)
        value = await self._p._request("get_secret", [SECRET_PEER_SEC, 0, address_key(address)])
        if value is None:
            self.loaded.pop(name, None)
            return None
        try:
            _, keys = decode_bond(value)
        except ValueError:
            return None  # NimBLE too treats a value of the wrong size as no key
        self.loaded[name] = keys
        return keys

    async def update(self, name, keys):
        address = hci.Address(name)
        stored = await self._p._request(
            "set_secret", [SECRET_PEER_SEC, address_key(address), encode_bond(address, keys)]
        )
        if stored:
            self.loaded[name] = keys
            self._p._bonded_names.add(name)

    async def delete(self, name):
        address = hci.Address(name)
        await self._p._request("set_secret", [SECRET_PEER_SEC, address_key(address), None])
        self.loaded.pop(name, None)

    async def get_all(self):
        entries = []
        for index in range(256):
            value = await self._p._request("get_secret", [SECRET_PEER_SEC, index, None])
            if value is None:
                break
            try:
                address, keys = decode_bond(value)
            except ValueError:
                continue
            entries.append((str(address), keys))
        return entries


class _FirmwareDelegate(PairingDelegate):
    """The peripheral's side of pairing: every user action goes to the firmware (IRQ 31)."""

    def __init__(self, peripheral, link, io):
        super().__init__(io_capability=_IO_CAPABILITY.get(io, _IO_CAPABILITY[3]))
        self._p = peripheral
        self._link = link

    async def generate_passkey(self):
        passkey = await self._p._ask_firmware(self._link, PASSKEY_ACTION_DISPLAY, 0)
        # A firmware that shows none: a number the central cannot know, so pairing fails.
        return secrets.randbelow(1000000) if passkey is None else passkey

    async def get_number(self):
        return await self._p._ask_firmware(self._link, PASSKEY_ACTION_INPUT, 0)

    async def compare_numbers(self, number, digits):
        return bool(
            await self._p._ask_firmware(self._link, PASSKEY_ACTION_NUMERIC_COMPARISON, number)
        )


class _Link:
    def __init__(self, connection):
        self.connection = connection
        self.handle = connection.handle
        self.encrypted = False
        self.authenticated = False
        self.bonded = False
        self.pairing = False
        self.dropping = False
        self.passkey_waiters = {}
        self.credits_out = 0
        self.credit_task = None


class _Attribute:
    def __init__(self, handle, flags, is_descriptor):
        self.handle = handle
        self.flags = flags
        self.is_descriptor = is_descriptor
        self.bumble = None


class _LocalHost:
    """In process: the radio reports straight to the BLE state, in the loop's thread. A
    handler's exception is printed and the stack goes on, as on a board."""

    def __init__(self, state):
        self._state = state

    def event(self, name, args):
        self.request(name, args)

    def request(self, name, args):
        try:
            return self._state.on_event(name, args)
        except Exception:
            traceback.print_exc()
            return None


class Peripheral:
    """A simulated ESP32-S3 radio: the `radio` a `bluetooth.BLE` drives.

    Build it with `await Peripheral.start(link, address)`; it is powered on and idle until
    the firmware calls `BLE().active(True)`. Test hooks (never used by firmware):
    `set_notify_credits`, `set_enomem_every`, `drop_link`, `drop_link_after`,
    `adv_interval_cap_ms`, `passkey_timeout_s`.
    """

    def __init__(self, link, address, name="peripheral"):
        self.link = link
        self.address = address
        self.device, self.controller = make_device(name, link, address)
        self._host = None
        self.config = {"mtu": 256, "bond": False, "mitm": False, "le_secure": False, "io": 3}
        self.links = {}
        self.attributes = {}
        self._bonded_names = set()
        self._ops = []
        self._op_task = None
        self._drop_rules = {}
        self._counts = {"notify": 0, "indicate": 0, "write": 0, "read": 0}
        self.adv_interval_cap_ms = None
        self.passkey_timeout_s = SMP_TIMEOUT_S
        self.powered = False
        self.keystore = _FirmwareKeyStore(self)
        self.device.keystore = self.keystore
        self.device.pairing_config_factory = self._pairing_config
        self.device.on("connection", self._on_connection)

    @classmethod
    async def start(cls, link, address, name="peripheral"):
        peripheral = cls(link, address, name)
        await peripheral.device.power_on()
        peripheral.powered = True
        return peripheral

    # -- plumbing ------------------------------------------------------------------------
    def attach(self, state):
        """Called by bluetooth.BLE(radio): the in-process host is the BLE's state."""
        self._host = _LocalHost(state)

    def set_host(self, host):
        self._host = host

    def _event(self, name, args):
        if self._host is not None:
            self._host.event(name, args)

    async def _request(self, name, args):
        if self._host is None:
            return None
        result = self._host.request(name, args)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _submit(self, coro_fn, *args):
        # Operations that are async in Bumble run in the order the firmware called them.
        if not self.powered:
            return
        self._ops.append((coro_fn, args))
        if self._op_task is None or self._op_task.done():
            self._op_task = asyncio.get_running_loop().create_task(self._run_ops())

    async def _run_ops(self):
        while self._ops:
            coro_fn, args = self._ops.pop(0)
            try:
                await coro_fn(*args)
            except Exception:  # a failed radio operation must not stop the next ones
                log.exception("radio operation %s failed", coro_fn.__name__)

    # -- the radio interface (bluetooth.BLE calls these) ---------------------------------
    def activate(self, config):
        self.configure(config)
        # NimBLE loads (or makes and stores) its IRK at start: the firmware sees IRQ 29/30.
        asyncio.get_running_loop().create_task(self._load_irk())
        address = self.device.random_address
        return (address.address_type, bytes(reversed(address.address_bytes)))

    async def _load_irk(self):
        irk = await self._request("get_secret", [SECRET_OUR_IRK, 0, b"irk"])
        if irk is None or len(irk) != 16:
            irk = secrets.token_bytes(16)
            await self._request("set_secret", [SECRET_OUR_IRK, b"irk", irk])
        self.device.irk = bytes(irk)

    def deactivate(self):
        for link in list(self.links.values()):
            self._submit(self._disconnect_link, link)
        self._submit(self.device.stop_advertising)

    def irq_registered(self):
        pass

    def configure(self, changes):
        for name, value in changes.items():
            if name == "gap_name":
                self.device.name = value
            elif name == "mtu":
                self.device.gatt_server.max_mtu = value
            self.config[name] = value

    def register(self, spec):
        """MicroPython's service definition (UUIDs as LE hex) -> value handles per service."""
        server = bumble_gatt_server.Server(self.device)
        self.device.gatt_server = server
        server.max_mtu = self.config.get("mtu", 256)
        self.device.add_default_services()
        self.attributes = {}
        built = []
        for service_uuid, chars in spec:
            characteristics, attrs = [], []
            for char_uuid, flags, descriptors in chars:
                char_attr = _Attribute(0, flags, False)
                descs, desc_attrs = [], []
                for desc_uuid, desc_flags in descriptors:
                    desc_attr = _Attribute(0, desc_flags, True)
                    desc = gatt.Descriptor(
                        _uuid(desc_uuid), _permissions(desc_flags), self._value(desc_attr)
                    )
                    desc_attr.bumble = desc
                    descs.append(desc)
                    desc_attrs.append(desc_attr)
                char = gatt.Characteristic(
                    _uuid(char_uuid),
                    gatt.Characteristic.Properties(flags & 0x3E),
                    _permissions(flags),
                    self._value(char_attr),
                    descs,
                )
                char_attr.bumble = char
                characteristics.append(char)
                attrs.append(char_attr)
                attrs.extend(desc_attrs)
            service = gatt.Service(_uuid(service_uuid), characteristics)
            server.add_service(service)
            built.append(attrs)
        handles = []
        for attrs in built:
            for attr in attrs:
                attr.handle = attr.bumble.handle
                self.attributes[attr.handle] = attr
            handles.append([attr.handle for attr in attrs])
        return handles

    def advertise(self, interval_us, adv_data, resp_data, connectable):
        if interval_us is None:
            self._submit(self.device.stop_advertising)
            return
        interval_ms = max(interval_us / 1000.0, MIN_ADVERTISING_INTERVAL_MS)
        if self.adv_interval_cap_ms is not None:
            interval_ms = max(
                min(interval_ms, self.adv_interval_cap_ms), MIN_ADVERTISING_INTERVAL_MS
            )
        kind = (
            AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE
            if connectable
            else AdvertisingType.UNDIRECTED_SCANNABLE
        )
        self._submit(self._advertise, kind, bytes(adv_data), bytes(resp_data), interval_ms)

    async def _advertise(self, kind, adv_data, resp_data, interval_ms):
        await self.device.start_advertising(
            advertising_type=kind,
            advertising_data=adv_data,
            scan_response_data=resp_data,
            advertising_interval_min=interval_ms,
            advertising_interval_max=interval_ms,
        )

    def notify(self, conn, handle, data, update=False):
        link = self.links.get(conn)
        attr = self.attributes.get(handle)
        if link is None or attr is None or link.dropping:
            return  # sent into a link that is gone: lost, as on air
        if update:
            self._submit(self._update_subscriber, link, attr, bytes(data))
            return
        mtu = link.connection.att_mtu
        pdu = ATT_Handle_Value_Notification(
            attribute_handle=handle, attribute_value=bytes(data)[: mtu - 3]
        )
        self.device.gatt_server.send_gatt_pdu(link.connection, bytes(pdu))
        self._took_credit(link)
        self._count(link, "notify")

    async def _update_subscriber(self, link, attr, data):
        cccd = self.device.gatt_server.subscribers.get(link.connection, {}).get(attr.handle)
        if not cccd:
            return
        if cccd[0] & 0x01:
            await self.device.gatt_server.notify_subscriber(
                link.connection, attr.bumble, data, force=True
            )
        elif cccd[0] & 0x02:
            await self.device.gatt_server.indicate_subscriber(
                link.connection, attr.bumble, data, force=True
            )

    def indicate(self, conn, handle, data):
        link = self.links.get(conn)
        attr = self.attributes.get(handle)
        if link is None or attr is None or link.dropping:
            return
        self._took_credit(link)
        asyncio.get_running_loop().create_task(self._indicate(link, attr, bytes(data)))

    async def _indicate(self, link, attr, data):
        status = 0
        try:
            await self.device.gatt_server.indicate_subscriber(
                link.connection, attr.bumble, data, force=True
            )
            self._count(link, "indicate")
        except (TimeoutError, asyncio.CancelledError, core.TimeoutError):
            status = 0x0E  # never confirmed: NimBLE reports a non-zero status
        except Exception:
            status = 0x0E
        if link.handle in self.links:
            self._event("indicate_done", [link.handle, attr.handle, status])

    def disconnect(self, conn):
        link = self.links.get(conn)
        if link is not None:
            self._submit(self._disconnect_link, link)

    async def _disconnect_link(self, link):
        if link.handle in self.links:
            try:
                await link.connection.disconnect()
            except (core.BaseBumbleError, hci.HCI_Error):
                pass

    def pair(self, conn):
        link = self.links.get(conn)
        if link is not None:
            self.device.request_pairing(link.connection)

    def passkey(self, conn, action, passkey):
        link = self.links.get(conn)
        if link is None:
            return
        waiter = link.passkey_waiters.pop(action, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(passkey)

    # -- test hooks ----------------------------------------------------------------------
    def set_notify_credits(self, credits):
        """NimBLE's mbuf pool as a window: at most `credits` notifications/indications in
        flight, gatts_notify raises OSError(ENOMEM) beyond it. None: unlimited."""
        self._event("sim", [{"credits": credits}])

    def set_enomem_every(self, k):
        """Every k-th gatts_notify raises OSError(ENOMEM) (0: never), counted from now."""
        self._event("sim", [{"enomem_every": k}])

    def drop_link_after(self, kind, count):
        """Lose the link (both sides, HCI 0x08) at the `count`-th PDU of `kind` from now.
        "notify", "indicate": that one reaches the central, nothing after it does.
        "write", "read": the firmware gets it (IRQ 3 / 4), the central gets no response."""
        self._counts[kind] = 0
        self._drop_rules[kind] = count

    async def drop_link(self):
        """Lose every link now, as out of range: no LL_TERMINATE, both controllers."""
        for link in list(self.links.values()):
            link.dropping = True
            self._inject_loss(link)
        await asyncio.sleep(0)

    def _count(self, link, kind):
        self._counts[kind] += 1
        if self._drop_rules.get(kind) != self._counts[kind]:
            return
        del self._drop_rules[kind]
        link.dropping = True
        if kind in ("write", "read"):
            self._inject_loss(link)  # the firmware has it; the response is lost on air
        else:
            asyncio.get_running_loop().create_task(self._drop_after_delivery(link))

    async def _drop_after_delivery(self, link):
        await link.connection.drain()
        for _ in range(8):  # the PDU crosses host -> controller -> link -> peer in call_soon hops
            await asyncio.sleep(0)
        self._inject_loss(link)

    def _inject_loss(self, link):
        if link.handle not in self.links:
            return
        ours = next(
            (c for c in self.controller.le_connections.values() if c.handle == link.handle), None
        )
        if ours is None:
            return
        peer_controller = self.link.find_le_controller(ours.peer_address)
        self.controller.on_le_disconnected(ours, _HCI_CONNECTION_TIMEOUT)
        if peer_controller is not None:
            theirs = peer_controller.le_connections.get(ours.self_address)
            if theirs is not None:
                peer_controller.on_le_disconnected(theirs, _HCI_CONNECTION_TIMEOUT)

    async def power_off(self):
        """The board resets: every link is lost, the controller leaves the air."""
        if not self.powered:
            return
        self.powered = False  # from now on the firmware's radio calls go nowhere
        self._ops.clear()
        if self._op_task is not None:  # one HCI command at a time: let the last one end
            await asyncio.wait({self._op_task}, timeout=5)
        for link in list(self.links.values()):
            link.dropping = True
            self._inject_loss(link)
        await asyncio.sleep(0)
        if self.device.legacy_advertiser or self.device.legacy_advertising_set:
            with contextlib.suppress(core.BaseBumbleError, hci.HCI_Error):
                await self.device.stop_advertising()
        self.link.remove_controller(self.controller)

    # -- Bumble events -------------------------------------------------------------------
    def _pairing_config(self, connection):
        link = self.links.get(connection.handle)
        return PairingConfig(
            sc=bool(self.config.get("le_secure")),
            mitm=bool(self.config.get("mitm")),
            bonding=bool(self.config.get("bond")),
            delegate=_FirmwareDelegate(self, link, self.config.get("io", 3)),
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )

    async def _ask_firmware(self, link, action, number):
        if link is None or link.handle not in self.links:
            return None
        waiter = asyncio.get_running_loop().create_future()
        link.passkey_waiters[action] = waiter
        self._event("passkey", [link.handle, action, number])
        try:
            return await asyncio.wait_for(waiter, self.passkey_timeout_s)
        except (TimeoutError, asyncio.CancelledError):
            return None
        finally:
            link.passkey_waiters.pop(action, None)

    def _on_connection(self, connection):
        if connection.role != hci.Role.PERIPHERAL:
            return
        link = _Link(connection)
        self.links[link.handle] = link
        connection.on("disconnection", lambda reason: self._on_disconnection(link, reason))
        connection.on(
            "connection_att_mtu_update",
            lambda: self._event("mtu", [link.handle, connection.att_mtu]),
        )
        connection.on("connection_parameters_update", lambda: self._on_parameters(link))
        connection.on("pairing_start", lambda: setattr(link, "pairing", True))
        connection.on("pairing", lambda keys: self._on_pairing(link, keys))
        connection.on("pairing_failure", lambda reason: self._on_pairing_failure(link, reason))
        connection.on("connection_encryption_change", lambda: self._on_encryption_change(link))
        address = connection.peer_address
        self._event(
            "connect", [link.handle, address.address_type, bytes(reversed(address.address_bytes))]
        )

    def _on_parameters(self, link):
        # NimBLE's units: interval in 1.25 ms, supervision timeout in 10 ms (Bumble: ms).
        parameters = link.connection.parameters
        interval = round(parameters.connection_interval / 1.25)
        timeout = round(parameters.supervision_timeout / 10)
        self._event(
            "conn_update", [link.handle, interval, parameters.peripheral_latency, timeout, 0]
        )

    def _on_disconnection(self, link, _reason):
        self.links.pop(link.handle, None)
        for waiter in link.passkey_waiters.values():
            if not waiter.done():
                waiter.cancel()
        if link.credits_out:  # NimBLE frees a dead link's mbufs
            self._event("credit", [link.credits_out])
            link.credits_out = 0
        address = link.connection.peer_address
        self._event(
            "disconnect",
            [link.handle, address.address_type, bytes(reversed(address.address_bytes))],
        )

    def _report_security(self, link):
        self._event(
            "encryption",
            [
                link.handle,
                link.encrypted,
                link.authenticated,
                link.bonded,
                16 if link.encrypted else 0,
            ],
        )

    def _on_pairing(self, link, keys):
        link.pairing = False
        link.encrypted = link.connection.is_encrypted
        ltk = keys.ltk or keys.ltk_peripheral or keys.ltk_central
        link.authenticated = bool(ltk and ltk.authenticated)
        link.bonded = str(link.connection.peer_address) in self._bonded_names
        self._report_security(link)

    def _on_pairing_failure(self, link, _reason):
        link.pairing = False
        link.encrypted = link.connection.is_encrypted
        self._report_security(link)

    def _on_encryption_change(self, link):
        link.encrypted = link.connection.is_encrypted
        if link.pairing:
            # Reads and writes see the new security at once (NimBLE updates sec_state on
            # the encryption change); IRQ 28 waits until pairing has finished, as NimBLE's.
            session = self.device.smp_manager.sessions.get(link.handle)
            method = getattr(session, "pairing_method", None)
            link.authenticated = link.encrypted and method not in (None, PairingMethod.JUST_WORKS)
            return
        keys = self.keystore.loaded.get(str(link.connection.peer_address))
        ltk = keys and (keys.ltk or keys.ltk_peripheral or keys.ltk_central)
        link.authenticated = bool(link.encrypted and ltk and ltk.authenticated)
        link.bonded = bool(link.encrypted and keys is not None)
        self._report_security(link)

    # -- GATT access, as NimBLE's access callback -----------------------------------------
    def _value(self, attr):
        async def read(connection):
            return await self._read(attr, connection)

        async def write(connection, value):
            await self._write(attr, connection, value)

        return gatt.CharacteristicValue(read=read, write=write)

    async def _check(self, attr, connection, need_enc, need_auth):
        if attr.is_descriptor or not (attr.flags & (need_enc | need_auth)):
            return
        link = self.links.get(connection.handle)
        if link is None:
            raise ATT_Error(_ATT_UNLIKELY_ERROR)
        if not link.encrypted:
            stored = await self.keystore.get(str(connection.peer_address))
            raise ATT_Error(
                _ATT_INSUFFICIENT_ENCRYPTION if stored else _ATT_INSUFFICIENT_AUTHENTICATION
            )
        if attr.flags & need_auth and not link.authenticated:
            raise ATT_Error(_ATT_INSUFFICIENT_AUTHENTICATION)

    async def _read(self, attr, connection):
        if not attr.flags & _FLAG_READ:
            raise ATT_Error(_ATT_READ_NOT_PERMITTED)
        await self._check(attr, connection, _FLAG_READ_ENCRYPTED, _FLAG_READ_AUTHENTICATED)
        result = await self._request("read", [connection.handle, attr.handle])
        status, value = result if result is not None else (_ATT_UNLIKELY_ERROR, b"")
        if status:
            raise ATT_Error(status)
        link = self.links.get(connection.handle)
        if link is not None:
            self._count(link, "read")
        return bytes(value)

    async def _write(self, attr, connection, value):
        if not attr.flags & (_FLAG_WRITE | _FLAG_WRITE_NO_RESPONSE):
            raise ATT_Error(_ATT_WRITE_NOT_PERMITTED)
        await self._check(attr, connection, _FLAG_WRITE_ENCRYPTED, _FLAG_WRITE_AUTHENTICATED)
        link = self.links.get(connection.handle)
        if link is None or link.dropping:
            return
        self._event("write", [connection.handle, attr.handle, bytes(value)])
        self._count(link, "write")

    # -- credits -------------------------------------------------------------------------
    def _took_credit(self, link):
        link.credits_out += 1
        if link.credit_task is None:
            link.credit_task = asyncio.get_running_loop().create_task(self._return_credits(link))

    async def _return_credits(self, link):
        try:
            while link.credits_out and link.handle in self.links:
                await asyncio.sleep(0)
                await link.connection.drain()
                returned, link.credits_out = link.credits_out, 0
                self._event("credit", [returned])
        finally:
            link.credit_task = None


def _uuid(le_hex):
    return core.UUID.from_bytes(bytes.fromhex(le_hex))


def _permissions(flags):
    permissions = 0
    if flags & _FLAG_READ:
        permissions |= gatt.Attribute.READABLE
    if flags & (_FLAG_WRITE | _FLAG_WRITE_NO_RESPONSE):
        permissions |= gatt.Attribute.WRITEABLE
    return permissions

"""One simulated air: a Bumble `LocalLink` with centrals and peripherals in one event loop.

In process (CPython): firmware, Bumble and the host code share the test's asyncio loop.
The firmware's tasks run on it; `bluetooth` IRQ handlers are called from Bumble's
callbacks on the same loop, i.e. outside the firmware task that awaits, between two of its
steps: a handler that only sets a flag sees what it would on a board.

Through the bridge (`micropython`): `Bridge` listens on 127.0.0.1; each `micropython`
process that connects (its `bluetooth.BLE()` does, from ALGODOSE_BLE_BRIDGE) gets a fresh
`Peripheral` on this link at the bridge's fixed address, as a board that boots; when the
process exits, that peripheral powers off (its links are lost).

    rig = Rig()
    central = await rig.central()
    peripheral = await rig.peripheral()            # in process
    ble = rig.ble(peripheral)                      # the firmware's bluetooth.BLE
    ...
    proc = await rig.micropython("tests/ble_example_peripheral.py", args=[...])
    await proc.bridge.ready()                      # the micropython radio is on air
"""

import asyncio
import contextlib
import itertools
import json
import socket

from bumble.keys import MemoryKeyStore
from bumble.link import LocalLink
from bumble.transport.tcp_server import open_tcp_server_transport_with_socket

from simulator.ble import UPY_DIR, bluetooth_module
from simulator.ble.peripheral import Peripheral, make_controller, make_device
from simulator.runtime import micropython_binary, micropython_env, precompiled_dir

_REQUEST_TIMEOUT_S = 10.0
_addresses = itertools.count(1)


def _new_address(prefix):
    # Static random addresses (top two bits set); unique per rig and role.
    return "%s:00:00:00:00:%02X" % (prefix, next(_addresses) & 0xFF)


class Rig:
    """A LocalLink plus the simulator's defaults for tests.

    adv_interval_cap_ms: advertising runs at most this slowly, whatever the firmware asks
    (air time is not modelled; a test should not wait a 1 s interval to connect).
    passkey_timeout_s: how long pairing waits for the firmware's gap_passkey (SMP: 30 s).
    """

    def __init__(self, adv_interval_cap_ms=20.0, passkey_timeout_s=30.0):
        self.link = LocalLink()
        self.adv_interval_cap_ms = adv_interval_cap_ms
        self.passkey_timeout_s = passkey_timeout_s
        self.peripherals = []
        self.bridges = []
        self.processes = []
        self._transports = []

    async def central(self, address=None, keystore=None):
        """A powered-on Bumble central on this link (a laptop's adapter). Bonds stay in
        `keystore` (default: in memory, for the rig's life; a JsonKeyStore persists)."""
        device, _ = make_device("central", self.link, address or _new_address("C0"))
        device.keystore = keystore if keystore is not None else MemoryKeyStore()
        await device.power_on()
        return device

    def _apply_defaults(self, peripheral):
        peripheral.adv_interval_cap_ms = self.adv_interval_cap_ms
        peripheral.passkey_timeout_s = self.passkey_timeout_s

    async def peripheral(self, address=None):
        """A powered-on simulated radio for firmware running in this process."""
        peripheral = await Peripheral.start(self.link, address or _new_address("E0"))
        self._apply_defaults(peripheral)
        self.peripherals.append(peripheral)
        return peripheral

    def ble(self, peripheral):
        """The `bluetooth.BLE` the firmware gets on this radio (board.py's job on a board)."""
        return bluetooth_module().BLE(peripheral)

    async def restart(self, peripheral):
        """The board resets: `peripheral` powers off and a new radio with the same address
        comes up; the firmware is rebuilt on it by the caller (from its flash)."""
        await peripheral.power_off()
        return await self.peripheral(peripheral.address)

    async def serve_central(self, address=None):
        """A central controller on this link whose host is another process: returns the
        Bumble transport spec ("tcp-client:127.0.0.1:PORT") for
        `python -m simulator.ble.host_runner --hci SPEC ...` (host code in a subprocess)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        transport = await open_tcp_server_transport_with_socket(sock)
        make_controller(
            "remote-central",
            self.link,
            address or _new_address("C1"),
            host_source=transport.source,
            host_sink=transport.sink,
        )
        self._transports.append(transport)
        return "tcp-client:127.0.0.1:%d" % sock.getsockname()[1]

    async def bridge(self, address=None):
        bridge = Bridge(self, address or _new_address("D0"))
        await bridge.start()
        self.bridges.append(bridge)
        return bridge

    async def micropython(
        self, script=None, args=(), bridge=None, heapsize="256K", module=None, extra_path=()
    ):
        """Start `micropython SCRIPT ARGS` (or `-m MODULE`, found on `extra_path`) with its
        `bluetooth` on a bridge of this rig (a new one unless given). Firmware, fakes and
        the `bluetooth` shim import as mpy-cross bytecode, as run_harness does."""
        bridge = bridge or await self.bridge()
        proc = MicroPythonProcess(bridge)
        await proc.start(script, module, args, heapsize, extra_path)
        self.processes.append(proc)
        return proc

    async def close(self):
        for proc in self.processes:
            await proc.stop()
        for bridge in self.bridges:
            await bridge.close()
        for peripheral in self.peripherals:
            if peripheral.powered:
                await peripheral.power_off()
        for transport in self._transports:
            await transport.close()


class _RemoteHost:
    """The bridge's side of the firmware: events and requests as JSON lines."""

    def __init__(self, bridge, writer):
        self._bridge = bridge
        self._writer = writer
        self._ids = itertools.count(1)
        self.replies = {}

    def send(self, msg):
        if self._writer.is_closing():
            return
        encode = bluetooth_module()._encode
        self._writer.write((json.dumps(encode(msg)) + "\n").encode())

    def event(self, name, args):
        self.send(["event", name, args])

    async def request(self, name, args):
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self.replies[request_id] = future
        self.send(["req", request_id, name, args])
        try:
            return await asyncio.wait_for(future, _REQUEST_TIMEOUT_S)
        except (TimeoutError, ConnectionError):
            return None
        finally:
            self.replies.pop(request_id, None)

    def fail_all(self):
        for future in self.replies.values():
            if not future.done():
                future.set_exception(ConnectionError("firmware gone"))


def _free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Bridge:
    """A TCP endpoint where a `micropython` process's `bluetooth` finds its radio."""

    def __init__(self, rig, address):
        self.rig = rig
        self.address = address
        self.peripheral = None
        self.port = None
        self._server = None
        self._up = asyncio.Event()
        self._sessions = set()
        self.boots = 0

    async def start(self):
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def env_value(self):
        return "127.0.0.1:%d" % self.port

    async def ready(self, timeout_s=20.0):
        """Wait until a micropython process has booted a radio on this bridge."""
        await asyncio.wait_for(self._up.wait(), timeout_s)
        return self.peripheral

    async def _serve(self, reader, writer):
        self._sessions.add(asyncio.current_task())
        if self.peripheral is not None and self.peripheral.powered:
            await self.peripheral.power_off()
        peripheral = await Peripheral.start(self.rig.link, self.address)
        self.rig._apply_defaults(peripheral)
        host = _RemoteHost(self, writer)
        peripheral.set_host(host)
        self.peripheral = peripheral
        self.boots += 1
        self._up.set()
        decode = bluetooth_module()._decode
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                msg = decode(json.loads(line))
                kind = msg[0]
                if kind == "call":
                    _, call_id, op, args = msg
                    result = (
                        _free_udp_port()
                        if op == "free_udp_port"
                        else getattr(peripheral, op)(*args)
                    )
                    host.send(["ret", call_id, result])
                elif kind == "op":
                    getattr(peripheral, msg[1])(*msg[2])
                elif kind == "reply":
                    future = host.replies.get(msg[1])
                    if future is not None and not future.done():
                        future.set_result(msg[2])
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            host.fail_all()
            self._up.clear()
            if peripheral.powered:
                await peripheral.power_off()
            writer.close()
            self._sessions.discard(asyncio.current_task())

    async def close(self):
        """Stop listening; wait until every booted radio has powered off (its process
        ended first: MicroPythonProcess.stop)."""
        if self._sessions:
            await asyncio.wait(set(self._sessions), timeout=10)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class MicroPythonProcess:
    """A `micropython` process whose `bluetooth` is the bridge's radio; stdout as lines."""

    def __init__(self, bridge):
        self.bridge = bridge
        self.proc = None
        self.lines = []
        self._new_line = asyncio.Event()
        self._reader_task = None
        self._stderr_task = None
        self.stderr = b""

    async def start(self, script, module, args, heapsize, extra_path=()):
        if (script is None) == (module is None):
            raise ValueError("give a script or a module")
        env = micropython_env(extra_path=[precompiled_dir(UPY_DIR), *extra_path])
        env["ALGODOSE_BLE_BRIDGE"] = self.bridge.env_value
        target = [str(script)] if script is not None else ["-m", module]
        self.proc = await asyncio.create_subprocess_exec(
            micropython_binary(),
            *["-X", "heapsize=" + heapsize, *target],
            *[str(a) for a in args],
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        loop = asyncio.get_running_loop()
        self._reader_task = loop.create_task(self._read())
        self._stderr_task = loop.create_task(self._read_stderr())

    async def _read(self):
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.decode(errors="replace").rstrip("\n"))
            self._new_line.set()

    async def _read_stderr(self):
        # Read as it comes: a full pipe would block the process mid-write.
        assert self.proc is not None and self.proc.stderr is not None
        while chunk := await self.proc.stderr.read(4096):
            self.stderr += chunk

    async def expect(self, prefix, timeout_s=10.0, start=0):
        """The first stdout line from index `start` that starts with `prefix`."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            for line in self.lines[start:]:
                if line.startswith(prefix):
                    return line
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0 or self.proc is None or self.proc.returncode is not None:
                raise AssertionError(
                    "micropython never printed %r; stdout %r, stderr %r"
                    % (prefix, self.lines[-20:], self.stderr.decode(errors="replace")[-2000:])
                )
            self._new_line.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_line.wait(), min(remaining, 0.5))

    async def stop(self, timeout_s=5.0):
        """Power the board off: end the process (its radio drops every link)."""
        if self.proc is None or self.proc.returncode is not None:
            return
        self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), timeout_s)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        for task in (self._reader_task, self._stderr_task):
            if task is not None:
                await task

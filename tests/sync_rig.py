"""Test helper for the sync tests: a unit (tests/device/sync_device.py: the real store and the
real firmware/ble.py) on either runtime on a simulator rig, and the laptop (host_sync's own
code through bleak, on the Bumble backend) seen the same way by every test."""

import asyncio
import contextlib
import os
import sys
from pathlib import Path

from ble_rig import Example

from simulator.ble import bluetooth_module
from simulator.ble.bleak_backend import use_bumble
from simulator.ble.rig import Rig
from simulator.runtime import precompiled_dir

DEVICE_DIR = Path(__file__).resolve().parent / "device"
if str(DEVICE_DIR) not in sys.path:
    sys.path.insert(0, str(DEVICE_DIR))

import sync_device  # noqa: E402  (tests/device, on the path just above)

from host_sync.ble import BleTransport, find  # noqa: E402
from host_sync.db import Database  # noqa: E402
from host_sync.pull import pull  # noqa: E402

DEVICE_ID = sync_device.DEVICE_ID


class Device(Example):
    """The unit in process (cpython) or as a micropython process through the bridge; what
    it says, its radio and a power cycle as for the example peripheral (tests/ble_rig.py)."""

    def __init__(self, rig, runtime, workdir, device_id=DEVICE_ID, blocks=64, heapsize="2M"):
        super().__init__(rig, runtime, os.path.join(str(workdir), "unused-secrets.json"))
        self.workdir = str(workdir)
        self.device_id = device_id
        self.blocks = blocks
        self.heapsize = heapsize
        self.unit = None  # in process: the sync_device.Unit

    async def start(self):
        if self.runtime == "cpython":
            if self.radio is None:
                self.radio = await self.rig.peripheral()
            else:
                self.radio = await self.rig.restart(self.radio)
            root = os.path.join(self.workdir, "unit")
            os.makedirs(root, exist_ok=True)
            ble = self.rig.ble(self.radio)
            self.unit = self.instance = sync_device.Unit(
                bluetooth_module(), ble, root, self.device_id
            )
            self._task = asyncio.get_running_loop().create_task(self.unit.main())
        else:
            self._bridge = self._bridge or await self.rig.bridge()
            self._proc = await self.rig.micropython(
                module="sync_device",
                extra_path=[precompiled_dir(DEVICE_DIR)],
                args=[
                    os.path.join(self.workdir, "flash.img"),
                    self._cmd_path(),
                    self.device_id,
                    self.blocks,
                ],
                bridge=self._bridge,
                heapsize=self.heapsize,
            )
            self.radio = await self._bridge.ready()
        self._seen = 0
        await self.expect("ready", timeout_s=30)
        return self

    def _cmd_path(self):
        return os.path.join(self.workdir, "cmd")

    async def command(self, text, timeout_s=60.0):
        if self.runtime == "cpython":
            return self.unit.command(text)
        tmp = self._cmd_path() + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self._cmd_path())
        line = await self.expect("done ", timeout_s)
        return line[len("done ") :]

    async def shown_passkey(self):
        """The passkey the unit shows (what the clinician reads and types on the laptop)."""
        line = await self.expect("passkey ", timeout_s=10)
        return None if line.endswith("none") else int(line.split()[1])

    async def state(self):
        words = (await self.command("state")).split()
        return {"stored": int(words[1]), "acked": int(words[3]), "records": int(words[5])}

    async def info(self):
        words = (await self.command("info")).split()
        return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}

    async def digest(self):
        count, crc = (await self.command("digest")).split()
        return int(count), int(crc)

    async def stop(self):
        """Power off: the radio drops its links; the flash (directory or image) stays."""
        await super().stop()
        if self.runtime == "cpython":
            self.unit.store.close()  # as the power cut: a new Store opens it at the boot


class Laptop:
    """host_sync's own code with bleak on the rig's central; the passkey is read off the
    unit's screen (its log) unless `passkey` says otherwise (a callable)."""

    def __init__(self, central, device, db_path, passkey=None):
        self.central = central
        self.device = device
        self.db = Database(str(db_path))
        self._passkey = passkey or device.shown_passkey

    @contextlib.contextmanager
    def bleak(self):
        with use_bumble(self.central, passkey=self._passkey):
            yield

    async def link(self):
        with self.bleak():
            found = await find(self.device.address, timeout_s=2.0)
            return await BleTransport(found, timeout_s=5.0).connect()

    async def pair(self, seconds=60):
        await self.device.command("pair %d" % seconds)
        link = await self.link()
        try:
            with self.bleak():
                await link.pair()
                assert await link.is_paired()
        finally:
            await link.close()

    async def pull(self, progress=None):
        link = await self.link()
        try:
            with self.bleak():
                return await pull(link, self.db, progress)
        finally:
            with self.bleak():
                await link.close()


def run(runtime, tmp_path, body, timeout_s=120.0, **device_kw):
    """asyncio.run(body(rig, device, laptop)) on a fresh rig; everything closed after."""

    async def main():
        rig = Rig()
        try:
            central = await rig.central()
            device = await Device(rig, runtime, tmp_path, **device_kw).start()
            laptop = Laptop(central, device, tmp_path / "laptop.db")
            await asyncio.wait_for(body(rig, device, laptop), timeout_s)
        finally:
            await rig.close()

    asyncio.run(main())

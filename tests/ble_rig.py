"""Test helper: the example peripheral (tests/ble_example_peripheral.py) on either runtime,
on a simulator rig, seen the same way by the tests: its log lines, its radio, a restart."""

import asyncio
import os
from pathlib import Path

import ble_example_peripheral as example

from simulator.ble import bluetooth_module
from simulator.ble.rig import Rig

TESTS_DIR = Path(__file__).resolve().parent
PASSKEY = 246810


class Example:
    """The example peripheral running in process (cpython) or as a micropython process."""

    def __init__(self, rig, runtime, secrets_path, passkey=PASSKEY):
        self.rig = rig
        self.runtime = runtime
        self.secrets_path = str(secrets_path)
        self.passkey = passkey
        self.radio = None  # simulator.ble.peripheral.Peripheral: the test hooks
        self.instance = None  # in process: the ExamplePeripheral
        self._task = None
        self._proc = None
        self._bridge = None
        self._seen = 0  # log lines before this index belong to earlier expectations

    @property
    def address(self):
        return self.radio.address

    @property
    def lines(self):
        if self.runtime == "cpython":
            return self.instance.lines
        return self._proc.lines

    async def start(self):
        if self.runtime == "cpython":
            if self.radio is None:
                self.radio = await self.rig.peripheral()
            else:
                self.radio = await self.rig.restart(self.radio)
            bluetooth = bluetooth_module()
            ble = self.rig.ble(self.radio)
            self.instance = example.ExamplePeripheral(
                bluetooth, ble, self.secrets_path, self.passkey
            )
            self._task = asyncio.get_running_loop().create_task(self.instance.run())
        else:
            self._bridge = self._bridge or await self.rig.bridge()
            self._proc = await self.rig.micropython(
                module="ble_example_peripheral",
                extra_path=[TESTS_DIR],
                args=[self.secrets_path, self.passkey],
                bridge=self._bridge,
            )
            self.radio = await self._bridge.ready()
        self._seen = 0
        await self.expect("ready")
        return self

    async def expect(self, prefix, timeout_s=10.0):
        """The next log line starting with `prefix` (after the previous expectation)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            lines = self.lines
            for index in range(self._seen, len(lines)):
                if lines[index].startswith(prefix):
                    self._seen = index + 1
                    return lines[index]
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("peripheral never logged %r: %r" % (prefix, lines[-20:]))
            await asyncio.sleep(0.005)

    async def stop(self):
        """Power the board off (its radio drops the link); the secrets file stays."""
        if self.runtime == "cpython":
            if self._task is not None:
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
            await self.radio.power_off()
        else:
            await self._proc.stop()
            while self._bridge.peripheral is not None and self._bridge.peripheral.powered:
                await asyncio.sleep(0.005)

    async def restart(self):
        await self.stop()
        return await self.start()


def run_rig(runtime, tmp_path, body, timeout_s=60.0):
    """asyncio.run(body(rig, example, central)) on a fresh rig; everything closed after."""

    async def main():
        rig = Rig()
        try:
            central = await rig.central()
            peripheral = await Example(
                rig, runtime, os.path.join(tmp_path, "secrets.json")
            ).start()
            await asyncio.wait_for(body(rig, peripheral, central), timeout_s)
        finally:
            await rig.close()

    asyncio.run(main())

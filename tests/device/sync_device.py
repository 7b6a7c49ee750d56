"""A test-only AlgoDose unit for the sync tests: the real store and the real GATT server
(firmware/ble.py, core.sync) on whatever `bluetooth` gives, on both runtimes. The app
(firmware/app.py) will do the same for the product; this is not it.

In process (CPython): `Unit(bluetooth, ble, root)` on a temporary directory (LittleFS cannot
run on CPython), `await unit.main()` as a task, `unit.command("add 5")` directly.
On micropython: `micropython -m sync_device FLASH_IMAGE CMD_PATH [DEVICE_ID]`: the store on
the real LittleFS over a FakeFlash whose every program and erase is written through to
FLASH_IMAGE (a restarted process finds its records and bonds there, as a board its flash).
Commands arrive as a file at CMD_PATH (written whole, then renamed there); each is answered
with one line "done <answer>" on stdout. Every event worth a test is a line too:
"ready", "passkey 123456", "passkey none", "time <wall_s>", "patients <time> <count>".

Commands: "add N" (N trials appended and flushed: "first-last"), "pair S" (open the pairing
window for S seconds), "state" ("stored S acked A records R"), "digest" ("<count> <crc32
of every stored record, in seq order>"), "info" (bonds kept, pairings refused, writes
ignored, pairings made, control point requests).
"""

import asyncio
import binascii

from ble import SyncServer

from core import record
from core import store as store_module

DEVICE_ID = "A1B2C3D4E5F6"
_POLL_S = 0.01


class Unit:
    def __init__(self, bluetooth, ble, root, device_id=DEVICE_ID, log=None, ticks_ms=None):
        self.lines = []
        self._print = log
        self.times = []
        self.lists = []  # (list time, patients) of every list taken
        self.patients = None
        self.store = store_module.Store(root + "/log")
        self.server = SyncServer(
            ble,
            self.store,
            uuid=bluetooth.UUID,
            device_id=device_id,
            bonds_path=root + "/bonds",
            show_passkey=self._show_passkey,
            on_time_set=self._time_set,
            on_patients=self._patients,
            ticks_ms=ticks_ms,
        )
        self.store.open(self.server.now_ms(), None)
        self.passkey = None

    def log(self, line):
        self.lines.append(line)
        if self._print is not None:
            self._print(line)

    def _show_passkey(self, passkey):
        self.passkey = passkey
        self.log("passkey none" if passkey is None else "passkey %06d" % passkey)

    def _time_set(self, wall_s):
        self.times.append(wall_s)
        self.log("time %d" % wall_s)

    def _patients(self, list_time_s, patients):
        self.patients = patients
        self.lists.append((list_time_s, patients))
        self.log("patients %d %d" % (list_time_s, len(patients)))

    def add(self, n):
        first = 0
        last = 0
        for i in range(n):
            fields = (
                "upper_trapezius",
                "L",
                i % 7 + 1,
                "stop",
                0,
                2000 + i % 997,
                2100,
                500,
                4000,
            )
            last = self.store.append(record.TYPE_TRIAL, self.server.now_ms(), None, fields)
            if not first:
                first = last
            if i % 64 == 63:
                self.store.flush()
        self.store.flush()
        return "%d-%d" % (first, last)

    def digest(self):
        crc = 0
        n = 0
        for _seq, view in self.store.records():
            crc = binascii.crc32(view, crc)
            n += 1
        return "%d %d" % (n, crc)

    def command(self, text):
        words = text.split()
        if words[0] == "add":
            return self.add(int(words[1]))
        if words[0] == "pair":
            self.server.open_pairing(self.server.now_ms(), int(words[1]))
            return "open"
        if words[0] == "state":
            st = self.store
            return "stored %d acked %d records %d" % (
                st.stored_seq,
                st.acked_seq,
                st.stats()["records"],
            )
        if words[0] == "digest":
            return self.digest()
        if words[0] == "info":
            server = self.server
            return "bonds %d refused %d ignored %d paired %d requests %d" % (
                server.bonds.peers(),
                server.pairing.refused,
                server.ignored,
                server.pairing.paired,
                server.sync.requests,
            )
        return "unknown"

    async def main(self, cmd_path=None):
        task = asyncio.create_task(self.server.run())
        self.log("ready")
        while True:
            if cmd_path is not None:
                self._poll(cmd_path)
            await asyncio.sleep(_POLL_S)
            if task.done():
                task.result()  # the server's error, if it died

    def _poll(self, cmd_path):
        import os

        try:
            with open(cmd_path) as f:
                text = f.read()
        except OSError:
            return
        os.remove(cmd_path)
        self.log("done " + self.command(text))


class PersistentFlash:
    """A FakeFlash whose programs and erases are written through to an image file."""

    def __init__(self, path, block_size=4096, block_count=64):
        from fake_flash import FakeFlash

        self.block_size = block_size
        try:
            with open(path, "rb") as f:
                image = f.read()
            self.flash = FakeFlash(block_size, block_count, image)
            self.new = False
        except OSError:
            self.flash = FakeFlash(block_size, block_count)
            self.new = True
            with open(path, "wb") as f:
                f.write(self.flash.data)
        self._file = open(path, "r+b")

    def _persist(self, start, n):
        self._file.seek(start)
        self._file.write(memoryview(self.flash.data)[start : start + n])
        self._file.flush()

    def readblocks(self, block, buf, offset=0):
        return self.flash.readblocks(block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        result = self.flash.writeblocks(block, buf, offset)
        self._persist(block * self.block_size + (offset or 0), len(buf))
        return result

    def ioctl(self, op, arg):
        result = self.flash.ioctl(op, arg)
        if op == 6:  # block erase
            self._persist(arg * self.block_size, self.block_size)
        return result


def main(argv):
    import bluetooth
    import vfs

    from drivers import flashfs

    blocks = int(argv[4]) if len(argv) > 4 else 64
    flash = PersistentFlash(argv[1], 4096, blocks)
    if flash.new:
        vfs.VfsLfs2.mkfs(flash)  # pyright: ignore[reportArgumentType] (the block protocol)
    flashfs.mount(flashfs.Fence(flash), "/flash")
    device_id = argv[3] if len(argv) > 3 else DEVICE_ID
    unit = Unit(bluetooth, bluetooth.BLE(), "/flash", device_id, log=print)
    asyncio.run(unit.main(argv[2]))


if __name__ == "__main__":
    import sys

    main(sys.argv)

"""A clinic visit from a new patient to synced data: the virtual bedside unit and a laptop
side by side on the simulator's Bluetooth (two Bumble devices on one LocalLink, no radio).

The unit is the firmware's real main/app on the simulator's board (simulator/harness/demo.py
scripts the clinician's hands); on CPython it runs on this event loop with an in-process
radio, on micropython in its own process through the socket bridge. The laptop is the real
host_sync code through bleak's public API (simulator.ble.bleak_backend): it pairs with the
passkey the unit shows, pushes the clinic's patient list, sets the unit's clock, and after
the visit pulls the records into DIR/algodose.db. `python -m simulator demo` runs it."""

import asyncio
import csv
import os
import sys
from argparse import Namespace
from pathlib import Path

from simulator import HARNESS_DIR, use_firmware
from simulator.runtime import precompiled_dir

_HEAPSIZE = "2M"  # the simulated flash (192 KB), the firmware and the bridge's module
_WAIT_S = 120  # for the unit to reach a step: longer is a bug, said in one line


class DemoError(Exception):
    """The demo could not finish: one line that says where it stopped."""


class _Lines:
    """The unit's output lines as they come (in process: written here; micropython: the
    process's stdout), with waits for a kind of line."""

    def __init__(self):
        self.lines = []
        self._new = asyncio.Event()

    def write(self, text):
        for line in text.splitlines():
            self.lines.append(line)
        self._new.set()

    async def expect(self, prefix, done=None):
        """The first line that starts with prefix; DemoError if done() says the unit ended
        first, or after _WAIT_S."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _WAIT_S
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if line.startswith(prefix):
                    return line
            seen = len(self.lines)
            if done is not None and done():
                raise DemoError("the unit stopped before '%s'" % prefix)
            left = deadline - loop.time()
            if left <= 0:
                raise DemoError("the unit did not reach '%s' in %d s" % (prefix, _WAIT_S))
            self._new.clear()
            try:
                await asyncio.wait_for(self._new.wait(), min(left, 0.2))
            except TimeoutError:
                pass


class _ProcessLines(_Lines):
    """The micropython unit's stdout, followed as it grows."""

    def __init__(self, proc):
        super().__init__()
        self.proc = proc
        self.lines = proc.lines  # the process's reader appends to this list

    async def expect(self, prefix, done=None):
        return await super().expect(prefix, done or self._ended)

    def _ended(self):
        p = self.proc.proc
        return p is not None and p.returncode is not None


def _patients_csv(path, patients):
    """The clinic's patient list as its CSV (host_sync/patients.py's columns)."""
    from core.vocab import DEPTHS, GAUGES_MM_X100, MANIPULATIONS
    from host_sync.patients import COLUMNS

    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(COLUMNS)
        for p in patients:
            dose = p.get("last_dose")
            row = {
                "code": p["code"],
                "age": p["age"],
                "sex": p.get("sex", "U"),
                "sessions": p.get("sessions", 0),
            }
            for key in ("conditions", "flags", "contraindications", "last_adjuncts"):
                row[key] = ";".join(p.get(key, ()))
            if dose is not None:
                row["last_gauge_mm"] = "%.2f" % (GAUGES_MM_X100[dose[0]] / 100)
                row["last_needles"] = dose[1]
                row["last_depth"] = DEPTHS[dose[2]]
                row["last_manipulation"] = MANIPULATIONS[dose[3]]
            out.writerow([row.get(c, "") for c in COLUMNS])


async def _laptop(lines, db_path, csv_path, follow):
    """What the clinician does on the laptop, as the unit asks for it. Each command prints
    its own lines; follow() first shows the unit's lines so far, so the story keeps its
    order."""
    from host_sync import cli

    args = Namespace(db=str(db_path), device=None, timeout=5.0, file=str(csv_path))
    await lines.expect("link pairing-open")
    follow("$ python -m host_sync pair")
    await cli.cmd_pair(args)
    follow("$ python -m host_sync patients push %s" % csv_path.name)
    await cli.cmd_patients_push(args)
    follow("$ python -m host_sync set-time")
    await cli.cmd_set_time(args)
    await lines.expect("link stored")
    follow("$ python -m host_sync pull --db %s" % db_path)
    await cli.cmd_pull(args)


async def clinic_day(out_dir, runtime, show):
    """Runs the visit. show(line) gets every line of the unit (say / frame / link / data)
    as it comes, and the laptop's commands ("$ ..."), in order; the host_sync commands print
    their own output."""
    use_firmware()
    from simulator.ble import bluetooth_module
    from simulator.ble.bleak_backend import use_bumble
    from simulator.ble.rig import Rig

    sys.path.insert(0, str(HARNESS_DIR))
    import demo as unit_demo  # simulator/harness/demo.py: the unit's side (its patient list)

    bluetooth_module()
    out_dir = Path(out_dir)
    db_path = out_dir / "algodose.db"
    for stale in (db_path, out_dir / "algodose.db-journal"):
        if stale.exists():
            stale.unlink()  # a new clinic day: this visit's records only
    csv_path = out_dir / "patients.csv"
    _patients_csv(csv_path, unit_demo.PATIENTS)
    rig = Rig()
    unit_task = proc = None
    try:
        central = await rig.central()

        async def passkey():
            line = await lines.expect("link passkey ")
            return int(line.split()[-1])

        if runtime == "cpython":
            from unit import serve

            lines = _Lines()
            radio = await rig.peripheral()
            demo, board = unit_demo.setup(lines.write, radio=radio)
            unit_task = asyncio.create_task(serve(demo.script, board))
            done = unit_task.done
        else:
            proc = await rig.micropython(
                module="demo",
                extra_path=[precompiled_dir(HARNESS_DIR)],
                heapsize=_HEAPSIZE,
            )
            lines = _ProcessLines(proc)
            done = lines._ended
        shown = [0]

        def follow(command=None):
            while shown[0] < len(lines.lines):
                show(lines.lines[shown[0]])
                shown[0] += 1
            if command is not None:
                show(command)

        with use_bumble(central, passkey=passkey):
            laptop = asyncio.create_task(_laptop(lines, db_path, csv_path, follow))
            while not laptop.done():
                follow()
                if done():  # the unit is off: the laptop may still be closing its link
                    await asyncio.wait([laptop], timeout=10)
                    break
                await asyncio.sleep(0.05)
            if not laptop.done():
                laptop.cancel()
                raise DemoError("the unit stopped before the laptop's pull: %s" % _last(lines))
            laptop.result()  # the laptop's own error, if it had one
            await lines.expect("data ", done)
        if unit_task is not None:
            await asyncio.wait_for(unit_task, _WAIT_S)
            unit_demo.finish(demo, board)
        follow()
    finally:
        if unit_task is not None and not unit_task.done():
            unit_task.cancel()
        if proc is not None:
            await proc.stop()
        await rig.close()


def _last(lines):
    said = [line for line in lines.lines if line.startswith("say ")]
    return said[-1][4:] if said else "nothing said"


def run(out_dir, runtime, show):
    """The visit, synchronously. DemoError: one line saying where it stopped; a
    host_sync.transport.SyncError: the laptop's own line."""
    os.makedirs(out_dir, exist_ok=True)
    asyncio.run(clinic_day(out_dir, runtime, show))

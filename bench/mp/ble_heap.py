# What the BLE sync server adds to the unit's heap, run in place from the ROMFS image: the
# modules it imports beyond the app's (firmware/ble.py, core.sync, core.bonds) and the
# SyncServer's own buffers (control slots, the patient list's 4 KB, the event ring).
# Started, it also holds the GATT table's values; the radio (NimBLE) keeps its own memory
# outside the MicroPython heap. Prints: bytes.
import gc

import app  # noqa: F401  (the unit without Bluetooth: what bench_app measures)

from core.store import Store

gc.collect()
base = gc.mem_alloc()
from ble import SyncServer  # noqa: E402

server = SyncServer(None, Store("/nowhere"), uuid=lambda value: value, device_id="AD0001")
gc.collect()
print(gc.mem_alloc() - base)

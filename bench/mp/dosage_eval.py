# Runs on micropython: time and heap per dosage evaluation. Cases arrive as JSON lines
# on stdin; prints one JSON object.
import gc
import json
import sys
import time

from core import case, vocab  # noqa: F401  (vocab first: the table's heap alone below)

gc.collect()
before_import = gc.mem_alloc()
from core import dosage  # noqa: E402

gc.collect()
import_bytes = gc.mem_alloc() - before_import

cases = [case.parse_case(json.loads(line)) for line in sys.stdin if line.strip()]
ROUNDS = 200

gc.collect()
start_us = time.ticks_us()
for _ in range(ROUNDS):
    for item in cases:
        dosage.recommend(item)
elapsed_us = time.ticks_diff(time.ticks_us(), start_us)

worst_bytes = 0
total_bytes = 0
for item in cases:
    gc.collect()
    gc.disable()  # no collection inside the window: the delta is every byte allocated
    before = gc.mem_alloc()
    dosage.recommend(item)
    used = gc.mem_alloc() - before
    gc.enable()
    total_bytes += used
    worst_bytes = max(worst_bytes, used)

print(
    json.dumps(
        {
            "us_per_eval": elapsed_us / (ROUNDS * len(cases)),
            "bytes_mean": total_bytes // len(cases),
            "bytes_worst": worst_bytes,
            "import_bytes": import_bytes,
        }
    )
)

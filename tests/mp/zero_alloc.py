# The per-sample hot path allocates nothing, on micropython (gc.mem_alloc): the pipeline
# driver -> scale -> trial engine read by read(), the same at rest where lone -1 codes are
# skipped, and poll() polled every 0.5 ms, through readings, not-ready answers and timeouts.
# Prints one canonical JSON object; tests/test_ppt.py checks it.
from rig import Rig, heap_allocated

from core import canonjson

SAMPLES = 1500


def steps(rig, samples):
    for _ in range(samples):
        rig.step()


def main():
    out = {}
    # ramping at 50 kPa/s after 2 s, the cue on target
    rig = Rig(noise_counts=60, seed=9, calibrated=True, ceiling_kpa_x10=20000)
    rig.chip.set_profile([(0, 0), (2000, 0), (22000, 10200000)])
    rig.trial.arm(0)
    steps(rig, 40)  # warm-up: first calls may intern names or grow attribute tables
    out["ramp"] = [heap_allocated(lambda: steps(rig, SAMPLES)), rig.trial.state, rig.trial.cue]
    # at rest on a bridge balanced at zero: about 1 % of the raw codes are -1, each skipped
    rig = Rig(offset_counts=0, noise_counts=40, seed=9, calibrated=True)
    rig.trial.arm(0)
    steps(rig, 40)
    start = rig.chip.conversions_read
    used = heap_allocated(lambda: steps(rig, SAMPLES))
    out["rest"] = [used, rig.chip.conversions_read - start - SAMPLES, rig.hx.faults]
    # poll() every 0.5 ms for 15 s on the same ramp, 0.5 s of it without data-ready (timeouts)
    rig = Rig(noise_counts=60, seed=9, calibrated=True, ceiling_kpa_x10=20000)
    rig.chip.set_profile([(0, 0), (2000, 0), (22000, 10200000)])
    rig.chip.add_fault("no_data_ready", 12000, 12500)
    rig.trial.arm(0)
    rig.poll_for(200)
    rig.answers[:] = [0, 0, 0]
    out["poll"] = [heap_allocated(lambda: rig.poll_for(30000)), rig.answers, rig.trial.state]
    print(canonjson.dumps(out))


main()

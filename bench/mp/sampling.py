# The per-sample pipeline (pin-level fake HX711 -> real driver -> scale -> trial engine, built
# by the simulator's rig) over 10 000 samples in steady state: 20 s at rest, then a slow ramp
# whose rate changes every 10 s (cues faster / on target / slower). Read two ways: read() at
# each data-ready (Sampler.step), and poll() every 0.5 ms as an asyncio sampling task polls
# between its yields. Runs as a script on micropython (heap and time) and is imported by
# bench/bench_sampling.py on CPython (time, as the baseline column).
import gc
import json
import time

from fake_hx711 import PERIOD_US
from rig import Rig, heap_allocated

SAMPLES = 10000
WARMUP = 200
POLL_US = 500
POLLS = SAMPLES * PERIOD_US // POLL_US  # as long as SAMPLES conversions


def build():
    rig = Rig(
        noise_counts=60,
        seed=11,
        calibrated=True,
        target_kpa_s_x10=100,
        tolerance_pct=20,
        onset_kpa_x10=100,
        ceiling_kpa_x10=20000,
        max_ramp_ms=300000,
    )
    knots = [(0, 0), (20000, 0)]
    mg = 0
    for step, rate_kpa_s in enumerate((8, 10, 13, 10, 8, 13, 10, 8, 13, 10, 10)):
        mg += rate_kpa_s * 10 * 10197  # 10 s at this rate on 1 cm2 (10.197 g per kPa)
        knots.append((30000 + step * 10000, mg))
    rig.chip.set_profile(knots)
    rig.trial.arm(rig.clock.ticks_ms())
    return rig


def run(rig, samples):
    for _ in range(samples):
        rig.step()


def naive_float_bytes(samples=1000):
    # What a float pipeline would cost: counts -> kPa as a float, a float rate, a comparison.
    offset, kpa_per_count = 84000, 0.980665 * 2000 / 430000 / 10
    state = [0.0]

    def pipeline():
        for counts in range(84000, 84000 + samples):
            kpa = (counts - offset) * kpa_per_count
            rate = (kpa - state[0]) * 80.0
            state[0] = kpa
            if rate > 60.0:
                break

    return heap_allocated(pipeline) / samples


def logic_us_per_sample(samples=2000):
    # Scale and trial engine alone, on precomputed counts: the firmware's share of the step.
    rig = build()
    scale, trial = rig.scale, rig.trial
    counts = [84000 + 21 * i for i in range(samples)]  # 10 kPa/s
    start = time.ticks_us()
    for i in range(samples):
        trial.feed(i * 25 // 2, scale.update(counts[i]), False)
    return time.ticks_diff(time.ticks_us(), start) / samples


def timed_us(run_it):
    gc.collect()
    start = time.ticks_us()
    run_it()
    return time.ticks_diff(time.ticks_us(), start)


def main():
    rig = build()
    run(rig, WARMUP)
    read_bytes = heap_allocated(lambda: run(rig, SAMPLES))
    rig = build()
    run(rig, WARMUP)
    read_us = timed_us(lambda: run(rig, SAMPLES))
    polled = build()
    polled.poll_for(WARMUP * PERIOD_US // POLL_US)
    poll_bytes = heap_allocated(lambda: polled.poll_for(POLLS))
    polled = build()
    polled.poll_for(WARMUP * PERIOD_US // POLL_US)
    polled.answers[:] = [0, 0, 0]
    poll_us = timed_us(lambda: polled.poll_for(POLLS))
    readings, not_ready, faults = polled.answers
    print(
        json.dumps(
            {
                "bytes": read_bytes,
                "us_per_sample": read_us / SAMPLES,
                "poll_bytes": poll_bytes,
                "polls": POLLS,
                "poll_us_per_sample": poll_us / SAMPLES,
                "poll_readings": readings,
                "poll_not_ready": not_ready,
                "poll_faults": faults,
                "naive_float_bytes_per_sample": naive_float_bytes(),
                "logic_us_per_sample": logic_us_per_sample(),
                "state": rig.trial.state,
                "cued": rig.trial._n_cued,  # the trial was ramping and cueing throughout
            }
        )
    )


if __name__ == "__main__":
    main()

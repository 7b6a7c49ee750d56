# The per-sample pipeline (pin-level fake HX711 -> real driver -> scale -> trial engine) over
# 10 000 samples in steady state: 20 s at rest, then a slow ramp whose rate changes every 10 s
# (cues faster / on target / slower). Runs as a script on micropython (heap and time) and is
# imported by bench/bench_sampling.py on CPython (time, as the baseline column).
import gc
import json
import time

from fake_hx711 import PERIOD_US, PHASE_US, FakeHX711
from vclock import VirtualClock

from core import ppt
from core.scale import Scale
from drivers.hx711 import HX711

SAMPLES = 10000
WARMUP = 200


def build():
    clock = VirtualClock()
    chip = FakeHX711(clock, 84000, 215000, 60, 11)
    knots = [(0, 0), (20000, 0)]
    mg = 0
    for step, rate_kpa_s in enumerate((8, 10, 13, 10, 8, 13, 10, 8, 13, 10, 10)):
        mg += rate_kpa_s * 10 * 10197  # 10 s at this rate on 1 cm2 (10.197 g per kPa)
        knots.append((30000 + step * 10000, mg))
    chip.set_profile(knots)
    hx = HX711(chip.dout, chip.pd_sck, clock)
    scale = Scale()
    scale.set_tare(84000)
    scale.set_span(430000, 2000, 1)
    trial = ppt.Trial(100, 20, 100, 20000, max_ramp_ms=300000, ticks_diff=clock.ticks_diff)
    trial.arm(clock.ticks_ms())
    return clock, ppt.Sampler(hx, scale, trial), trial


def run(clock, sampler, samples):
    for _ in range(samples):
        clock.sleep_us(PERIOD_US - (clock.now_us - PHASE_US) % PERIOD_US)
        sampler.step(clock.ticks_ms(), False)


def naive_float_bytes(samples=1000):
    # What a float pipeline would cost: counts -> kPa as a float, a float rate, a comparison.
    offset, kpa_per_count = 84000, 0.980665 * 2000 / 430000 / 10
    last = 0.0
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for counts in range(84000, 84000 + samples):
        kpa = (counts - offset) * kpa_per_count
        rate = (kpa - last) * 80.0
        last = kpa
        if rate > 60.0:
            break
    used = gc.mem_alloc() - before
    gc.enable()
    return used / samples


def logic_us_per_sample(samples=2000):
    # Scale and trial engine alone, on precomputed counts: the firmware's share of the step.
    _clock, _sampler, trial = build()
    scale = Scale()
    scale.set_tare(84000)
    scale.set_span(430000, 2000, 1)
    counts = [84000 + 21 * i for i in range(samples)]  # 10 kPa/s
    start = time.ticks_us()
    for i in range(samples):
        trial.feed(i * 25 // 2, scale.update(counts[i]), False)
    return time.ticks_diff(time.ticks_us(), start) / samples


def main():
    clock, sampler, trial = build()
    run(clock, sampler, WARMUP)
    gc.collect()
    gc.disable()  # nothing collected inside the window: the delta is every byte allocated
    before = gc.mem_alloc()
    start = time.ticks_us()
    run(clock, sampler, SAMPLES)
    elapsed = time.ticks_diff(time.ticks_us(), start)
    used = gc.mem_alloc() - before
    gc.enable()
    cues = trial._n_cued  # the trial was ramping and cueing throughout
    print(
        json.dumps(
            {
                "bytes": used,
                "us_per_sample": elapsed / SAMPLES,
                "naive_float_bytes_per_sample": naive_float_bytes(),
                "logic_us_per_sample": logic_us_per_sample(),
                "state": trial.state,
                "cued": cues,
            }
        )
    )


if __name__ == "__main__":
    main()

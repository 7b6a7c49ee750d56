"""The real HX711 driver against the pin-level fake, on CPython and on micropython.

One snippet runs on both runtimes (in-process here, one `micropython` process there) and
prints its measurements as canonical JSON; the tests check each runtime's numbers and that
both printed the same bytes.
"""

import json

import pytest

from simulator.runtime import run_both

DRIVER_CHECKS = r"""
from core import canonjson
from drivers import hx711
from fake_hx711 import FakeHX711
from vclock import VirtualClock

NOISE = 60
irq = []


def irq_off():
    irq.append("off")
    return 7


def irq_on(state):
    irq.append(state)


def rig(noise=NOISE, offset=84000, start_us=0):
    clock = VirtualClock(start_us)
    chip = FakeHX711(clock, offset, 215000, noise, 5)
    hx = hx711.HX711(chip.dout, chip.pd_sck, clock, disable_irq=irq_off, enable_irq=irq_on)
    return clock, chip, hx


def at(clock, t_ms):
    clock.sleep_us(t_ms * 1000 - clock.now_us)


def errors(clock, chip, hx, mg, n=100, scale=1):
    # worst and mean difference between readings and the noise-free counts for load mg
    worst = total = 0
    for _ in range(n):
        clock.sleep_us(12500)
        d = hx.read() - chip.counts(mg) // scale
        worst = max(worst, abs(d))
        total += d
    return [worst, total // n]


out = {}
clock, chip, hx = rig()
steps = ((500, 0), (2500, 1000000), (4500, 5000000), (6500, 12000000))
knots = []
for t, mg in steps:
    knots += [(t - 400, mg), (t + 1600, mg)]
chip.set_profile(knots)
out["steps"] = []
for t, mg in steps:
    at(clock, t)
    out["steps"].append(errors(clock, chip, hx, mg))

# a 50 kPa/s ramp (about 5.1 kg/s on 1 cm2): each reading lies between the loads at the
# start and the end of its conversion period, give or take the noise
clock, chip, hx = rig()
chip.set_profile([(0, 0), (1000, 0), (11000, 5100000)])
outside = 0
for _ in range(800):
    clock.sleep_us(12500)
    value = hx.read()
    low = chip.counts(chip.load_mg(clock.now_us - 12500)) - 4 * NOISE
    high = chip.counts(chip.load_mg(clock.now_us)) + 4 * NOISE
    outside += not low <= value <= high
out["ramp_outside"] = outside

# two's complement: a bridge offset below zero reads negative
clock, chip, hx = rig(offset=-52000)
chip.set_profile([(0, 2000000)])
out["negative"] = errors(clock, chip, hx, 2000000, 20)

# gain by pulse count: A/64 reads half, B/32 reads channel B
clock, chip, hx = rig()
chip.set_profile([(0, 3000000)])
chip.channel_b_counts = 12345
hx.set_gain(hx711.GAIN_A64)
out["a64"] = errors(clock, chip, hx, 3000000, 20, 2)
out["a64_chip"] = [chip.gain, chip.pulses_last]
hx.set_gain(hx711.GAIN_B32)
clock.sleep_us(12500)
out["b32"] = hx.read()
clock.sleep_us(12500)
hx.read()
out["b32_chip"] = [chip.gain, chip.pulses_last]
hx.set_gain(hx711.GAIN_A128)
out["a128"] = errors(clock, chip, hx, 3000000, 20)
out["a128_chip"] = [chip.gain, chip.pulses_last]
try:
    hx.set_gain(100)
    out["bad_gain"] = "accepted"
except ValueError:
    out["bad_gain"] = "rejected"

# every fault: reported, never a reading, and reading resumes when it clears
out["faults"] = {}
for kind in ("unpowered", "no_data_ready", "stuck_high", "stuck_low"):
    clock, chip, hx = rig()
    chip.set_profile([(0, 1000000)])
    chip.add_fault(kind, 1000, 2000)
    at(clock, 1000)
    readings = 0
    waits = []
    codes = []
    flags = []
    while clock.now_us < 1985000:
        clock.sleep_us(12500)
        start = clock.now_us
        value = hx.read()
        if clock.now_us < 2000000:  # a read that waited past the fault may see new data
            readings += value is not None
            codes.append(hx.fault)
            flags.append(hx.saturated)
        waits.append((clock.now_us - start) // 1000)
    at(clock, 2100)
    out["faults"][kind] = {
        "readings": readings,
        "codes": sorted(set(codes)),
        "saturated": sorted(set(flags)),
        "max_wait_ms": max(waits),
        "faults": hx.faults,
        "after": errors(clock, chip, hx, 1000000, 10),
    }

# an overloaded cell saturates at the rails: a fault, not a reading
clock, chip, hx = rig(noise=0)
chip.set_profile([(0, 50000000)])
clock.sleep_us(12500)
out["overload"] = [hx.read(), hx.fault, hx.saturated]
clock, chip, hx = rig(noise=0, offset=-8400000)
clock.sleep_us(12500)
out["underload"] = [hx.read(), hx.fault, hx.saturated]

# power down: no data (a timeout), then power up: A/128 reset, settling, our gain again
clock, chip, hx = rig()
chip.set_profile([(0, 3000000)])
hx.set_gain(hx711.GAIN_A64)
clock.sleep_us(12500)
hx.read()
hx.power_down()
start = clock.now_us
down = [hx.read(), hx.fault, (clock.now_us - start) // 1000, chip.powered]
clock.sleep_us(500000)
hx.power_up()
start = clock.now_us
value = hx.read()
out["power"] = down + [chip.powered, (clock.now_us - start) // 1000]
out["power_a64"] = abs(value - chip.counts(3000000) // 2) <= 2 * NOISE

# ticks wrap (2**30 ms on a board): the data-ready timeout still ends in time
clock, chip, hx = rig(start_us=((1 << 30) - 50) * 1000)
chip.add_fault("no_data_ready", 0)
start = clock.now_us
out["wrap"] = [hx.read(), hx.fault, (clock.now_us - start) // 1000]

out["irq_balanced"] = irq.count("off") == irq.count(7) and len(irq) > 0
print(canonjson.dumps(out))
"""


@pytest.fixture(scope="module")
def driver_runs():
    return run_both(DRIVER_CHECKS)


@pytest.fixture(params=("cpython", "micropython"))
def checks(request, driver_runs):
    return json.loads(driver_runs[request.param])


def test_both_runtimes_print_the_same_bytes(driver_runs):
    assert driver_runs["cpython"] == driver_runs["micropython"]


def test_readings_match_the_load_within_the_noise(checks):
    for worst, mean in checks["steps"]:
        assert worst <= 4 * 60  # the fake's noise is bounded at 3.5 sd
        assert abs(mean) <= 20  # 100 readings: mean error well under one sd
    assert checks["ramp_outside"] == 0
    worst, mean = checks["negative"]
    assert worst <= 240 and abs(mean) <= 40


def test_gain_and_channel_follow_the_pulse_count(checks):
    assert checks["a64"][0] <= 240 and checks["a64_chip"] == [64, 27]
    assert abs(checks["b32"] - 12345) <= 60
    assert checks["b32_chip"] == [32, 26]
    assert checks["a128"][0] <= 240 and checks["a128_chip"] == [128, 25]
    assert checks["bad_gain"] == "rejected"


@pytest.mark.parametrize(
    "kind, code, saturated",
    [
        ("unpowered", 2, False),
        ("no_data_ready", 1, False),
        ("stuck_high", 3, True),
        ("stuck_low", 4, True),
    ],
)
def test_every_fault_is_reported_and_never_a_reading(checks, kind, code, saturated):
    found = checks["faults"][kind]
    assert found["readings"] == 0
    assert found["codes"] == [code]
    assert found["faults"] > 0
    assert found["saturated"] == [saturated]
    assert found["max_wait_ms"] <= 101  # the data-ready wait is bounded by timeout_ms
    worst, _mean = found["after"]  # and readings resume once the fault clears
    assert worst <= 240


def test_an_overloaded_cell_is_a_fault(checks):
    assert checks["overload"] == [None, 3, True]
    assert checks["underload"] == [None, 4, True]


def test_power_down_and_up(checks):
    value, fault, waited, powered, powered_again, settle_ms = checks["power"]
    assert powered is False and value is None and fault == 1 and waited <= 101
    assert powered_again is True
    assert settle_ms >= 50  # 50 ms output settling plus the discarded conversions
    assert checks["power_a64"] is True  # after the A/128 reset, our gain is set again


def test_timeout_survives_the_tick_wrap(checks):
    value, fault, waited = checks["wrap"]
    assert value is None and fault == 1 and 100 <= waited <= 101


def test_interrupts_are_restored_after_every_read(checks):
    assert checks["irq_balanced"] is True


def test_driver_pulses_match_the_datasheet():
    """Independent of the fake: count PD_SCK pulses and the clock-high state on plain pins."""
    from vclock import VirtualClock

    from drivers import hx711

    class Pin:
        def __init__(self, level=0):
            self.level = level
            self.rises = 0

        def value(self, level=None):
            if level is None:
                return self.level
            self.rises += bool(level) and not self.level
            self.level = level

    for gain, pulses in ((128, 25), (32, 26), (64, 27)):
        dout, sck = Pin(0), Pin(0)
        hx = hx711.HX711(dout, sck, VirtualClock(), gain=gain)
        hx._discard = 0
        sck.rises = 0
        assert hx.read() == 0
        assert sck.rises == pulses and sck.level == 0

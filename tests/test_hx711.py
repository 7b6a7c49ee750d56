"""The real HX711 driver against the pin-level fake, on CPython and on micropython.

One snippet runs on both runtimes (in-process here, one `micropython` process there) and
prints its measurements as canonical JSON; the tests check each runtime's numbers and that
both printed the same bytes.
"""

import json

import pytest

from simulator.runtime import RUNTIMES, run_both

DRIVER_CHECKS = r"""
from core import canonjson
from drivers import hx711
from fake_hx711 import FakeHX711
from vclock import VirtualClock

NOISE = 60
irq = []
irq_enabled = [1]


def irq_off():
    irq.append("off")
    irq_enabled[0] = 0
    return 7


def irq_on(state):
    irq.append(state)
    irq_enabled[0] = 1


class IrqSck:
    # PD_SCK between the driver and the fake: counts clock edges, and those that happened
    # while interrupts were enabled (an interrupt there could stretch a pulse past 60 us)
    def __init__(self, pin):
        self.pin = pin
        self.level = 0
        self.edges = 0
        self.edges_irq_on = 0

    def value(self, level):
        if level != self.level:
            self.edges += 1
            self.edges_irq_on += irq_enabled[0]
            self.level = level
        self.pin.value(level)


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
    fault_waits = []
    codes = []
    rails = []
    while clock.now_us < 1985000:
        clock.sleep_us(12500)
        start = clock.now_us
        value = hx.read()
        if clock.now_us < 2000000:  # a read that waited past the fault may see new data
            readings += value is not None
            codes.append(hx.fault)
            rails.append(hx.rail)
        waits.append((clock.now_us - start) // 1000)
        if value is None:
            fault_waits.append(waits[-1])
    at(clock, 2100)
    out["faults"][kind] = {
        "readings": readings,
        "codes": sorted(set(codes)),
        "rails": sorted(set(rails)),
        "max_wait_ms": max(fault_waits),
        "max_read_ms": max(waits),
        "faults": hx.faults,
        "after": errors(clock, chip, hx, 1000000, 10),
    }

# an overloaded cell saturates at the rails: a fault, not a reading
clock, chip, hx = rig(noise=0)
chip.set_profile([(0, 50000000)])
clock.sleep_us(12500)
out["overload"] = [hx.read(), hx.fault, hx.rail]
clock, chip, hx = rig(noise=0, offset=-8400000)
clock.sleep_us(12500)
out["underload"] = [hx.read(), hx.fault, hx.rail]

# a healthy chip at rest on a bridge balanced at zero: now and then a raw code of exactly -1,
# a reading like any other; only -1 every time is an unpowered chip
clock, chip, hx = rig(noise=40, offset=0)
minus_one = readings = worst = 0
for _ in range(3000):
    clock.sleep_us(12500)
    value = hx.read()
    if value is not None:
        readings += 1
        minus_one += value == -1
        worst = max(worst, abs(value))
out["zero_bridge"] = [readings, hx.faults, minus_one, worst, chip.conversions_read]
# and a chip whose every code is -1 (noise-free, offset -1) is unpowered: never a reading
clock, chip, hx = rig(noise=0, offset=-1)
values = []
for _ in range(20):
    clock.sleep_us(12500)
    values.append(hx.read())
out["all_minus_one"] = [sorted(set(values), key=str), hx.fault, hx.faults]

# a power-on reset after a fault (supply lost, -1 codes or no data-ready): the chip is back at
# A/128; at A/64 not one reading may come through at A/128 (about twice the value)
out["reset"] = {}
for kind in ("unpowered", "supply_cut"):
    clock, chip, hx = rig()
    chip.set_profile([(0, 3000000)])
    hx.set_gain(hx711.GAIN_A64)
    if kind == "unpowered":
        chip.add_fault("unpowered", 1000, 1500)
    worst = faults = after = 0
    cut = kind == "supply_cut"
    while clock.now_us < 3000000:
        clock.sleep_us(12500)
        if cut and clock.now_us >= 1000000 and chip.powered:
            chip.supply(False)  # DOUT high: no data-ready, timeouts
        if cut and clock.now_us >= 1500000:
            chip.supply(True)  # power-on reset
            cut = False
        value = hx.read()
        if value is None:
            faults += 1
        else:
            worst = max(worst, abs(value - chip.counts(3000000) // 2))
            after += clock.now_us > 1500000
    out["reset"][kind] = [faults > 0, after > 80, worst <= 4 * NOISE, chip.gain]

# at construction the driver settles as after power_up(): the same conversions are discarded
consumed = []
for gain in (hx711.GAIN_A128, hx711.GAIN_A64):
    clock = VirtualClock()
    chip = FakeHX711(clock, 84000, 215000, 0, 5)
    hx = hx711.HX711(chip.dout, chip.pd_sck, clock, gain=gain)
    hx.read()
    first = chip.conversions_read
    hx.power_down()
    hx.power_up()
    hx.read()
    consumed.append([first, chip.conversions_read - first])
out["settle"] = consumed

# interrupts are off at every PD_SCK edge of every read, the gain pulses 25-27 included
clock = VirtualClock()
chip = FakeHX711(clock, 84000, 215000, NOISE, 5)
sck = IrqSck(chip.pd_sck)
hx = hx711.HX711(chip.dout, sck, clock, disable_irq=irq_off, enable_irq=irq_on)
reads = 0
for gain in (hx711.GAIN_A128, hx711.GAIN_B32, hx711.GAIN_A64):
    hx.set_gain(gain)
    before = chip.conversions_read
    for _ in range(10):
        clock.sleep_us(12500)
        hx.read()
    reads += chip.conversions_read - before
out["irq_edges"] = [sck.edges, sck.edges_irq_on, reads, chip.pulses_last]

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


@pytest.fixture(params=RUNTIMES)
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
    "kind, code, rail",
    [
        ("unpowered", 2, 0),
        ("no_data_ready", 1, 0),
        ("stuck_high", 3, 1),
        ("stuck_low", 4, -1),
    ],
)
def test_every_fault_is_reported_and_never_a_reading(checks, kind, code, rail):
    found = checks["faults"][kind]
    assert found["readings"] == 0
    assert found["codes"] == [code]
    assert found["faults"] > 0
    assert found["rails"] == [rail]
    assert found["max_wait_ms"] <= 101  # the data-ready wait is bounded by timeout_ms
    # and every read: after a fault that may hide a power-on reset, 4 settling conversions
    # (12.5 ms each) come first, and the first of them may follow a wait of up to timeout_ms
    assert found["max_read_ms"] <= 101 + 5 * 13
    worst, _mean = found["after"]  # and readings resume once the fault clears
    assert worst <= 240


def test_an_overloaded_cell_is_a_fault(checks):
    assert checks["overload"] == [None, 3, 1]
    assert checks["underload"] == [None, 4, -1]


def test_a_lone_minus_one_from_a_healthy_chip_is_not_a_fault(checks):
    # At rest on a bridge balanced at zero with 40 counts of noise, about 1 % of the codes
    # are exactly -1: each is skipped for the next conversion, never a fault, never returned.
    readings, faults, minus_one, worst, conversions = checks["zero_bridge"]
    assert faults == 0 and readings == 3000 and minus_one == 0
    assert worst <= 4 * 40
    assert conversions - 3000 - 4 >= 10  # the skipped -1 codes: one conversion read each


def test_minus_one_every_time_is_unpowered_and_never_a_reading(checks):
    values, fault, faults = checks["all_minus_one"]
    assert values == [None] and fault == 2 and faults == 20


@pytest.mark.parametrize("kind", ["unpowered", "supply_cut"])
def test_gain_is_set_again_after_a_power_on_reset(checks, kind):
    # An unpowered fault or a timeout may hide a power-on reset: the chip comes back at A/128,
    # so the driver settles and sends its gain again before the next reading.
    faulted, read_after, all_at_a64, chip_gain = checks["reset"][kind]
    assert faulted is True and read_after is True and chip_gain == 64
    assert all_at_a64 is True


def test_construction_settles_like_power_up(checks):
    for first, after_power_up in checks["settle"]:
        assert first == after_power_up
    assert checks["settle"][0][0] == 5 and checks["settle"][1][0] == 6  # 4 settling (+ gain)


def test_every_clock_edge_of_a_read_has_interrupts_off(checks):
    edges, edges_irq_on, reads, last = checks["irq_edges"]
    # 25, 26, 27 pulses of two edges each per conversion read, at A/128, B/32, A/64
    assert reads >= 30 and edges >= 2 * 25 * reads and last == 27
    assert edges_irq_on == 0


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

# The real HX711 driver against the pin-level fakes: cases for tests/test_hx711.py, run on both
# runtimes by the both_runtimes fixture (how: docs/developing.md, "Tests on both runtimes").
import asyncio

from fake_hx711 import ScriptedHX711
from rig import Rig
from vclock import VirtualClock

from drivers import hx711

NOISE = 60
OFFSET = 84000
COUNTS_PER_KG = 215000


class Irq:
    """disable_irq / enable_irq for the driver that record the calls, and wrap(pin): a PD_SCK
    pin between the driver and the chip that counts the clock edges made while interrupts
    were enabled (an interrupt there could stretch a pulse past 60 us: power-down)."""

    def __init__(self):
        self.enabled = True
        self.offs = 0
        self.ons = 0  # with the state disable_irq returned
        self.edges = 0
        self.edges_irq_on = 0

    def off(self):
        self.offs += 1
        self.enabled = False
        return 7

    def on(self, state):
        self.ons += state == 7
        self.enabled = True

    def wrap(self, pin):
        return _CountingSck(self, pin)


class _CountingSck:
    def __init__(self, irq, pin):
        self._irq = irq
        self._pin = pin
        self._level = 0

    def value(self, level):
        if level != self._level:
            self._irq.edges += 1
            self._irq.edges_irq_on += self._irq.enabled
            self._level = level
        self._pin.value(level)


def rig(noise=NOISE, offset=OFFSET, start_us=0, gain=hx711.GAIN_A128, irq=None):
    if irq is None:
        return Rig(offset_counts=offset, noise_counts=noise, seed=5, start_us=start_us, gain=gain)
    return Rig(
        offset_counts=offset,
        noise_counts=noise,
        seed=5,
        start_us=start_us,
        gain=gain,
        disable_irq=irq.off,
        enable_irq=irq.on,
        wrap_sck=irq.wrap,
    )


def reading(hx):
    """hx.read() where a fault would be a failure of the case."""
    value = hx.read()
    if value is None:
        raise AssertionError("fault %d where a reading was due" % hx.fault)
    return value


def errors(r, mg, n=100, scale=1):
    """Worst and mean difference between n readings and the noise-free counts for load mg."""
    worst = total = 0
    for _ in range(n):
        r.clock.sleep_us(12500)
        d = reading(r.hx) - r.chip.counts(mg) // scale
        worst = max(worst, abs(d))
        total += d
    return [worst, total // n]


def steps():
    """[worst, mean] error at four load steps held 2 s each."""
    r = rig()
    loads = ((500, 0), (2500, 1000000), (4500, 5000000), (6500, 12000000))
    knots = []
    for t, mg in loads:
        knots += [(t - 400, mg), (t + 1600, mg)]
    r.chip.set_profile(knots)
    out = []
    for t, mg in loads:
        r.at(t)
        out.append(errors(r, mg))
    return out


def ramp():
    """Readings on a 50 kPa/s ramp (about 5.1 kg/s on 1 cm2) outside the loads at the start and
    the end of their conversion period, give or take the noise."""
    r = rig()
    r.chip.set_profile([(0, 0), (1000, 0), (11000, 5100000)])
    outside = 0
    for _ in range(800):
        r.clock.sleep_us(12500)
        value = reading(r.hx)
        low = r.chip.counts(r.chip.load_mg(r.clock.now_us - 12500)) - 4 * NOISE
        high = r.chip.counts(r.chip.load_mg(r.clock.now_us)) + 4 * NOISE
        outside += not low <= value <= high
    return outside


def negative():
    """Two's complement: a bridge offset below zero reads negative."""
    r = rig(offset=-52000)
    r.chip.set_profile([(0, 2000000)])
    return errors(r, 2000000, 20)


def gains():
    """Gain by pulse count: A/64 reads half, B/32 reads channel B."""
    r = rig()
    chip, hx = r.chip, r.hx
    chip.set_profile([(0, 3000000)])
    chip.channel_b_counts = 12345
    hx.set_gain(hx711.GAIN_A64)
    out = {"a64": errors(r, 3000000, 20, 2), "a64_chip": [chip.gain, chip.pulses_last]}
    hx.set_gain(hx711.GAIN_B32)
    r.clock.sleep_us(12500)
    out["b32"] = hx.read()
    r.clock.sleep_us(12500)
    hx.read()
    out["b32_chip"] = [chip.gain, chip.pulses_last]
    hx.set_gain(hx711.GAIN_A128)
    out["a128"] = errors(r, 3000000, 20)
    out["a128_chip"] = [chip.gain, chip.pulses_last]
    try:
        hx.set_gain(100)
        out["bad_gain"] = "accepted"
    except ValueError:
        out["bad_gain"] = "rejected"
    return out


def faults(mode):
    """Every fault from 1.0 s to 2.0 s, read with read() after each period, or with poll()
    every millisecond (mode "poll", as an asyncio task would): reported, never a reading, and
    reading resumes when it clears."""
    out = {}
    for kind in ("unpowered", "no_data_ready", "stuck_high", "stuck_low"):
        r = rig()
        clock, hx = r.clock, r.hx
        r.chip.set_profile([(0, 1000000)])
        r.chip.add_fault(kind, 1000, 2000)
        r.at(1000)
        readings = 0
        codes = []
        rails = []
        waits = []  # read(): ms in each call; poll(): ms between two answers
        fault_waits = []
        last_us = clock.now_us
        while clock.now_us < 1985000:
            if mode == "poll":
                clock.sleep_us(1000)
                value = hx.poll()
                if value == hx711.NOT_READY:
                    continue
            else:
                clock.sleep_us(12500)
                last_us = clock.now_us
                value = hx.read()
            if clock.now_us < 2000000:  # an answer past the fault may see new data
                readings += value is not None
                codes.append(hx.fault)
                rails.append(hx.rail)
            waits.append((clock.now_us - last_us) // 1000)
            last_us = clock.now_us
            if value is None:
                fault_waits.append(waits[-1])
        r.at(2100)
        out[kind] = {
            "readings": readings,
            "codes": sorted(set(codes)),
            "rails": sorted(set(rails)),
            "max_wait_ms": max(fault_waits),
            "max_read_ms": max(waits),
            "faults": hx.faults,
            "after": errors(r, 1000000, 10),
        }
    return out


def overload():
    """An overloaded cell saturates at the rails: a fault, not a reading."""
    r = rig(noise=0)
    r.chip.set_profile([(0, 50000000)])
    r.clock.sleep_us(12500)
    high = [r.hx.read(), r.hx.fault, r.hx.rail]
    r = rig(noise=0, offset=-8400000)
    r.clock.sleep_us(12500)
    return {"overload": high, "underload": [r.hx.read(), r.hx.fault, r.hx.rail]}


def zero_bridge():
    """A healthy chip at rest on a bridge balanced at zero: now and then a raw code of exactly -1,
    skipped for the next conversion. [readings, faults, -1 readings, worst, conversions]."""
    r = rig(noise=40, offset=0)
    minus_one = readings = worst = 0
    for _ in range(3000):
        r.clock.sleep_us(12500)
        value = r.hx.read()
        if value is not None:
            readings += 1
            minus_one += value == -1
            worst = max(worst, abs(value))
    return [readings, r.hx.faults, minus_one, worst, r.chip.conversions_read]


def all_minus_one():
    """A chip whose every code is -1 (noise-free, offset -1) is unpowered: never a reading."""
    r = rig(noise=0, offset=-1)
    values = []
    for _ in range(20):
        r.clock.sleep_us(12500)
        values.append(r.hx.read())
    return [sorted(set(values), key=str), r.hx.fault, r.hx.faults]


def unpowered_edge(minus_ones, mode):
    """A chip that shifts out 4 settling codes, minus_ones codes of -1, then one good code 500:
    what read() returns, or every poll()'s answer until the codes run out."""
    chip = ScriptedHX711([7] * 4 + [-1] * int(minus_ones) + [500])
    hx = hx711.HX711(chip.dout, chip.pd_sck, VirtualClock())
    if mode == "read":
        return [hx.read(), hx.fault, hx.faults]
    answers = []
    while chip.reads < len(chip.codes):
        value = hx.poll()
        answers.append("not_ready" if value == hx711.NOT_READY else value)
    return [answers, hx.fault, hx.faults]


def reset():
    """A power-on reset after a fault (supply lost: -1 codes, or no data-ready) puts the chip
    back at A/128; at A/64 not one reading may come through at A/128 (about twice the value).
    Per kind: [faulted, readings after, all within the noise at A/64, the chip's gain]."""
    out = {}
    for kind in ("unpowered", "supply_cut"):
        r = rig()
        chip, hx = r.chip, r.hx
        chip.set_profile([(0, 3000000)])
        hx.set_gain(hx711.GAIN_A64)
        if kind == "unpowered":
            chip.add_fault("unpowered", 1000, 1500)
        worst = faulted = after = 0
        cut = kind == "supply_cut"
        while r.clock.now_us < 3000000:
            r.clock.sleep_us(12500)
            if cut and r.clock.now_us >= 1000000 and chip.powered:
                chip.supply(False)  # DOUT high: no data-ready, timeouts
            if cut and r.clock.now_us >= 1500000:
                chip.supply(True)  # power-on reset
                cut = False
            value = hx.read()
            if value is None:
                faulted += 1
            else:
                worst = max(worst, abs(value - chip.counts(3000000) // 2))
                after += r.clock.now_us > 1500000
        out[kind] = [faulted > 0, after > 80, worst <= 4 * NOISE, chip.gain]
    return out


def settle():
    """At construction the driver settles as after power_up(): per gain, [conversions the
    first read took, conversions the first read after power_down / power_up took]."""
    consumed = []
    for gain in (hx711.GAIN_A128, hx711.GAIN_A64):
        r = rig(noise=0, gain=gain)
        r.hx.read()
        first = r.chip.conversions_read
        r.hx.power_down()
        r.hx.power_up()
        r.hx.read()
        consumed.append([first, r.chip.conversions_read - first])
    return consumed


def irq_edges():
    """Interrupts are off at every PD_SCK edge of every read, the gain pulses 25-27 included,
    and restored after each, through a rail fault too."""
    irq = Irq()
    r = rig(irq=irq)
    reads = 0
    for gain in (hx711.GAIN_A128, hx711.GAIN_B32, hx711.GAIN_A64):
        r.hx.set_gain(gain)
        before = r.chip.conversions_read
        for _ in range(10):
            r.clock.sleep_us(12500)
            r.hx.read()
        reads += r.chip.conversions_read - before
    r.chip.add_fault("stuck_high", r.clock.now_us // 1000, r.clock.now_us // 1000 + 100)
    for _ in range(4):
        r.clock.sleep_us(12500)
        r.hx.read()
    return {
        "edges": irq.edges,
        "edges_irq_on": irq.edges_irq_on,
        "reads": reads,
        "pulses_last": r.chip.pulses_last,
        "offs": irq.offs,
        "ons": irq.ons,
        "enabled": irq.enabled,
    }


def power():
    """Power down: no data (a timeout), then power up: A/128 reset, settling, our gain again."""
    r = rig()
    clock, hx = r.clock, r.hx
    r.chip.set_profile([(0, 3000000)])
    hx.set_gain(hx711.GAIN_A64)
    clock.sleep_us(12500)
    hx.read()
    hx.power_down()
    start = clock.now_us
    down = [hx.read(), hx.fault, (clock.now_us - start) // 1000, r.chip.powered]
    clock.sleep_us(500000)
    hx.power_up()
    start = clock.now_us
    value = reading(hx)
    return {
        "down": down + [r.chip.powered, (clock.now_us - start) // 1000],
        "a64": abs(value - r.chip.counts(3000000) // 2) <= 2 * NOISE,
    }


def wrap():
    """Ticks wrap (2**30 ms on a board): the data-ready timeout still ends in time."""
    r = rig(start_us=((1 << 30) - 50) * 1000)
    r.chip.add_fault("no_data_ready", 0)
    start = r.clock.now_us
    return [r.hx.read(), r.hx.fault, (r.clock.now_us - start) // 1000]


def pulses():
    """PD_SCK pulses per read at each gain, on a chip that shifts out the settling codes (4, and
    one more at another gain) then 0x123456: per gain [value read, conversions read, rising
    edges, pulses of the last read, PD_SCK level]."""
    out = []
    for gain in (hx711.GAIN_A128, hx711.GAIN_B32, hx711.GAIN_A64):
        settling = 4 if gain == hx711.GAIN_A128 else 5
        chip = ScriptedHX711([0] * settling + [0x123456, -0x123456])
        hx = hx711.HX711(chip.dout, chip.pd_sck, VirtualClock(), gain=gain)
        out.append([hx.read(), chip.reads, chip.rises, chip.pulses_last, chip.sck])
    return out


def poll_like_read():
    """poll() every millisecond gives the very readings read() gives once per period, on two
    identical chips over a ramp. [readings, same, polls per reading x10, fault]."""
    by_read = rig()
    by_poll = rig()
    for r in (by_read, by_poll):
        r.chip.set_profile([(0, 0), (1000, 0), (6000, 2550000)])
    read_values = []
    for _ in range(400):
        by_read.tick()
        read_values.append(by_read.hx.read())
    poll_values = []
    polls = 0
    while len(poll_values) < 400:
        by_poll.clock.sleep_us(1000)
        polls += 1
        value = by_poll.hx.poll()
        if value != hx711.NOT_READY:
            poll_values.append(value)
    return [len(poll_values), poll_values == read_values, polls * 10 // 400, by_poll.hx.fault]


def poll_timeout_edge():
    """The chip stops signalling data-ready right after a reading: poll() answers not ready up
    to timeout_ms after that conversion, a timeout fault at timeout_ms, and again every
    timeout_ms while it stays silent. [ms after the reading, answer, fault]."""
    r = rig()
    hx = r.hx
    value = hx711.NOT_READY
    while value == hx711.NOT_READY:  # the first reading, after the settling conversions
        r.clock.sleep_us(1000)
        value = hx.poll()
    read_ms = r.clock.now_us // 1000
    r.chip.add_fault("no_data_ready", read_ms)
    out = []
    for after_ms in (1, 99, 100, 101, 199, 200):
        r.at(read_ms + after_ms)
        answer = hx.poll()
        out.append([after_ms, "not_ready" if answer == hx711.NOT_READY else answer, hx.fault])
    return {"answers": out, "faults": hx.faults, "timeout_ms": hx.timeout_ms}


def asyncio_sampling():
    """An asyncio sampling task that polls and yields while no conversion is ready (1 ms of
    virtual time per yield, as await asyncio.sleep_ms(1) on the board), beside a UI task:
    the UI runs between conversions. [readings, UI turns, least UI turns between two
    readings, chip conversions read, faults]."""
    r = rig()
    r.chip.set_profile([(0, 1000000)])
    readings = []
    turns = [0]
    between = []

    async def sampling():
        last = 0
        while len(readings) < 40:
            value = r.hx.poll()
            if value == hx711.NOT_READY:
                r.clock.sleep_us(1000)
                await asyncio.sleep(0)
                continue
            readings.append(value)
            between.append(turns[0] - last)
            last = turns[0]

    async def ui():
        while len(readings) < 40:
            turns[0] += 1
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(sampling(), ui())

    asyncio.run(main())
    worst = max(abs(v - r.chip.counts(1000000)) for v in readings)
    return {
        "readings": len(readings),
        "within_noise": worst <= 4 * NOISE,
        "turns": turns[0],
        "least_between": min(between[1:]),
        "conversions": r.chip.conversions_read,
        "faults": r.hx.faults,
    }

# Pin-level HX711 for the simulator: two pin objects (dout, pd_sck) that speak the chip's
# DOUT / PD_SCK protocol against a virtual clock, so the firmware's real driver runs on it
# unchanged, on CPython and on micropython. A load profile (mg on the cell over virtual time)
# becomes counts through an inverse calibration (offset + counts per kg) at 80 conversions/s,
# with seeded noise from a tiny integer PRNG (identical on both runtimes) and injectable
# faults. Kept small (it shares a 64 KB heap with the firmware under test) and allocation-free
# per read, so the bench measures the firmware's pipeline through it.
# Chip behaviour modelled (datasheet): DOUT low = data ready; each PD_SCK rising edge shifts
# the next bit out, MSB first; pulse 25 ends the read (DOUT high until the next conversion)
# and 25/26/27 pulses set A/128, B/32, A/64 for the next conversion; PD_SCK high for 60 us
# powers down; PD_SCK low again powers up at A/128 with 50 ms settling. An "unpowered" fault
# (the supply lost: every code reads -1) ends with the same power-on reset, and so does
# supply(True) after supply(False) (the supply lost with DOUT pulled high: no data-ready).
# A profile may be replaced at any time (the harness gives one trial at a time): the load is
# flat before the first knot and after the last.

PERIOD_US = 12500  # 80 SPS: RATE pin high
PHASE_US = 5000  # conversions end at PHASE_US + k * PERIOD_US (until a power cycle)
SETTLE_US = 50000
POWER_DOWN_US = 60
FAULT_KINDS = ("none", "unpowered", "no_data_ready", "stuck_high", "stuck_low")
_MG_PER_KPA_X10 = 1019716  # mg on 1 cm2 per 0.1 kPa, x 1000 (0.1 kPa on 1 cm2 = 1.019716 gf)


def probe_mg(kpa_x10, area_cm2_x100=100):
    """The load in mg a pressure (kPa x 10) puts on the cell through the probe's tip."""
    return kpa_x10 * area_cm2_x100 * _MG_PER_KPA_X10 // 100000


_FORCED = (0, 0xFFFFFF, 0, 0x7FFFFF, 0x800000)  # the code each fault shifts out
_UNPOWERED = 1
_NO_DATA = 2
_GAINS = (128, 32, 64)  # by pulses - 25


class _Sck:
    def __init__(self, chip):
        self._chip = chip

    def value(self, level):
        self._chip.edge(level)


class FakeHX711:
    def __init__(self, clock, offset_counts=0, counts_per_kg=200000, noise_counts=0, seed=1):
        self.clock = clock
        self.offset_counts = offset_counts
        self.counts_per_kg = counts_per_kg
        self.noise_counts = noise_counts
        self.channel_b_counts = 0
        self._rng = (seed & 0xFFFFFFFF) or 1  # xorshift32 must not start at 0
        self.dout = self  # value() below is the DOUT pin
        self.pd_sck = _Sck(self)
        self.sck = 0
        self._high_us = 0  # when PD_SCK last rose
        self.powered = True
        self.gain = 128  # of the conversion now running
        self._phase_us = PHASE_US
        self._next_us = clock.now_us + PERIOD_US - (clock.now_us - PHASE_US) % PERIOD_US
        self._pulses = -1  # PD_SCK pulses in the current read; -1: idle
        self._code = 0
        self._knot_us = [0]
        self._knot_mg = [0]
        self._knot = 0
        self._faults = []  # start_us, end_us (-1: open), kind; flat
        self._off = False  # inside an "unpowered" fault: a power-on reset follows it
        self.conversions_read = 0
        self.pulses_last = 0  # of the last complete read: 25, 26 or 27

    def set_profile(self, knots):
        """knots: [(t_ms, load_mg)], time ascending; linear between knots, flat after."""
        self._knot_us = [t * 1000 for t, _ in knots]
        self._knot_mg = [mg for _, mg in knots]
        self._knot = 0

    def add_fault(self, kind, start_ms, end_ms=None):
        """A fault from start_ms to end_ms (None: for good). Faults already over are dropped,
        so a long session that adds one per trial keeps a short list."""
        f = self._faults
        now = self.clock.now_us
        i = 0
        while i < len(f):
            if 0 <= f[i + 1] <= now:
                del f[i : i + 3]
            else:
                i += 3
        f += [start_ms * 1000, -1 if end_ms is None else end_ms * 1000]
        f.append(FAULT_KINDS.index(kind))

    def supply(self, on):
        """Cuts (False) or restores (True) the chip's supply. Cut: DOUT reads high, so no
        data-ready (a timeout for the driver); restored: a power-on reset, A/128, settling."""
        if on:
            self._wake(self.clock.now_us)
        else:
            self.powered = False
            self._pulses = -1

    def fault_at(self, now):
        f = self._faults
        for i in range(0, len(f), 3):
            if f[i] <= now and (f[i + 1] < 0 or now < f[i + 1]):
                return f[i + 2]
        return 0

    def load_mg(self, now):
        times = self._knot_us
        i = self._knot if now >= times[self._knot] else 0
        while i + 1 < len(times) and times[i + 1] <= now:
            i += 1
        self._knot = i
        mg = self._knot_mg[i]
        if i + 1 == len(times) or now < times[i]:  # after the last knot, or before the first
            return mg
        return mg + (self._knot_mg[i + 1] - mg) * (now - times[i]) // (times[i + 1] - times[i])

    def counts(self, load_mg):
        """Noise-free counts at A/128 (what tests compare readings with)."""
        return self.offset_counts + load_mg * self.counts_per_kg // 1000000

    def value(self, _ignored=None):  # DOUT
        now = self.clock.now_us
        if self.sck and self.powered and now - self._high_us >= POWER_DOWN_US:
            self.powered = False
            self._pulses = -1
        if not self.powered:
            return 1
        pulses = self._pulses
        if pulses >= 25 and now >= self._next_us:
            self._end_read()
            pulses = -1
        if pulses < 0:
            return 0 if self._ready(now) else 1
        if pulses <= 24:
            return (self._code >> (24 - pulses)) & 1
        return 1  # read done: busy until the next conversion

    def edge(self, level):
        now = self.clock.now_us
        level = 1 if level else 0
        if level == self.sck:
            return
        self.sck = level
        if not level:  # falling edge: wakes the chip if the clock was high for too long
            if not self.powered or now - self._high_us >= POWER_DOWN_US:
                self._wake(now)
            return
        self._high_us = now
        if not self.powered:
            return
        if self._pulses >= 25 and now >= self._next_us:
            self._end_read()
        if self._pulses < 0:
            if not self._ready(now):
                return  # a pulse without data: the chip ignores it
            self._latch(now)
        self._pulses += 1
        if self._pulses == 25:
            self._next_us = now + PERIOD_US - (now - self._phase_us) % PERIOD_US

    def _wake(self, now):
        # Power-on reset: A/128, the first conversion after the settling time.
        self.powered = True
        self.gain = 128
        self._pulses = -1
        self._next_us = now + SETTLE_US
        self._phase_us = self._next_us % PERIOD_US

    def _end_read(self):
        if 25 <= self._pulses <= 27:
            self.gain = _GAINS[self._pulses - 25]
            self.pulses_last = self._pulses
        self._pulses = -1

    def _ready(self, now):
        if now < self._next_us:
            return False
        kind = self.fault_at(now)
        if kind == _UNPOWERED:
            self._off = True
        elif self._off:  # the supply is back: power-on reset
            self._off = False
            self._wake(now)
            return False
        return kind != _NO_DATA

    def _latch(self, now):
        # The newest finished conversion, sampled at the last period boundary.
        noise = 0
        if self.noise_counts:  # sum of four 16-bit uniforms: about normal, sd 65536/sqrt(3)
            x = self._rng
            for _ in range(4):
                x ^= (x << 13) & 0xFFFFFFFF
                x ^= x >> 17
                x ^= (x << 5) & 0xFFFFFFFF
                noise += x & 0xFFFF
            self._rng = x
            noise = (noise - 131070) * self.noise_counts // 37837
        if self.gain == 32:
            code = self.channel_b_counts + noise // 4
        else:
            code = self.counts(self.load_mg(now - (now - self._phase_us) % PERIOD_US)) + noise
            if self.gain == 64:
                code //= 2
        code = max(-0x800000, min(0x7FFFFF, code))  # the ADC saturates at its rails
        forced = self.fault_at(now)
        self._code = _FORCED[forced] if forced else code & 0xFFFFFF
        self._pulses = 0
        self.conversions_read += 1


class ScriptedHX711:
    """A pin-level chip without time: it shifts out the given codes (signed 24-bit), one per
    read, each ready at once, and after the last one never signals data-ready again. For the
    driver's decisions code by code (settling, counting -1 codes, rails) and for the pulse
    count of each read, where FakeHX711's load profile and 80 SPS timing would only hide what
    is tested."""

    def __init__(self, codes):
        self.codes = [code & 0xFFFFFF for code in codes]
        self.dout = self  # value() below is the DOUT pin
        self.pd_sck = _Sck(self)
        self.sck = 0
        self.rises = 0  # PD_SCK rising edges, reads or not
        self.reads = 0  # codes shifted out
        self.pulses_last = 0  # of the last complete read: 25, 26 or 27
        self._i = 0
        self._pulses = -1  # PD_SCK pulses in the current read; -1: idle

    def value(self, _ignored=None):  # DOUT
        pulses = self._pulses
        if pulses >= 25:  # the gain pulses are done: the next code is ready at once
            self.pulses_last = pulses
            self._pulses = pulses = -1
            self._i += 1
        if pulses < 0:
            return 0 if self._i < len(self.codes) else 1
        if pulses <= 24:
            return (self.codes[self._i] >> (24 - pulses)) & 1
        return 1

    def edge(self, level):
        level = 1 if level else 0
        if level == self.sck:
            return
        self.sck = level
        if not level:
            return
        self.rises += 1
        if self._pulses < 0:
            if self._i >= len(self.codes):
                return  # a pulse without data: the chip ignores it
            self._pulses = 0
            self.reads += 1
        self._pulses += 1

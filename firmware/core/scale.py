# Counts -> pressure. Raw HX711 counts pass an integer moving-average filter, lose the tare
# offset (with slow zero tracking while stable near zero) and become pressure over the probe
# area through a span calibrated with a known mass (DESIGN 3). Internal unit: kPa x 10 (int).
# Hot path (update) is integer only and allocates nothing. Every product stays below 2**30,
# because a 32-bit port's small ints end there and anything bigger is a heap-allocated long.
from micropython import const

# 1 kgf/cm2 = 98.0665 kPa; 1 N on 1 cm2 = 10 kPa; 1 lbf on 1 cm2 = 44.482 kPa.
UNITS = ("kPa", "kgf/cm2", "N", "lbf")
_AREA_CM2_X100 = const(100)  # the standard 1 cm2 probe
_FILTER_LEN = const(4)  # 50 ms at 80 SPS: costs ~1 kPa of lag at 50 kPa/s
_ZERO_BAND_KPA_X10 = const(5)  # zero tracking only within +-0.5 kPa ...
_ZERO_STABLE_KPA_X10 = const(3)  # ... if the filtered value moved less than 0.3 kPa ...
_ZERO_WINDOW = const(80)  # ... for 1 s of samples ...
_ZERO_LIMIT_KPA_X10 = const(200)  # ... and never more than 20 kPa away from the tare in total
# A tare or span window is "still" when its raw readings spread over at most 1 kPa on the
# probe: in counts through the calibrated span, or before the first calibration through the
# load cell's nominal counts per kg (a build setting; 215000 for the reference cell and
# HX711 A/128, where 1 kPa on 1 cm2 is about 2200 counts).
_STILL_KPA_X10 = const(10)
_CELL_COUNTS_PER_KG = const(215000)
_SPAN_MIN_COUNTS = const(1000)  # a calibration mass must move the reading at least this much
_MASS_MIN_G = const(100)
_MASS_MAX_G = const(20000)  # the 0-20 kg cell

# g on 1 cm2 -> kPa x 10 is 0.980665 (9.80665 mN per g / 1 cm2); as integers: 980665 / 10**6.
_KPA_X10_PER_G_NUM = const(980665)
_KPA_X10_PER_G_DEN = const(1000000)
_SPLIT = const(12)  # net = hi * 2**12 + lo keeps hi * mul and lo * mul under 2**29
_SPLIT_MASK = const(0xFFF)
_MUL_BITS = const(16)  # multiplier in [2**15, 2**16): 3e-5 relative resolution


class ScaleError(ValueError):
    pass


def _div_round(num, den):
    """num / den rounded half away from zero, in integers."""
    if (num < 0) != (den < 0):
        return -((abs(num) + abs(den) // 2) // abs(den))
    return (abs(num) + abs(den) // 2) // abs(den)


class Window:
    """Mean and spread of a run of raw counts (tare and span calibration): no buffer."""

    def __init__(self, size=80):
        self.size = size
        self.reset()

    def reset(self):
        self.count = 0
        self.total = 0
        self.low = 0
        self.high = 0

    def add(self, counts):
        """Adds one reading; True once the window is full."""
        if self.count == 0 or counts < self.low:
            self.low = counts
        if self.count == 0 or counts > self.high:
            self.high = counts
        self.total += counts
        self.count += 1
        return self.count >= self.size

    def spread(self):
        return self.high - self.low

    def mean(self):
        return _div_round(self.total, self.count)

    def stable(self, max_spread_counts):
        """Full, and spread over at most max_spread_counts (Scale.still_counts())."""
        return self.count >= self.size and self.spread() <= max_spread_counts


class Scale:
    def __init__(
        self,
        area_cm2_x100=_AREA_CM2_X100,
        filter_len=_FILTER_LEN,
        cell_counts_per_kg=_CELL_COUNTS_PER_KG,
    ):
        if filter_len not in (1, 2, 4, 8, 16):
            raise ScaleError("filter_len: 1, 2, 4, 8 or 16 samples")
        if type(area_cm2_x100) is not int or not 10 <= area_cm2_x100 <= 1000:
            raise ScaleError("area_cm2_x100: a whole number from 10 to 1000 (0.1 to 10 cm2)")
        if type(cell_counts_per_kg) is not int or cell_counts_per_kg == 0:
            raise ScaleError("cell_counts_per_kg: a whole number, not 0")
        self.area_cm2_x100 = area_cm2_x100
        self.cell_counts_per_kg = cell_counts_per_kg  # nominal: used only before a span
        self._ring = [0] * filter_len
        self._mask = filter_len - 1
        self._shift = (1, 2, 4, 8, 16).index(filter_len)
        self._i = 0
        self._sum = 0
        self._primed = False
        self.tare_counts = 0
        self.offset_counts = 0  # the tare plus what zero tracking has added
        self.cal_id = None
        self.span_counts = 0
        self.span_mass_g = 0
        self._mul = 0
        self._post = 1
        self._half = 0
        self._zero_band = 0  # counts; 0 = no tracking (no span yet)
        self._zero_stable = 0
        self._zero_limit = 0
        self._zn = 0
        self._zsum = 0
        self._zlow = 0
        self._zhigh = 0
        self.net_counts = 0  # of the last update, for the UI's raw view

    # --- calibration (not the hot path) ---

    def set_tare(self, counts):
        self.tare_counts = counts
        self.offset_counts = counts
        self._zn = 0

    def calibrate(self, mass_g, loaded_counts, cal_id):
        """Span from the mean reading with a known mass on the probe (after set_tare)."""
        self.set_span(loaded_counts - self.tare_counts, mass_g, cal_id)

    def set_span(self, span_counts, span_mass_g, cal_id):
        """Loads a span (counts for span_mass_g grams), e.g. a stored calibration."""
        if type(span_mass_g) is not int or not _MASS_MIN_G <= span_mass_g <= _MASS_MAX_G:
            raise ScaleError(
                "mass_g: a whole number of grams from %d to %d" % (_MASS_MIN_G, _MASS_MAX_G)
            )
        if type(span_counts) is not int or abs(span_counts) < _SPAN_MIN_COUNTS:
            raise ScaleError(
                "span: the mass moved the reading by %s counts (need %d): is it on the probe?"
                % (span_counts, _SPAN_MIN_COUNTS)
            )
        # kPa x 10 per count = mass_g * 980665 / (10**6 * span_counts) * 100 / area_x100,
        # held as mul / 2**shift with mul in [2**15, 2**16).
        num = span_mass_g * _KPA_X10_PER_G_NUM * 100
        den = _KPA_X10_PER_G_DEN * abs(span_counts) * self.area_cm2_x100
        shift = 0
        while (num << shift) // den < (1 << (_MUL_BITS - 1)) and shift < 60:
            shift += 1
        mul = _div_round(num << shift, den)
        if shift < _SPLIT + 1:
            raise ScaleError("span: coarser than 0.8 kPa per count; the cell or its gain is wrong")
        self.span_counts = span_counts
        self.span_mass_g = span_mass_g
        self.cal_id = cal_id
        self._mul = mul if span_counts > 0 else -mul
        self._post = shift - _SPLIT
        self._half = 1 << (self._post - 1)
        self._zero_band = abs(self.counts_for(_ZERO_BAND_KPA_X10))
        self._zero_stable = abs(self.counts_for(_ZERO_STABLE_KPA_X10))
        self._zero_limit = abs(self.counts_for(_ZERO_LIMIT_KPA_X10))
        self._zn = 0

    def calibrated(self):
        return self._mul != 0

    def counts_per_kg(self):
        """The calibrated span as counts per kg (rounded), as the calibration event logs it."""
        return _div_round(self.span_counts * 1000, self.span_mass_g) if self._mul else 0

    def still_counts(self):
        """The widest spread of raw counts a tare or span window may have and count as still:
        1 kPa on the probe, through the calibrated span, or the cell's nominal one before."""
        if self._mul:
            return abs(self.counts_for(_STILL_KPA_X10))
        # kPa x 10 -> grams on the probe: kpa_x10 * area_x100 * 10**6 / (980665 * 100)
        grams_num = _STILL_KPA_X10 * self.area_cm2_x100 * _KPA_X10_PER_G_DEN
        return abs(_div_round(grams_num * self.cell_counts_per_kg, _KPA_X10_PER_G_NUM * 100000))

    def counts_for(self, kpa_x10):
        """Net counts that read as kpa_x10 (thresholds in counts; not the hot path)."""
        num = kpa_x10 * self.span_counts * self.area_cm2_x100 * _KPA_X10_PER_G_DEN
        return _div_round(num, self.span_mass_g * _KPA_X10_PER_G_NUM * 100)

    # --- per sample ---

    def reset(self):
        """Forget the filter history (after a sensor fault): the next reading refills it."""
        self._primed = False
        self._zn = 0

    def update(self, counts):
        """One raw reading in, filtered pressure in kPa x 10 out."""
        ring = self._ring
        if not self._primed:
            for i in range(len(ring)):
                ring[i] = counts
            self._sum = counts << self._shift
            self._primed = True
        i = self._i
        self._sum += counts - ring[i]
        ring[i] = counts
        self._i = (i + 1) & self._mask
        net = (self._sum >> self._shift) - self.offset_counts
        if self._zero_band:
            net -= self._track_zero(net)
        self.net_counts = net
        return self.kpa_x10(net)

    def kpa_x10(self, net_counts):
        # net * mul >> shift without a product over 2**30: |net| < 2**25, so hi < 2**13.
        mul = self._mul
        hi = net_counts >> _SPLIT
        lo = net_counts & _SPLIT_MASK
        return (hi * mul + ((lo * mul) >> _SPLIT) + self._half) >> self._post

    def _track_zero(self, net):
        # Follows slow drift (temperature, creep) while the probe rests: within the band,
        # still for a whole window, and within the limit of the tare. Returns the correction.
        band = self._zero_band
        if net > band or net < -band:
            self._zn = 0
            return 0
        n = self._zn
        if n == 0 or net < self._zlow:
            self._zlow = net
        if n == 0 or net > self._zhigh:
            self._zhigh = net
        if self._zhigh - self._zlow > self._zero_stable:
            self._zn = 1  # moving: this sample starts a new window
            self._zsum = net
            self._zlow = net
            self._zhigh = net
            return 0
        self._zsum = net if n == 0 else self._zsum + net
        n += 1
        if n < _ZERO_WINDOW:
            self._zn = n
            return 0
        self._zn = 0
        shift = _div_round(self._zsum, n)
        moved = self.offset_counts + shift - self.tare_counts
        if moved > self._zero_limit or moved < -self._zero_limit:
            return 0
        self.offset_counts += shift
        return shift


# --- display units (integers x 100, for the screen and the laptop) ---


def convert_x100(kpa_x10, unit, area_cm2_x100=_AREA_CM2_X100):
    """Pressure in another unit, times 100 and rounded: kgf/cm2, or force N / lbf on the probe."""
    if unit == "kPa":
        return kpa_x10 * 10
    if unit == "kgf/cm2":
        return _div_round(kpa_x10 * 100000, 980665)  # kPa x 10 / 98.0665 / 10 * 100
    if unit == "N":
        return _div_round(kpa_x10 * area_cm2_x100, 100)  # 10 kPa per N on 1 cm2
    if unit == "lbf":
        return _div_round(kpa_x10 * area_cm2_x100 * 100, 44482)  # 44.482 kPa per lbf on 1 cm2
    raise ScaleError("unit: one of " + ", ".join(UNITS))


def format_x100(value_x100):
    """'12.34' from 1234, without floats."""
    sign = "-" if value_x100 < 0 else ""
    value_x100 = abs(value_x100)
    return "%s%d.%02d" % (sign, value_x100 // 100, value_x100 % 100)


def format_kpa_x10(kpa_x10):
    sign = "-" if kpa_x10 < 0 else ""
    kpa_x10 = abs(kpa_x10)
    return "%s%d.%d" % (sign, kpa_x10 // 10, kpa_x10 % 10)

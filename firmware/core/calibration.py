# Zeroing and the span calibration wizard (DESIGN 3), as synchronous state machines fed raw
# HX711 counts (or a fault) with their time in ms; nothing here reads a clock or a pin.
# - Zero: a still window of raw counts (1 s at 80 SPS) with the probe in the air: its mean is
#   the tare. Movement or a fault restarts the window; no still window before the timeout
#   is an error that says what to do.
# - Span: tare, then the clinician puts a known mass on the probe; the wizard sees it arrive
#   (the reading moves by more than a calibration needs), waits for a still window and
#   turns it into counts per gram, checked against the load cell's nominal sensitivity so a
#   wrong mass (500 g put on, 2000 g entered) is refused, not stored.
from micropython import const

from core.scale import ScaleError, Window
from core.vocab import SENSOR_FAULTS

WAITING = const(0)
ZEROING = const(1)
WAIT_MASS = const(2)  # tared: put the mass on the probe
SPAN = const(3)  # the mass is on: hold still
DONE = const(4)
FAILED = const(5)

_WINDOW_SAMPLES = const(80)  # 1 s at 80 SPS
_ZERO_TIMEOUT_MS = const(10000)
_MASS_TIMEOUT_MS = const(60000)  # time to find and place the mass
_SPAN_TIMEOUT_MS = const(10000)
_SPAN_MIN_COUNTS = const(1000)  # the mass is "on" once the reading moved this far
# A load cell's sensitivity is within a few % of its data sheet; 25 % off is a wrong mass or
# a wrong cell, never a calibration to keep.
_NOMINAL_PCT = const(25)


class Zero:
    """A still window of raw counts. feed() returns True once the window is full and still;
    then mean() is the tare. failed() says why not, once the timeout has passed."""

    def __init__(self, window_samples=_WINDOW_SAMPLES):
        self.window = Window(window_samples)
        self.start(0, 0, 0)

    def start(self, t_ms, still_counts, timeout_ms=_ZERO_TIMEOUT_MS):
        self.window.reset()
        self._still = still_counts
        self._t_end = t_ms + timeout_ms
        self.fault = 0  # the last sensor fault code seen in this attempt

    def feed(self, counts):
        window = self.window
        if window.add(counts):
            if window.stable(self._still):
                return True
            window.reset()
        return False

    def feed_fault(self, fault):
        self.fault = fault
        self.window.reset()

    def mean(self):
        return self.window.mean()

    def expired(self, t_ms):
        return t_ms >= self._t_end


def zero_error(step, zero, advice):
    """The one line for a zero or span that found no still window."""
    if zero.fault:
        name = SENSOR_FAULTS[zero.fault] if zero.fault < len(SENSOR_FAULTS) else zero.fault
        return "%s: sensor fault %s; check the load cell cable and the HX711" % (step, name)
    return "%s: reading not stable; %s" % (step, advice)


class SpanWizard:
    """Tare, then a known mass: a new calibration for the scale. Drive it with start(),
    then sample()/fault() per conversion; state tells the screen what to show, message the
    error when FAILED, and result the calibration when DONE."""

    def __init__(self, scale):
        self.scale = scale
        self.zero = Zero()
        self.state = WAITING
        self.message = None
        self.result = {}  # the calibration, once DONE
        self.mass_g = 0
        self.cal_id = 0
        self._t_limit = 0
        self._base = 0

    def start(self, t_ms, mass_g, cal_id):
        self.mass_g = mass_g
        self.cal_id = cal_id
        self.message = None
        self.result = {}
        self.state = ZEROING
        self.zero.start(t_ms, self.scale.still_counts())

    def sample(self, t_ms, counts):
        state = self.state
        if state == ZEROING:
            if self.zero.feed(counts):
                self._base = self.zero.mean()
                self.scale.set_tare(self._base)
                self.state = WAIT_MASS
                self._t_limit = t_ms + _MASS_TIMEOUT_MS
            elif self.zero.expired(t_ms):
                self._fail(zero_error("tare", self.zero, "keep the probe still and off the skin"))
        elif state == WAIT_MASS:
            if abs(counts - self._base) >= _SPAN_MIN_COUNTS:
                self.state = SPAN
                self.zero.start(t_ms, self.scale.still_counts(), _SPAN_TIMEOUT_MS)
            elif t_ms >= self._t_limit:
                self._fail("span: no mass on the probe; put the %d g mass on it" % self.mass_g)
        elif state == SPAN:
            if self.zero.feed(counts):
                self._finish(self.zero.mean())
            elif self.zero.expired(t_ms):
                self._fail(zero_error("span", self.zero, "keep the calibration mass still"))

    def fault(self, t_ms, fault):
        state = self.state
        if state == ZEROING or state == SPAN:
            self.zero.feed_fault(fault)
            if self.zero.expired(t_ms):
                self._fail(zero_error("tare" if state == ZEROING else "span", self.zero, ""))

    def cancel(self):
        if self.state != DONE:
            self._fail("calibration cancelled")

    def _finish(self, loaded):
        scale = self.scale
        span = loaded - self._base
        nominal = scale.cell_counts_per_kg * self.mass_g // 1000
        if abs(abs(span) - abs(nominal)) * 100 > abs(nominal) * _NOMINAL_PCT:
            self._fail(
                "span: the mass moved the reading as %d g would on this load cell; "
                "check the mass (%d g entered)"
                % (abs(span) * 1000 // abs(scale.cell_counts_per_kg), self.mass_g)
            )
            return
        try:
            scale.set_span(span, self.mass_g, self.cal_id)
        except ScaleError as err:
            self._fail(str(err))
            return
        self.state = DONE
        self.result = {
            "cal_id": self.cal_id,
            "span_counts": span,
            "span_mass_g": self.mass_g,
            "tare_counts": self._base,
            "counts_per_kg": scale.counts_per_kg(),
        }

    def _fail(self, message):
        self.state = FAILED
        self.message = message

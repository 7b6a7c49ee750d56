# Pressure pain threshold trials (DESIGN 3). The trial engine is fed one filtered sample at a
# time with its time stamp (ms ticks from the caller; this module never reads a clock): a
# trial starts when the pressure crosses the onset threshold, the live ramp rate is compared
# with the target and turned into a cue, and the trial ends at the patient's stop press
# (PPT = pressure at the press), at the clinician's release (PPT = peak), at the safety
# ceiling (censored) or at a sensor fault. Per sample: integers only, no allocation; the
# window, the trace and every attribute exist from __init__ on.
from array import array

from micropython import const

from core.vocab import END_NAMES, FLAG_NAMES

# Trial states.
WAITING = const(0)  # armed, waiting for the pressure to cross the onset threshold
RAMP = const(1)
DONE = const(2)

# Live cue for the screen and buzzer.
CUE_NONE = const(0)  # not ramping, or too early to tell
CUE_FASTER = const(1)  # below target - tolerance: press faster
CUE_ON_TARGET = const(2)
CUE_SLOWER = const(3)  # above target + tolerance: press slower
CUE_NAMES = ("none", "faster", "on_target", "slower")

# QC flags: one byte per trial, stored as is by the record store. Any flag makes a trial
# invalid for the site value; all trials are kept.
FLAG_RATE = const(0x01)  # mean ramp rate outside target +- tolerance
FLAG_SHORT = const(0x02)  # onset to end point shorter than min_ramp_ms
FLAG_SATURATED = const(0x04)  # the ADC hit its rail in the pressing direction: overload
FLAG_FAULT = const(0x08)  # sensor fault (no data, unpowered, the opposite rail) in the trial
FLAG_CENSORED = const(0x10)  # safety ceiling reached: the PPT is above it
FLAG_ABORTED = const(0x20)  # no end point: aborted, or no end within max_ramp_ms
FLAG_TEXT = (
    "rate out of tolerance",
    "ramp too short",
    "saturated",
    "sensor fault",
    "censored at the ceiling",
    "aborted",
)

# How a trial ended.
_END_NONE = const(0)
_END_STOP = const(1)  # patient's stop button: the primary end
_END_RELEASE = const(2)  # clinician released: pressure fell well below the peak
_END_CEILING = const(3)
_END_SATURATED = const(4)
_END_FAULT = const(5)
_END_ABORT = const(6)

# Defaults (DFNS: 1 cm2 probe, 50 kPa/s). Pressures in kPa x 10, rates in kPa/s x 10.
_TARGET_KPA_S_X10 = const(500)
_TOLERANCE_PCT = const(20)
_ONSET_KPA_X10 = const(100)  # 10 kPa: above probe handling and noise
_CEILING_KPA_X10 = const(10000)  # 1000 kPa safety ceiling
_RELEASE_PCT = const(50)  # released: below 50 % of the peak
# The mean rate needs a ramp long enough to measure it well inside the +-20 % band: over
# 0.5 s (40 samples) the pressure at each end is good to about 0.3 kPa and its time to one
# sample, a few % of the rate at 50 kPa/s. A 0.5 s floor lets a threshold from about 35 kPa
# (10 kPa onset + 0.5 s at 50 kPa/s) count: very sensitised patients must get a value.
_MIN_RAMP_MS = const(500)
_MAX_RAMP_MS = const(60000)
_TRACE_LEN = const(64)  # points per trial trace (halved in place when full)
TRIALS_PER_SITE = const(3)
MIN_VALID = const(2)

_WINDOW = const(32)  # live rate over the last 32 samples (400 ms at 80 SPS)
_WINDOW_MASK = const(31)
_CUE_AFTER = const(16)  # samples since onset before the first cue (200 ms)
_TRACE_MAX = const(32767)


def _sub(end, start):
    return end - start


class Trial:
    def __init__(
        self,
        target_kpa_s_x10=_TARGET_KPA_S_X10,
        tolerance_pct=_TOLERANCE_PCT,
        onset_kpa_x10=_ONSET_KPA_X10,
        ceiling_kpa_x10=_CEILING_KPA_X10,
        release_pct=_RELEASE_PCT,
        min_ramp_ms=_MIN_RAMP_MS,
        max_ramp_ms=_MAX_RAMP_MS,
        trace_len=_TRACE_LEN,
        ticks_diff=None,
    ):
        if not 0 <= tolerance_pct < 100 or not 0 < release_pct < 100:
            raise ValueError("tolerance_pct: 0-99; release_pct: 1-99")
        if onset_kpa_x10 <= 0 or ceiling_kpa_x10 <= onset_kpa_x10 or target_kpa_s_x10 <= 0:
            raise ValueError("need 0 < onset < ceiling and a positive target rate")
        if trace_len < 4 or trace_len & 1:
            raise ValueError("trace_len: an even number, at least 4")
        self.target_kpa_s_x10 = target_kpa_s_x10
        self.tolerance_pct = tolerance_pct
        self.rate_low = target_kpa_s_x10 * (100 - tolerance_pct) // 100
        self.rate_high = (target_kpa_s_x10 * (100 + tolerance_pct) + 99) // 100
        self.onset_kpa_x10 = onset_kpa_x10
        self.ceiling_kpa_x10 = ceiling_kpa_x10
        self.release_pct = release_pct
        self._kept_pct = 100 - release_pct  # released: below this share of the peak
        self.min_ramp_ms = min_ramp_ms
        self.max_ramp_ms = max_ramp_ms
        self._diff = ticks_diff or _sub  # time.ticks_diff on the board: ticks wrap
        self._win_t = array("i", [0] * _WINDOW)
        self._win_p = array("i", [0] * _WINDOW)
        self._trace = array("h", [0] * trace_len)
        self._trace_len = trace_len
        self.arm(0)

    def arm(self, t_ms):
        """Ready for the next trial: the pressure must be below the onset before it counts."""
        self.state = WAITING
        self.cue = CUE_NONE
        self.kpa_x10 = 0
        self.rate_kpa_s_x10 = 0  # live, over the window
        self.mean_rate_kpa_s_x10 = 0  # onset to end point, set at the end
        self.peak_kpa_x10 = 0
        self.flags = 0
        self.end = _END_NONE
        self.ppt_kpa_x10 = -1  # -1: none (a fault, or aborted)
        self.faults = 0
        self.fault = 0  # the last fault code from the driver
        self._faulted = False  # the latest sample was a fault
        self._low_seen = False
        self._ramped = False
        self._t_arm = t_ms
        self._t_onset = t_ms
        self._p_onset = 0
        self._t_peak = t_ms
        self._t_end = t_ms
        self._wi = 0
        self._n = 0  # samples since onset
        self._n_cued = 0
        self._n_on = 0  # samples with the live rate within tolerance
        self._trace_n = 0
        self._trace_step = 1
        self._trace_skip = 0
        self._t_trace = t_ms  # time of the last trace point

    def feed(self, t_ms, kpa_x10, stop):
        """One filtered sample. stop: the patient pressed the stop button since the last
        sample. Returns the state."""
        state = self.state
        if state == DONE:
            return DONE
        self.kpa_x10 = kpa_x10
        self._faulted = False
        if state == WAITING:
            if kpa_x10 < self.onset_kpa_x10:
                self._low_seen = True
                return WAITING
            if not self._low_seen:
                return WAITING  # still pressed from before arm(): not a new trial
            self._start(t_ms, kpa_x10)
            return RAMP
        self._n += 1
        if kpa_x10 > self.peak_kpa_x10:
            self.peak_kpa_x10 = kpa_x10
            self._t_peak = t_ms
        self._add_trace(t_ms, kpa_x10)
        self._live_rate(t_ms, kpa_x10)
        if stop:
            self._finish(_END_STOP, t_ms, kpa_x10, 0)
        elif kpa_x10 >= self.ceiling_kpa_x10:
            self._finish(_END_CEILING, t_ms, kpa_x10, FLAG_CENSORED)
        elif kpa_x10 * 100 < self.peak_kpa_x10 * self._kept_pct:
            self._finish(_END_RELEASE, self._t_peak, self.peak_kpa_x10, 0)
        elif self._diff(t_ms, self._t_onset) > self.max_ramp_ms:
            self._finish(_END_ABORT, t_ms, kpa_x10, FLAG_ABORTED)
        return self.state

    def feed_fault(self, t_ms, fault, saturated):
        """A sample that failed: fault is the driver's code; saturated: the ADC sat at its
        rail in the pressing direction (an overload, FLAG_SATURATED); any other fault is a
        sensor fault (FLAG_FAULT). During the ramp this ends the trial; no value from it is
        ever used."""
        if self.state == DONE:
            return DONE
        self.faults += 1
        self.fault = fault
        self._faulted = True
        if self.state == RAMP:
            if saturated:
                self._finish(_END_SATURATED, t_ms, self.kpa_x10, FLAG_SATURATED)
            else:
                self._finish(_END_FAULT, t_ms, self.kpa_x10, FLAG_FAULT)
        elif self.state == WAITING:
            self._low_seen = False  # a fresh zero reading must come first
        return self.state

    def abort(self, t_ms):
        """Ends a trial that has no end point (the clinician cancels, or the app times out)."""
        if self.state == DONE:
            return DONE
        if self._faulted:
            self._finish(_END_FAULT, t_ms, self.kpa_x10, FLAG_FAULT | FLAG_ABORTED)
        else:
            self._finish(_END_ABORT, t_ms, self.kpa_x10, FLAG_ABORTED)
        return DONE

    def _start(self, t_ms, kpa_x10):
        self.state = RAMP
        self._ramped = True
        self._t_onset = t_ms
        self._p_onset = kpa_x10
        self.peak_kpa_x10 = kpa_x10
        self._t_peak = t_ms
        for i in range(_WINDOW):  # the rate is "since onset" until the window has filled
            self._win_t[i] = t_ms
            self._win_p[i] = kpa_x10
        self._add_trace(t_ms, kpa_x10)

    def _live_rate(self, t_ms, kpa_x10):
        i = self._wi
        dt = self._diff(t_ms, self._win_t[i])
        dp = kpa_x10 - self._win_p[i]
        self._win_t[i] = t_ms
        self._win_p[i] = kpa_x10
        self._wi = (i + 1) & _WINDOW_MASK
        if dt <= 0:
            return
        rate = dp * 1000 // dt
        self.rate_kpa_s_x10 = rate
        if self._n < _CUE_AFTER:
            return
        # The cue uses the QC band itself, so it never disagrees with the trial's flag; the
        # display and buzzer rate-limit their changes (a rate at a band edge flips it).
        if rate < self.rate_low:
            self.cue = CUE_FASTER
        elif rate > self.rate_high:
            self.cue = CUE_SLOWER
        else:
            self.cue = CUE_ON_TARGET
            self._n_on += 1
        self._n_cued += 1

    def _add_trace(self, t_ms, kpa_x10):
        # Every step-th sample; when full, keep every other point and double the step, so a
        # trial of any length fits the preallocated buffer at an even spacing.
        self._trace_skip -= 1
        if self._trace_skip > 0:
            return
        trace = self._trace
        n = self._trace_n
        if n == self._trace_len:
            for i in range(n >> 1):
                trace[i] = trace[i << 1]
            n >>= 1
            self._trace_step <<= 1
        trace[n] = kpa_x10 if kpa_x10 < _TRACE_MAX else _TRACE_MAX
        self._trace_n = n + 1
        self._trace_skip = self._trace_step
        self._t_trace = t_ms

    def _finish(self, end, t_end, p_end, flags):
        self.state = DONE
        self.cue = CUE_NONE
        self.end = end
        self._t_end = t_end
        ramp_ms = self._diff(t_end, self._t_onset)
        if ramp_ms > 0:
            self.mean_rate_kpa_s_x10 = (p_end - self._p_onset) * 1000 // ramp_ms
        if end == _END_STOP or end == _END_RELEASE or end == _END_CEILING:
            self.ppt_kpa_x10 = p_end
            if ramp_ms < self.min_ramp_ms:
                flags |= FLAG_SHORT
            rate = self.mean_rate_kpa_s_x10
            if rate < self.rate_low or rate > self.rate_high:
                flags |= FLAG_RATE
        self.flags = flags

    def result(self):
        """The finished trial as a dict (allocates: once per trial, not per sample)."""
        if self.state != DONE:
            raise ValueError("trial not finished")
        has_ppt = self.ppt_kpa_x10 >= 0
        ramped = self._ramped
        n = self._trace_n
        trace_dt_ms = 0
        if n > 1:
            trace_dt_ms = (self._diff(self._t_trace, self._t_onset) + (n - 1) // 2) // (n - 1)
        return {
            "end": END_NAMES[self.end],
            "flags": self.flags,
            "valid": self.flags == 0,
            "ppt_kpa_x10": self.ppt_kpa_x10 if has_ppt else None,
            "peak_kpa_x10": self.peak_kpa_x10,
            "onset_ms": self._diff(self._t_onset, self._t_arm) if ramped else None,
            "ramp_ms": self._diff(self._t_end, self._t_onset) if ramped else None,
            "rate_kpa_s_x10": self.mean_rate_kpa_s_x10 if ramped else None,
            "on_target_pct": (self._n_on * 100 // self._n_cued) if self._n_cued else None,
            "faults": self.faults,
            "fault": self.fault if self.faults else None,
            "trace_kpa_x10": list(self._trace[:n]),
            "trace_dt_ms": trace_dt_ms,
        }


def flag_names(flags):
    return [FLAG_NAMES[bit] for bit in range(len(FLAG_NAMES)) if flags & (1 << bit)]


def _sqrt_ratio_round(num, den):
    """sqrt(num / den) rounded to the nearest integer, exactly, in integers (num, den > 0)."""
    n = num // den
    if n <= 0:
        x = 0
    else:  # floor(sqrt(n)) by Newton's method; floor(sqrt(floor(q))) == floor(sqrt(q))
        x = n
        y = (x + 1) // 2
        while y < x:
            x = y
            y = (x + n // x) // 2
    # sqrt(q) >= x + 1/2  <=>  4 num >= (2x + 1)^2 den
    return x + 1 if 4 * num >= (2 * x + 1) * (2 * x + 1) * den else x


def is_censored(trial):
    """A trial that reached the safety ceiling on a good ramp (no other flag): its threshold is
    above the pressure it recorded. One that also has another flag is invalid."""
    return trial["flags"] == FLAG_CENSORED and trial["ppt_kpa_x10"] is not None


def site_summary(trials, min_valid=MIN_VALID):
    """Site value from trial results: the mean of the valid trials (at least min_valid), with
    the coefficient of variation. All trials stay in the record; reason says why no value.
    Censored trials (is_censored) are never averaged in as if measured. When there are any,
    the site has no point value but a lower bound, ppt_min_kpa_x10: the mean with each
    censored trial counted at the pressure it reached (its threshold is higher), given when
    the valid and censored trials together reach min_valid."""
    values = [t["ppt_kpa_x10"] for t in trials if t["valid"]]
    above = [t["ppt_kpa_x10"] for t in trials if is_censored(t)]
    k = len(values)
    c = len(above)
    summary = {
        "n_trials": len(trials),
        "n_valid": k,
        "n_censored": c,
        "censored": c > 0,
        "ppt_kpa_x10": None,
        "ppt_min_kpa_x10": None,
        "cv_pct_x10": None,
        "reason": None,
    }
    if c and k + c >= min_valid:
        bound = (sum(values) + sum(above)) // (k + c)  # rounded down: still a lower bound
        summary["ppt_min_kpa_x10"] = bound
        summary["reason"] = (
            "%d of %d trials censored at the ceiling: the site value is at least %d.%d kPa"
            % (c, len(trials), bound // 10, bound % 10)
        )
        return summary
    if k < min_valid:
        causes = []
        for bit in range(len(FLAG_NAMES)):
            hits = len([t for t in trials if t["flags"] & (1 << bit)])
            if hits:
                causes.append("%d %s" % (hits, FLAG_TEXT[bit]))
        summary["reason"] = "%d valid trials needed, %d of %d valid%s" % (
            min_valid,
            k,
            len(trials),
            (" (" + ", ".join(causes) + ")") if causes else "",
        )
        return summary
    total = sum(values)
    summary["ppt_kpa_x10"] = (total + k // 2) // k
    if k < 2:
        return summary
    # CV = SD / mean with the n - 1 SD: sqrt(k * sum(x^2) - total^2) / sqrt(k(k-1)) / (total/k),
    # in % x 10 and rounded to the nearest: sqrt(spread * k * 10**6 / ((k - 1) * total^2)).
    spread = k * sum([v * v for v in values]) - total * total
    if total > 0:
        summary["cv_pct_x10"] = _sqrt_ratio_round(spread * k * 1000000, (k - 1) * total * total)
    return summary


class Sampler:
    """One conversion through driver -> scale -> trial: the sampling task calls step() once
    per data-ready. A failed read never reaches the scale; it resets the filter instead, so
    no value from before a fault is mixed with one after it. A rail code in the direction the
    calibrated span says pressing moves the reading is an overload (saturated); the opposite
    rail cannot come from pressing (a broken bridge or wiring) and is a sensor fault.
    Allocates nothing."""

    def __init__(self, adc, scale, trial):
        self._adc = adc
        self._scale = scale
        self._trial = trial

    def step(self, t_ms, stop):
        adc = self._adc
        counts = adc.read()
        if counts is None:
            scale = self._scale
            scale.reset()
            rail = adc.rail
            overload = rail > 0 if scale.span_counts >= 0 else rail < 0
            return self._trial.feed_fault(t_ms, adc.fault, overload)
        return self._trial.feed(t_ms, self._scale.update(counts), stop)

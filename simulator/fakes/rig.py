# The bench rig, built in one place for tests, benches and the simulator: a virtual clock, the
# pin-level fake HX711 on it, the firmware's real driver, scale and trial engine, wired as the
# board wires them (board.py: the driver gets pins and the `time` module; here the fake's pins
# and the virtual clock). Runs on CPython and on micropython. Keyword arguments only, each
# with the name the part itself uses; the trial engine takes any ppt.Trial keyword.
import gc

from fake_hx711 import PERIOD_US, PHASE_US, FakeHX711
from vclock import VirtualClock

from core import ppt
from core.scale import Scale
from drivers.hx711 import GAIN_A128, HX711, NOT_READY


class Rig:
    """rig.clock, rig.chip, rig.hx (driver), rig.scale, rig.trial and rig.sampler (driver ->
    scale -> trial, one step per data-ready).

    Chip: offset_counts, counts_per_kg, noise_counts, seed, start_us (the clock's start).
    Driver: gain, timeout_ms, disable_irq / enable_irq, wrap_sck (a function given the chip's
    PD_SCK pin that returns the pin the driver gets: a test's edge counter).
    Scale: area_cm2_x100, filter_len, cell_counts_per_kg (default: the chip's counts_per_kg,
    the device built for its load cell); calibrated=True tares at the chip's offset and sets
    the span the chip's counts_per_kg gives span_mass_g, with cal_id, as a perfect
    calibration would (the calibration wizard itself is tested on its own).
    Trial: every other keyword goes to ppt.Trial; ticks_diff is the clock's (ticks wrap)."""

    def __init__(
        self,
        *,
        offset_counts=84000,
        counts_per_kg=215000,
        noise_counts=0,
        seed=1,
        start_us=0,
        gain=GAIN_A128,
        timeout_ms=100,
        disable_irq=None,
        enable_irq=None,
        wrap_sck=None,
        area_cm2_x100=100,
        filter_len=4,
        cell_counts_per_kg=None,
        calibrated=False,
        span_mass_g=2000,
        cal_id=1,
        **trial_kw,
    ):
        self.clock = clock = VirtualClock(start_us)
        self.chip = chip = FakeHX711(clock, offset_counts, counts_per_kg, noise_counts, seed)
        pd_sck = chip.pd_sck if wrap_sck is None else wrap_sck(chip.pd_sck)
        self.hx = HX711(
            chip.dout,
            pd_sck,
            clock,
            gain=gain,
            timeout_ms=timeout_ms,
            disable_irq=disable_irq,
            enable_irq=enable_irq,
        )
        self.scale = scale = Scale(area_cm2_x100, filter_len, cell_counts_per_kg or counts_per_kg)
        if calibrated:
            scale.set_tare(offset_counts)
            scale.set_span(counts_per_kg * span_mass_g // 1000, span_mass_g, cal_id)
        if "ticks_diff" not in trial_kw:
            trial_kw["ticks_diff"] = clock.ticks_diff
        self.trial = ppt.Trial(**trial_kw)
        self.sampler = ppt.Sampler(self.hx, scale, self.trial)
        self.answers = [0, 0, 0]  # poll_for(): readings, not ready, faults

    def at(self, t_ms):
        """Lets virtual time run to t_ms since the clock's zero (nothing read meanwhile)."""
        self.clock.sleep_us(t_ms * 1000 - self.clock.now_us)

    def tick(self):
        """Sleeps to the chip's next data-ready, as the sampling task would (a timed-out read
        may have run past some), and returns the time in ms ticks (they wrap, as a board's)."""
        clock = self.clock
        clock.sleep_us(PERIOD_US - (clock.now_us - PHASE_US) % PERIOD_US)
        return clock.ticks_ms()

    def step(self, stop=False):
        """One sample through driver -> scale -> trial at the next data-ready: the state."""
        return self.sampler.step(self.tick(), stop)

    def poll_for(self, polls, every_us=500):
        """poll() as a sampling task does between its yields: polls times, every_us apart;
        each reading goes through scale and trial (no stop press). A fault is only counted:
        what the app does with one (Sampler.step) is not this rig's to copy. Adds to
        self.answers; allocates nothing."""
        hx = self.hx  # one name per line: unpacking 4 of them would allocate a tuple
        clock = self.clock
        scale = self.scale
        trial = self.trial
        answers = self.answers
        for _ in range(polls):
            clock.sleep_us(every_us)
            counts = hx.poll()
            if counts == NOT_READY:
                answers[1] += 1
            elif counts is None:
                answers[2] += 1
            else:
                answers[0] += 1
                trial.feed(clock.ticks_ms(), scale.update(counts), False)


def heap_allocated(run):
    """Heap bytes that run() allocated, with the collector off meanwhile so every byte counts
    (micropython only: CPython has no gc.mem_alloc). run takes no arguments: a call with
    *args would allocate its argument array on the heap and count it."""
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()  # pyright: ignore[reportAttributeAccessIssue] (CPython typeshed)
    try:
        run()
        return gc.mem_alloc() - before  # pyright: ignore[reportAttributeAccessIssue]
    finally:
        gc.enable()

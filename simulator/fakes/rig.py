# The bench rig, built in one place for tests, benches and the simulator: a virtual clock, the
# pin-level fake HX711 on it, the firmware's real driver, scale and trial engine, wired as the
# board wires them (board.py: the driver gets pins and the `time` module; here the fake's pins
# and the virtual clock). Runs on CPython and on micropython. Keyword arguments only, each
# with the name the part itself uses; the trial engine takes any ppt.Trial keyword.
import gc

from fake_hx711 import PERIOD_US, PHASE_US, FakeHX711, probe_mg
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


# --- the visit on the rig -----------------------------------------------------------------
# The bedside visit (core.visit) with everything it needs: the chip and clock above, the
# record store on a real filesystem (LittleFS on a simulated NOR flash on micropython; a
# temporary directory on CPython, whose os module the store also runs on), the clinic
# settings with the rig's calibration, and the QST reference table. The Clinician below is
# the simulated hand on the probe: it watches what the unit shows, as a clinician would,
# and never does what the unit should.

_FLASH_BLOCKS = 64  # 256 KB of 4 KB blocks: a quarter of the board's partition, for the heap


def storage_root(name="log", flash=None, blocks=_FLASH_BLOCKS):
    """A directory for a Store: on micropython on LittleFS (a FakeFlash of blocks 4 KB blocks,
    formatted when new, mounted behind drivers.flashfs's fence at /flash), on CPython a fresh
    temporary one. Returns (root path, the FakeFlash or None)."""
    import sys

    if sys.implementation.name != "micropython":
        import atexit
        import shutil
        import tempfile

        made = tempfile.mkdtemp(prefix="algodose-")
        atexit.register(shutil.rmtree, made, True)  # the test process leaves none behind
        return made + "/" + name, None
    import vfs
    from fake_flash import FakeFlash

    from drivers import flashfs

    if flash is None:
        flash = FakeFlash(block_size=4096, block_count=blocks)
        vfs.VfsLfs2.mkfs(flash)  # pyright: ignore[reportArgumentType] (the block protocol)
    flashfs.mount(flashfs.Fence(flash), "/flash")
    return "/flash/" + name, flash


def reference_table():
    """The QST reference table the firmware ships (data/qst_reference.json on the path)."""
    from core import qst

    return qst.load_reference(qst.find_reference())


class VisitRig(Rig):
    """rig.visit (core.visit.Visit) on rig.store (core.store.Store, open), rig.settings
    (calibrated to the chip unless calibrated=False) and the shipped reference table. Any
    Rig keyword; settings: a dict of core.settings values to change."""

    def __init__(self, *, calibrated=True, settings=None, store_root=None, **kw):
        from core import settings as settings_mod
        from core import store, visit

        Rig.__init__(self, **kw)
        self.settings = s = settings_mod.Settings()
        settings = settings or {}
        for name in settings:
            s.set(name, settings[name])
        if calibrated:
            mass_g = 2000
            s.set_calibration(7, self.chip.counts_per_kg * mass_g // 1000, mass_g, None)
        if store_root is None:
            store_root, self.flash = storage_root()
        self.store_root = store_root
        self.store = store.Store(store_root)
        self.store.open(0, None)
        self.visit = visit.Visit(
            self.store, s, reference_table(), cell_counts_per_kg=self.chip.counts_per_kg
        )
        self.stop = False  # the patient's button, pressed until the next sample takes it
        self.states = [self.visit.state]  # every state the visit went through, in order
        # What the app's storage task does, when a test gives it: recover(t_ms) is called
        # after a sample that leaves the visit waiting in STORAGE (app.App._recover).
        self.recover = None
        self._waits = visit.STORAGE

    def sample(self):
        """One conversion into the visit, as the app's sampling task passes it on."""
        t_ms = self.tick()
        hx = self.hx
        counts = hx.read()
        if counts is None:
            self.visit.fault(t_ms, hx.fault, hx.rail)
        else:
            stop = self.stop
            self.stop = False
            self.visit.sample(t_ms, counts, stop)
        if self.visit.state != self.states[-1]:
            self.states.append(self.visit.state)
        if self.recover is not None and self.visit.state == self._waits:
            self.recover(t_ms)
        return t_ms

    def now_ms(self):
        return self.clock.now_us // 1000

    def run_until(self, done, limit_ms=60000):
        """Samples until done(visit) or limit_ms of virtual time; True if done."""
        end = self.now_ms() + limit_ms
        while not done(self.visit):
            if self.now_ms() >= end:
                return False
            self.sample()
        return True


class Clinician:
    """The hand on the probe. trial(): rest rest_ms, press at a rate up to a peak, the patient
    presses stop there (press=False: never, the clinician releases at the peak), react_ms
    later the clinician releases; a fault ({"kind", "at_ms" from the ramp start, "for_ms" or
    None}) goes to the chip meanwhile."""

    def __init__(self, rig, area_cm2_x100=100):
        self.rig = rig
        self.area = area_cm2_x100

    def trial(self, rate_x10, peak_x10, press=True, fault=None, rest_ms=1000, react_ms=200):
        """rate_x10: kPa/s x 10; peak_x10: kPa x 10. The visit's last trial result, if any."""
        rig = self.rig
        now = rig.now_ms()
        start = now + rest_ms
        peak_at = start + (peak_x10 * 1000 + rate_x10 // 2) // rate_x10
        lift = peak_at + (react_ms if press else 0)
        peak_mg = probe_mg(peak_x10, self.area)
        rig.chip.set_profile(
            [(now, 0), (start, 0), (peak_at, peak_mg), (lift, peak_mg), (lift + 300, 0)]
        )
        if fault is not None:
            at = start + fault["at_ms"]
            for_ms = fault["for_ms"]
            rig.chip.add_fault(fault["kind"], at, None if for_ms is None else at + for_ms)
        pressed = False
        while rig.now_ms() < lift + 1800:
            if press and not pressed and rig.now_ms() >= peak_at:
                rig.stop = pressed = True
            rig.sample()
        return rig.visit.trials[-1] if rig.visit.trials else {}

    def hold_still(self, ms=1500):
        """The probe in the air, still: the unit zeroes."""
        rig = self.rig
        rig.chip.set_profile([(rig.now_ms(), 0)])
        end = rig.now_ms() + ms
        while rig.now_ms() < end:
            rig.sample()

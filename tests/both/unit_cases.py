# The virtual unit on both runtimes: the firmware's real main.run and app.App on the
# simulator's board, driven only by button presses, the probe and the stop button. Each case
# is a script keyed on the unit's screen and state; it returns what the screens said (their
# text view), the states and what is on flash, for tests/test_unit.py to check.
import framebuf
from unit import (
    WDT_RESET,
    Board,
    WatchdogReset,
    idle,
    left,
    on,
    records,
    run,
    screen,
    state,
    then,
    tick,
)

from core import ui
from core import visit as V

UP = 0  # Hand.press's buttons
DOWN = 1
SELECT = 2
PATIENTS = (
    {"code": "P-0042", "age": 47, "sex": "F", "conditions": ("fibromyalgia",), "sessions": 0},
    {
        "code": "KNEE-7",
        "age": 63,
        "sex": "M",
        "flags": ("chronic",),
        "sessions": 2,
        "last_dose": (2, 6, 0, 0),
    },
    {"code": "NP-3", "age": 35, "sex": "M", "contraindications": ("needle_phobia",)},
)
THRESHOLDS = (2400, 2500, 2450)  # kPa x 10: a lumbar site, not sensitised


def _run(out, script, board=None, **keywords):
    # run(), and the names of the screens shown kept in out["screens"]
    board = run(script, board, **keywords)
    shown = out.setdefault("screens", [])
    for name in board.names:
        if name not in shown:
            shown.append(name)
    return board


def _types(unit):
    return [r["type"] for r in records(unit.store)]


def _events(unit):
    return [[r["code"], r["detail"], r["a"]] for r in records(unit.store) if r["type"] == "event"]


def _to_plan(hand, out, patient_index, ticks=(), contra=(), override=()):
    """Home to the site plan for the pushed patient at patient_index: factors ticked (names),
    contraindications ticked and overridden; screens' text kept in out."""
    unit = hand.unit
    unit.on_patients(0, [dict(p) for p in PATIENTS])
    yield hand.after(200)
    yield from then(hand, "patients")
    out["patients"] = screen(unit)
    hand.press(DOWN, patient_index)
    yield from then(hand, "factors")
    names = ui.factor_names()
    at = tick(hand, names, ticks)
    hand.press(DOWN, len(names) - 1 - at)
    yield idle
    out["factors"] = screen(unit)
    yield from then(hand, "contraindications")
    at = tick(hand, ui.contraindication_rows(()), [(name, "item") for name in contra])
    yield idle  # the overrides' rows appear under what was ticked
    at = tick(hand, ui.contraindication_rows(contra), [(n, "override") for n in override], at)
    yield idle
    out["contraindications"] = screen(unit)
    hand.press(DOWN, len(ui.contraindication_rows(unit.nav.present)) - 1 - at)
    yield from then(hand, "plan")


def _one_site_plan(hand, out, site_steps=0):
    """The plan: the local site moved site_steps down the list, no reference; start."""
    if site_steps:
        hand.press(SELECT)  # the local site: up/down, then its side
        hand.press(DOWN, site_steps)
        hand.press(SELECT)
        hand.press(SELECT)  # the side stays
    hand.press(DOWN)
    hand.press(SELECT)  # the reference: one up from thenar wraps to "none"
    hand.press(UP)
    hand.press(SELECT)
    yield idle
    out["plan"] = screen(hand.unit)
    out["plan_sites"] = hand.unit.nav.plan_sites()
    hand.press(DOWN)
    hand.press(SELECT)
    yield left("plan")


def _started(hand, out, patient_index, contra=(), override=()):
    # Home to the first site's zeroing: the patient, nothing ticked but contra and
    # override, one lumbar site.
    yield on("home")
    yield from _to_plan(hand, out, patient_index, (), contra, override)
    yield from _one_site_plan(hand, out, _LUMBAR)


def _trials(hand, thresholds, rate=500):
    visit = hand.unit.visit
    hand.hold_still()
    yield state(V.ARMED)
    for threshold in thresholds:
        count = len(visit.trials)
        hand.trial(rate, threshold)
        yield _stored(count + 1)


def _stored(count):
    def done(hand):
        visit = hand.unit.visit
        return len(visit.trials) >= count and visit.state != V.RAMP and hand.ready()

    return done


_LUMBAR = 4  # core.vocab.SITES: lumbar_paraspinal, 4 below the plan's upper trapezius


def contraindicated_without_override():
    """A patient the laptop lists with needle phobia: the unit says no needling before the
    visit, measures, recommends no dose, and the only dose to give is none."""
    out = {}

    def script(hand):
        yield from _started(hand, out, 2)
        yield from _trials(hand, THRESHOLDS)
        yield on("site_result")
        yield from then(hand, "recommendation")
        out["recommendation"] = screen(hand.unit)
        yield from then(hand, "dose")
        out["dose"] = screen(hand.unit)
        yield from then(hand, "aftercare")
        out["aftercare"] = screen(hand.unit)
        yield from then(hand, "home")
        stored = records(hand.unit.store)
        out["dose_record"] = [[r["needles"], r["gauge_mm"]] for r in stored if r["type"] == "dose"]
        out["session"] = [r["contraindications"] for r in stored if r["type"] == "session"]

    _run(out, script)
    return out


def contraindicated_with_override():
    """Lymphedema ticked on the unit today and overridden by the clinician: the override
    is recorded (session and event), and the dose is the minimal one."""
    out = {}

    def script(hand):
        yield from _started(hand, out, 0, ("lymphedema",), ("lymphedema",))
        yield from _trials(hand, THRESHOLDS)
        yield on("site_result")
        yield from then(hand, "recommendation")
        out["recommendation"] = screen(hand.unit)
        rec = hand.unit.visit.recommendation
        out["dose"] = [rec["status"], rec["needles"], rec["depth"], rec["overrides"]]
        stored = records(hand.unit.store)
        out["session"] = [[r["contraindications"], r["overrides"]] for r in stored
                          if r["type"] == "session"]  # fmt: skip
        out["events"] = _events(hand.unit)

    _run(out, script)
    return out


def storage_full():
    """No room for a session: the unit says so before anything is ticked; back goes home."""
    out = {}

    def script(hand):
        yield on("home")
        hand.unit.store.room_for_session = _no_room  # the store's own answer: test_store
        hand.press(SELECT)
        yield idle
        out["name"] = hand.unit.nav.name()
        out["screen"] = screen(hand.unit)
        hand.back()
        yield idle
        out["after"] = hand.unit.nav.name()
        out["types"] = _types(hand.unit)

    _run(out, script)
    return out


def _no_room():
    return False


def sensor_fault_mid_trial():
    """The probe cable fails during the second ramp: the screen says what to do, the trial is
    stored as a fault (never a reading) and taken again."""
    out = {"seen": []}

    def script(hand):
        yield from _started(hand, out, 0)
        visit = hand.unit.visit
        hand.hold_still()
        yield state(V.ARMED)
        hand.trial(500, 2400)
        yield _stored(1)
        hand.trial(500, 2500)
        now = hand.board.now_ms()
        hand.board.chip.add_fault("no_data_ready", now + 3000, now + 3300)
        yield state(V.SENSOR)
        yield hand.after(150)
        out["sensor"] = screen(hand.unit)
        yield state(V.ARMED)
        hand.hold_still()
        out["armed"] = screen(hand.unit)
        for threshold in (2450, 2420):
            count = len(visit.trials)
            hand.trial(500, threshold)
            yield _stored(count + 1)
        yield on("site_result")
        stored = records(hand.unit.store)
        out["trials"] = [[r["trial"], r["end"], r["ppt_kpa_x10"]] for r in stored
                         if r["type"] == "trial"]  # fmt: skip

    _run(out, script)
    return out


def calibration_from_settings():
    """A unit never calibrated: a visit is refused with the way to calibrate; the wizard
    runs from the settings with the mass on the probe; the calibration survives a power
    cut."""
    out = {}

    def script(hand):
        yield on("home")
        yield from then(hand, "notice")
        out["refused"] = screen(hand.unit)
        hand.press(SELECT)  # "ok:calibrate": to the settings, at the calibrate row
        yield on("settings")
        hand.press(SELECT)  # choose the mass
        hand.press(DOWN, 10)  # 1000 g
        yield idle
        out["mass"] = screen(hand.unit)
        yield from then(hand, "calibration")
        hand.hold_still()
        yield hand.after(300)
        out["tare"] = screen(hand.unit)
        yield _wizard(2)  # tared: put the mass on
        out["put_mass"] = screen(hand.unit)
        hand.probe([(0, 0), (400, 981)])  # 1000 g on 1 cm2: 98.1 kPa
        yield state(V.IDLE)
        yield hand.after(200)
        out["done"] = screen(hand.unit)
        yield from then(hand, "settings")
        yield hand.after(600)  # the storage task writes the settings
        out["events"] = _events(hand.unit)

    board = _run(out, script, calibrated=False)
    board.power_cut()

    def after(hand):
        yield on("home")
        settings = hand.unit.settings
        out["kept"] = [settings.cal_id, settings.span_mass_g, settings.calibrated()]

    _run(out, after, board)
    return out


def _wizard(step):
    def reached(hand):
        return hand.unit.visit.wizard.state == step

    return reached


def abort_mid_visit():
    """Hold: back while measuring asks first; back from the question measures on; ok ends
    the visit: what is stored stays, an event says the visit ended."""
    out = {}

    def script(hand):
        yield from _started(hand, out, 0)
        yield from _trials(hand, THRESHOLDS[:1])
        hand.back()
        yield on("end")
        out["asked"] = screen(hand.unit)
        hand.back()  # no: back to measuring
        yield idle
        out["kept_on"] = hand.unit.nav.name()
        hand.back()
        yield on("end")
        yield from then(hand, "notice")
        out["ended"] = screen(hand.unit)
        yield from then(hand, "home")
        out["types"] = _types(hand.unit)
        out["events"] = _events(hand.unit)

    _run(out, script)
    return out


def code_entry_and_age():
    """A new code typed on the unit (A, 1, then done); the age must be set before going on:
    continue starts the age at 40, up twice makes 42."""
    out = {}

    def script(hand):
        yield on("home")
        yield from then(hand, "patients")
        out["empty"] = screen(hand.unit)
        hand.press(SELECT)  # "+ new code" (no list pushed)
        yield on("code")
        hand.press(SELECT)  # A
        hand.press(DOWN, 27)  # 1 (A-Z, then 0, 1)
        hand.press(SELECT)
        hand.press(DOWN, 11)  # past 2-9, "-" and the delete mark: done
        yield idle
        out["code"] = screen(hand.unit)
        yield from then(hand, "factors")
        hand.press(UP)  # wraps? no: the list does not wrap, the cursor stays on age
        hand.press(DOWN, len(ui.factor_names()) - 1)
        hand.press(SELECT)  # continue without an age: the age is asked first
        yield idle
        out["age_asked"] = screen(hand.unit)
        hand.press(UP, 2)
        hand.press(SELECT)
        yield idle
        out["age_set"] = hand.unit.nav.patient["age"]
        out["factors"] = screen(hand.unit)

    _run(out, script)
    return out


def returning_patient_lowered_dose():
    """A patient with two sessions: the response to the last one comes first; the dose given
    is lowered by one needle on the unit and stored so."""
    out = {}

    def script(hand):
        yield from _started(hand, out, 1)
        yield on("response")
        out["response"] = screen(hand.unit)
        hand.press(DOWN)  # tolerated
        hand.press(SELECT)
        yield from _trials(hand, THRESHOLDS)
        yield on("site_result")
        yield from then(hand, "recommendation")
        rec = hand.unit.visit.recommendation
        out["recommended"] = [rec["gauge_mm"], rec["needles"], rec["depth"], rec["manipulation"]]
        yield from then(hand, "dose")
        hand.press(DOWN, 2)  # needles
        hand.press(SELECT)
        hand.press(DOWN)  # one fewer
        hand.press(UP, 3)  # never above the recommendation
        hand.press(DOWN)
        hand.press(SELECT)
        yield idle
        out["dose"] = screen(hand.unit)
        hand.press(UP, 2)
        hand.press(SELECT)  # confirm
        yield on("aftercare")
        yield from then(hand, "home")
        stored = records(hand.unit.store)
        out["stored"] = [[r["needles"], r["gauge_mm"]] for r in stored if r["type"] == "dose"]
        out["response_record"] = [r["response"] for r in stored if r["type"] == "response"]
        entry = [p for p in hand.unit.patients if p["code"] == "KNEE-7"][0]
        out["history"] = [entry["sessions"], list(entry["last_dose"])]
        yield hand.after(600)  # the storage task writes the table

    board = _run(out, script)
    board.power_cut()

    def after(hand):
        yield on("home")
        table = hand.unit.patients
        out["table"] = [[p["code"], p["sessions"], list(p["last_dose"] or ())] for p in table]

    _run(out, after, board)
    return out


def storage_error_recovered():
    """The storage fails as a trial ends: the screen says so, the trial waits in RAM, the
    app remounts and reopens the store when the storage works again, and the trial is
    saved; the visit goes on."""
    out = {}

    def script(hand):
        yield from _started(hand, out, 0)
        visit = hand.unit.visit
        hand.hold_still()
        yield state(V.ARMED)
        hand.board.storage_fails(True)
        hand.trial(500, 2400)
        yield state(V.STORAGE)
        yield hand.after(300)
        out["failed"] = screen(hand.unit)
        out["saved_then"] = visit.saved
        yield hand.after(2500)  # retried, and failing still
        hand.board.storage_fails(False)
        yield state(V.ARMED)
        out["saved_after"] = visit.saved
        stored = records(hand.unit.store)
        out["trials"] = [r["ppt_kpa_x10"] for r in stored if r["type"] == "trial"]
        out["shown"] = [t["ppt_kpa_x10"] for t in visit.trials]

    _run(out, script)
    return out


def _crash(inject):
    """A visit with one trial stored, then inject(unit) makes a task fail; the unit restarts
    on the same flash. Returns the events and the trials on flash after the restart."""
    out = {}

    def script(hand):
        yield from _started(hand, out, 0)
        yield from _trials(hand, THRESHOLDS[:1])
        crashed = hand.unit
        out["before"] = _types(crashed)
        inject(crashed)
        yield _restarted(crashed)
        yield on("home")
        stored = records(hand.unit.store)
        out["trials"] = [r["ppt_kpa_x10"] for r in stored if r["type"] == "trial"]
        out["types"] = [r["type"] for r in stored]
        out["events"] = _events(hand.unit)
        out["restarts"] = hand.board.restarts

    _run(out, script)
    return out


def _restarted(old):
    def again(hand):
        return hand.unit is not None and hand.unit is not old

    return again


def memory_error_in_sampling():
    def inject(unit):
        unit.hx.poll = _out_of_memory

    return _crash(inject)


def _out_of_memory():
    raise MemoryError()


def crash_in_ui():
    def inject(unit):
        unit.nav.draw = _broken

    return _crash(inject)


def _broken(_canvas):
    raise RuntimeError("a bug in a screen")


def watchdog_resets_a_hung_task():
    """The storage task stops (never wakes again): the watchdog is no longer fed and the
    unit resets; the boot after it says why."""
    out = {}

    def script(hand):
        yield on("home")
        unit = hand.unit
        out["feeds_before"] = hand.board.wdt.feeds
        unit.persist = _hang_after(hand.board)
        yield hand.after(20000)
        out["not_reset"] = True  # never reached: the watchdog resets first

    board = Board()
    board.calibrated()
    try:
        _run(out, script, board)
    except WatchdogReset:
        out["reset_after_ms"] = board.now_ms()
        out["feeds_after"] = board.wdt.feeds if board.wdt is not None else None
    board.power_cut()
    board.cause = WDT_RESET

    def after(hand):
        yield on("home")
        out["events"] = _events(hand.unit)

    _run(out, after, board)
    return out


def _hang_after(board):
    def persist(_t):
        board.hang_next_sleep = True  # the storage task's next wait never ends

    return persist


def crash_loop(after_ms=0, restarts_max=10):
    """A fault at every start: the HX711's poll() fails after_ms after each start. Then a
    power cycle with the fault gone. Returns the restarts, whether the unit stopped and
    showed the fault screen, and the events on flash after the power cycle."""
    board = Board(restarts_max=restarts_max)
    board.calibrated()
    working = board.hx711
    board.hx711 = _failing(board, working, after_ms)
    out = {}
    units = []
    run(_each_start(units), board)  # not _run: what it drew before a crash depends on order
    out["restarts"] = board.restarts
    out["stopped"] = board.unit is None and board.restarts <= restarts_max
    drawn = bytearray(128 * 64 // 8)
    fault = ui.halted(framebuf.FrameBuffer(drawn, 128, 64, framebuf.MONO_VLSB))
    out["fault_rows"] = fault.rows()
    out["fault_shown"] = board.screen is not None and board.screen.buffer == drawn
    if out["stopped"]:  # the REPL is free: a USB pull reaches what was stored
        import usb

        usb.start(board)
        out["usb_count"] = usb.count(0)
        usb.attach(None)
    units[-1].store.close()  # the power cycle ends the store the USB pull opened again
    board.power_cut()
    board.hx711 = working

    def after(hand):
        yield on("home")
        out["events"] = _events(hand.unit)

    run(after, board)
    return out


def crash_loop_slow():
    """The same fault, each time after the app ran just over the minute that clears the
    count: the unit keeps restarting (until the simulation's limit)."""
    return crash_loop(after_ms=60100, restarts_max=4)


def crash_loop_just_quick():
    """Each crash just under that minute: three in a row stop the unit."""
    return crash_loop(after_ms=59900)


def _each_start(units):
    def script(hand):
        while True:  # nothing to do but wait for each start (within the hand's patience)
            units.append(hand.unit)
            yield _restarted(hand.unit)

    return script


def _failing(board, build, after_ms):
    # board.hx711 that builds the real driver and makes its poll() fail after_ms after
    # the driver was built (at the app's start).
    def hx711():
        hx = build()
        poll = hx.poll
        started_ms = board.now_ms()

        def failing():
            if board.now_ms() - started_ms >= after_ms:
                raise MemoryError()
            return poll()

        hx.poll = failing
        return hx

    return hx711


def safe_boot():
    """The select button held at power-up: no app, the REPL stays free."""
    board = Board(safe=True)
    board.calibrated()
    run(_never, board)
    return {"unit": board.unit is None, "frames": board.screen is None}


def _never(hand):
    yield on("never")


class Link:
    """What the app would hold for the laptop link (the sync server's view): plain
    attributes the screens read, and the two calls navigation makes."""

    def __init__(self):
        self.pairing_open = False
        self.passkey = None
        self.pairing_left_s = None
        self.syncing = False
        self.sent = 0
        self.total = 0
        self.calls = []

    def open_pairing(self, t_ms):
        self.calls.append("open")
        self.pairing_open = True
        self.pairing_left_s = 60

    def close_pairing(self, t_ms):
        self.calls.append("close")
        self.pairing_open = False
        self.show_passkey(None)

    def show_passkey(self, passkey):
        # the sync server's callback: the laptop asks for a passkey (None: done)
        self.passkey = passkey


def pairing_and_sync():
    """Menu, pair a laptop: the window opens, the passkey shows large when the laptop asks,
    back closes the window. A sync in progress shows its progress over home."""
    out = {}
    link = Link()

    def script(hand):
        yield on("home")
        unit = hand.unit
        hand.press(UP)
        yield on("menu")
        hand.press(DOWN, 2)
        yield from then(hand, "notice")  # no radio on this board yet
        out["no_radio"] = screen(unit)
        yield from then(hand, "menu")
        unit.link = link
        unit.nav.link = link
        yield from then(hand, "pairing")
        out["open"] = screen(unit)
        link.show_passkey(42)
        link.pairing_left_s = 41
        yield hand.after(200)
        out["passkey"] = screen(unit)
        hand.back()
        yield on("home")
        out["home_closed"] = screen(unit)
        link.syncing = True
        link.total = 40
        link.sent = 10
        yield on("sync")
        out["sync"] = screen(unit)
        link.sent = 40
        link.syncing = False
        yield on("home")
        out["calls"] = link.calls

    _run(out, script)
    return out


def settings_kept():
    """Units and the ice line changed in the settings survive a power cut; a change left
    with back is not kept."""
    out = {}

    def script(hand):
        yield on("home")
        hand.press(UP)
        yield on("menu")
        hand.press(DOWN)
        yield from then(hand, "settings")
        hand.press(SELECT)
        hand.press(UP, 2)  # kPa -> N (the list wraps: kPa, kgf/cm2, N, lbf)
        hand.press(SELECT)
        hand.press(DOWN)
        hand.press(SELECT)
        hand.press(UP, 3)  # the rate: changed, then left with back
        yield idle
        out["editing"] = screen(hand.unit)
        hand.back()
        hand.press(DOWN, 4)
        hand.press(SELECT)
        hand.press(UP)  # ice: allow
        hand.press(SELECT)
        yield idle
        out["settings"] = screen(hand.unit)
        hand.back()
        yield on("home")
        yield hand.after(600)

    board = _run(out, script)
    board.power_cut()

    def after(hand):
        yield on("home")
        s = hand.unit.settings
        out["kept"] = [s.unit, s.target_kpa_s_x10, s.aftercare_ice]

    _run(out, after, board)
    return out


def options_repeat_and_skip():
    """Between trials, ok opens the options: repeat the last trial (an event marks it
    excluded and it is taken again), or skip the site."""
    out = {}

    def script(hand):
        yield from _started(hand, out, 0)
        yield from _trials(hand, THRESHOLDS[:1])
        yield from then(hand, "options")
        out["options"] = screen(hand.unit)
        hand.press(DOWN)
        hand.press(SELECT)  # repeat the last trial
        yield on("measurement")
        out["after_repeat"] = [len(hand.unit.visit.trials), hand.unit.visit.trial_number]
        yield from then(hand, "options")
        hand.press(DOWN, 2)
        hand.press(SELECT)  # skip this site
        yield on("site_result")
        out["skipped"] = screen(hand.unit)
        out["events"] = _events(hand.unit)

    _run(out, script)
    return out


def buzzer_cues():
    """A ramp too slow (25 kPa/s), then one too fast (90 kPa/s): the buzzer says faster
    (two short high beeps) and slower (one long low beep), at most every 0.8 s while the
    cue holds, and beeps once for each saved trial."""
    out = {}

    def script(hand):
        yield from _started(hand, out, 0)
        hand.hold_still()
        yield state(V.ARMED)
        tones = hand.board.pwm.tones
        tones.clear()
        for rate, threshold in ((250, 2000), (900, 2200)):
            count = len(hand.unit.visit.trials)
            hand.trial(rate, threshold)
            yield _stored(count + 1)
            yield hand.after(500)  # the saved beep
        out["tones"] = list(tones)

    _run(out, script)
    return out


class _FullFor:
    """store.flush standing in for a store with no room until `until` ms (a full store is
    tested in test_store; here: what the app and the screens make of one)."""

    def __init__(self, board, store, until_ms):
        self.board = board
        self.flush = store.flush
        self.until_ms = until_ms
        self.calls = 0

    def __call__(self):
        from core.store import StoreFull

        self.calls += 1
        if self.board.now_ms() < self.until_ms:
            raise StoreFull()
        return self.flush()


def storage_full_mid_visit():
    """The store fills as a trial ends: the screen says storage full; the app retries the
    flush without remounting (the flash works); when there is room the trial is saved."""
    out = {}

    def script(hand):
        yield from _started(hand, out, 0)
        hand.hold_still()
        yield state(V.ARMED)
        unit = hand.unit
        full = _FullFor(hand.board, unit.store, hand.board.now_ms() + 8000)
        unit.store.flush = full
        mounts = []
        unit.board.mount_storage = lambda: mounts.append(1)  # counted: never needed here
        hand.trial(500, 2400)
        yield state(V.STORAGE)
        yield hand.after(300)
        out["full"] = screen(unit)
        yield state(V.ARMED)
        out["retries"] = full.calls > 3
        out["mounts"] = len(mounts)
        out["saved"] = unit.visit.saved
        out["trials"] = [r["ppt_kpa_x10"] for r in records(unit.store) if r["type"] == "trial"]

    _run(out, script)
    return out

# Navigation (DESIGN 1): which screen of core.ui the OLED shows, with what data, driven by
# button events (UP, DOWN, SELECT; BACK = select held) and by core.visit's state. A
# synchronous state machine, time passed in: the app, the simulator and the tests drive it.
#
# While no visit is open the clinician moves through home, a menu, the patient list (codes
# the laptop pushed, or a new code), the factor checklist, the contraindications with their
# overrides, the site plan and the settings; SELECT on "Start measuring" opens the visit,
# and from then on the screen follows the visit's state (response, measuring, a site's
# result, the recommendation, the dose given, after-care, a storage error, calibration).
# BACK always goes back one level; ending a visit asks first and keeps what is stored.
#
# Nothing here writes to flash: the clinic's changes raise settings_dirty or
# patients_dirty, and a storage error the clinician wants retried raises retry_storage;
# the app persists, clears the flag, and retries. link is what the app holds for the
# laptop link, or None: it is read for pairing_open, passkey, pairing_left_s, syncing,
# sent and total, and open_pairing(t_ms) / close_pairing(t_ms) are called on it.
from micropython import const

from core import calibration, ui
from core import visit as V
from core.dosage import DIMENSIONS
from core.scale import UNITS
from core.settings import FIELDS
from core.store import StoreError
from core.vocab import (
    AGE_MAX_YEARS,
    CONDITIONS,
    CONTRAINDICATIONS,
    FLAGS,
    NEEDLES_MIN,
    SEXES,
    SITES,
)

# Button events (drivers.buttons produces them).
UP = const(1)
DOWN = const(2)
SELECT = const(3)
BACK = const(4)

# Screens of the navigation itself; VISIT follows core.visit's state.
HOME = const(0)
MENU = const(1)
PATIENTS = const(2)
CODE = const(3)
FACTORS = const(4)
CONTRA = const(5)
PLAN = const(6)
SETTINGS = const(7)
NOTICE = const(8)
PAIR = const(9)
SYNC = const(10)
VISIT = const(11)
DOSE = const(12)  # the dose given, while the visit shows its recommendation
END = const(13)  # "end the visit?"
OPTIONS = const(14)  # repeat a trial, skip a site, end the visit
CAL = const(15)  # the calibration wizard and its result
SCREEN_NAMES = (
    "home",
    "menu",
    "patients",
    "code",
    "factors",
    "contraindications",
    "plan",
    "settings",
    "notice",
    "pairing",
    "sync",
    "visit",
    "dose",
    "end",
    "options",
    "calibration",
)
# What VISIT draws in each core.visit state (STATE_NAMES order).
VISIT_VIEWS = (
    "home",
    "calibration",
    "response",
    "measurement",
    "measurement",
    "measurement",
    "measurement",
    "site_result",
    "recommendation",
    "aftercare",
    "storage",
)
_PARENT = (HOME, HOME, HOME, PATIENTS, PATIENTS, FACTORS, CONTRA, HOME)  # BACK, HOME..SETTINGS
MENU_ITEMS = ("New visit", "Settings", "Pair a laptop")
OPTION_ITEMS = ("Continue measuring", "Repeat last trial", "Skip this site", "End visit")
_CHOICES = ui.CODE_CHARS + ui.DEL + ui.DONE
_AGE_NEW = const(40)  # where the age starts for a new code: the clinician sets it
# Up/down steps of each setting SETTINGS_ROWS changes in place (the range is core.settings').
_STEPS = {
    "unit": 1,
    "target_kpa_s_x10": 50,
    "tolerance_pct": 5,
    "ceiling_kpa_x10": 500,
    "trials_per_site": 1,
    "aftercare_ice": 1,
}
_AT_CALIBRATE = (SETTINGS, ui.SETTINGS_ROWS.index("calibrate"))
_MASS_STEP_G = const(100)
_MASS_MAX_G = const(20000)
_NO_BLE = "There is no Bluetooth on this unit."
_NO_NEEDLES = "No needles today: no after-care."
_CLOCK_OK = "The laptop set the clock. It is set again at every sync."


class Nav:
    def __init__(self, visit, settings, store, patients, link=None):
        """visit: core.visit.Visit; settings: its core.settings.Settings; store: its
        core.store.Store (home shows what waits to be synced); patients: the patient table,
        a list of dicts as core.protocol.parse_patient_list gives them (changed in place
        after a visit); link: see the head of this file."""
        self.visit = visit
        self.settings = settings
        self.store = store
        self.patients = patients
        self.link = link
        self.settings_dirty = False
        self.patients_dirty = False
        self.retry_storage = False
        self.patient = {}  # the patient being prepared (a copy of the table's entry)
        self.ticked = []  # conditions and flags ticked today
        self.present = []  # contraindications ticked today
        self.overrides = []
        self.plan = [SITES.index("upper_trapezius"), 0, SITES.index("thenar"), 0]
        self.code = ""
        self.cal_mass_g = 2000
        self.dose = {}
        self.note = (None, "", "", "ok")  # NOTICE: (error kind or None, title, text, keys)
        self.home_status = (0, 0)  # records to sync, storage used %
        self.screen = HOME
        self.back_to = (HOME, 0)  # where NOTICE, END and OPTIONS go back to, and the cursor
        self.ok_to = (HOME, 0)  # where SELECT on a NOTICE goes
        self.rev = 0  # counts button events: the screen may have changed
        self.cursor = 0
        self.page = 0
        self.pages = 1  # of the screen last drawn
        self.editing = 0
        self._old = 0  # a setting's value before it was changed (BACK restores it)
        self._seen = -1  # the visit state last followed
        self._synced = False  # SYNC shown for this sync already
        self._status()

    # --- what is shown ---------------------------------------------------------------------

    def name(self):
        """The screen as tests and the simulator's script read it: SCREEN_NAMES, or for a
        visit the view of its state (VISIT_VIEWS)."""
        if self.screen == VISIT:
            return VISIT_VIEWS[self.visit.state]
        return SCREEN_NAMES[self.screen]

    def _go(self, screen, cursor=0):
        self.screen = screen
        self.cursor = cursor
        self.page = 0
        self.editing = 0
        if screen == HOME:
            self._status()

    def _notice(self, kind, title, text, keys="ok", ok=None):
        # NOTICE: an error screen of core.ui (kind) or a plain one. BACK returns to the
        # screen it came from; SELECT too, or to ok (screen, cursor).
        self.note = (kind, title, text, keys)
        self._away(NOTICE)
        self.ok_to = self.back_to if ok is None else ok

    def _away(self, screen):
        # A screen that BACK leaves for the one shown now, at its cursor.
        self.back_to = (self.screen, self.cursor)
        self._go(screen)

    def _status(self):
        stats = self.store.stats()
        free = stats["free_bytes"]
        used = stats["bytes"]
        pct = used * 100 // (used + free) if free is not None and used + free else 0
        self.home_status = (stats["unacked"] or 0, pct)

    # --- buttons ---------------------------------------------------------------------------

    def press(self, t_ms, key):
        """One button event (UP, DOWN, SELECT, BACK) at t_ms."""
        self.rev += 1
        screen = self.screen
        if key == BACK and not self.editing and screen not in (VISIT, DOSE, CAL, SYNC, PAIR):
            if screen <= SETTINGS:
                self._go(_PARENT[screen])
            else:
                self._go(*self.back_to)
            return
        if screen == HOME:
            if key == SELECT:
                self._new_visit()
            elif key != BACK:
                self._go(MENU)
        elif screen == MENU:
            if key == SELECT:
                if self.cursor == 0:
                    self._new_visit()
                elif self.cursor == 1:
                    self._go(SETTINGS)
                else:
                    self._pair(t_ms)
            else:
                self._move(key, 3)
        elif screen == PATIENTS:
            if key == SELECT:
                if self.cursor < len(self.patients):
                    self._choose(self.patients[self.cursor])
                else:
                    self.code = ""
                    self._go(CODE)
            else:
                self._move(key, len(self.patients) + 1)
        elif screen == CODE:
            self._code_key(key)
        elif screen == FACTORS:
            self._factor_key(key)
        elif screen == CONTRA:
            self._contra_key(key)
        elif screen == PLAN:
            self._plan_key(t_ms, key)
        elif screen == SETTINGS:
            self._settings_key(t_ms, key)
        elif screen == NOTICE:
            if key == SELECT:
                self._go(*self.ok_to)
            else:
                self._paged(key)
        elif screen == PAIR or screen == SYNC:
            if key == BACK or key == SELECT:
                if screen == PAIR and self.link is not None:
                    self.link.close_pairing(t_ms)
                self._go(HOME)
        elif screen == END:
            if key == SELECT:
                self.visit.abort(t_ms)
                self._go(HOME)
                self._notice(None, "Visit ended", self.visit.message or "")
        elif screen == OPTIONS:
            self._option_key(t_ms, key)
        elif screen == DOSE:
            self._dose_key(t_ms, key)
        elif screen == CAL:
            self._cal_key(t_ms, key)
        else:
            self._visit_key(t_ms, key)

    def _move(self, key, n):
        if key == UP and self.cursor > 0:
            self.cursor -= 1
        elif key == DOWN and self.cursor < n - 1:
            self.cursor += 1

    def _paged(self, key):
        # A screen of pages: up/down turn them.
        if key == UP:
            self.page = max(0, self.page - 1)
        elif key == DOWN:
            self.page = min(self.pages - 1, self.page + 1)

    def _new_visit(self):
        # Refused early, before the clinician ticks anything (core.visit checks again).
        if not self.settings.calibrated():
            self._notice("calibration", None, None, "ok:settings", _AT_CALIBRATE)
            return
        try:
            room = self.store.room_for_session()
        except StoreError as err:  # the flash failed: the app remounts and retries
            self._storage_error(err)
            return
        if room:
            self._go(PATIENTS)
        else:
            self._notice("storage_full", None, None)

    def _storage_error(self, err):
        self.retry_storage = True
        self._notice("storage", None, str(err))

    def _choose(self, entry):
        patient = {}
        for key in entry:
            patient[key] = entry[key]
        self.patient = patient
        self.ticked = list(entry.get("conditions") or ()) + list(entry.get("flags") or ())
        self.present = list(entry.get("contraindications") or ())
        self.overrides = []
        self._go(FACTORS)

    def _code_key(self, key):
        choice = self.cursor
        if key == UP:
            self.cursor = (choice - 1) % len(_CHOICES)
        elif key == DOWN:
            self.cursor = (choice + 1) % len(_CHOICES)
        elif key == SELECT:
            ch = _CHOICES[choice]
            if ch == ui.DEL:
                self.code = self.code[:-1]
            elif ch != ui.DONE:
                self.code += ch
            elif ui.code_problem(self.code) is None:
                for entry in self.patients:
                    if entry["code"] == self.code:  # typed a code the laptop pushed
                        self._choose(entry)
                        return
                self._choose({"code": self.code, "age": None, "sex": "U", "sessions": 0})

    def _factor_key(self, key):
        names = ui.factor_names()
        row = names[self.cursor]
        patient = self.patient
        if self.editing:  # the age
            if key == UP or key == DOWN:
                age = patient["age"] + (1 if key == UP else -1)
                patient["age"] = max(0, min(AGE_MAX_YEARS, age))
            else:
                self.editing = 0
            return
        if key != SELECT:
            self._move(key, len(names))
        elif row == "age":
            if patient.get("age") is None:
                patient["age"] = _AGE_NEW
            self.editing = 1
        elif row == "sex":
            patient["sex"] = SEXES[(SEXES.index(patient.get("sex") or "U") + 1) % len(SEXES)]
        elif row == "continue":
            if patient.get("age") is None:  # the rules need it: set it first
                self.cursor = 0
                patient["age"] = _AGE_NEW
                self.editing = 1
            else:
                self._go(CONTRA)
        else:
            _toggle(self.ticked, row)

    def _contra_key(self, key):
        rows = ui.contraindication_rows(self.present)
        if key != SELECT:
            self._move(key, len(rows))
            return
        name, kind = rows[self.cursor]
        if kind == "item":
            _toggle(self.present, name)
            if name not in self.present and name in self.overrides:
                self.overrides.remove(name)
        elif kind == "override":
            _toggle(self.overrides, name)
        else:
            self._go(PLAN)

    def _plan_key(self, t_ms, key):
        plan = self.plan
        row = self.cursor
        editing = self.editing
        if not editing:
            if key != SELECT:
                self._move(key, 3)
            elif row == 2:
                self._start(t_ms)
            else:
                self.editing = 1
            return
        if key == BACK:
            self.editing = 0
        elif key == SELECT:
            # The site, then its side; a reference of "none" has no side to choose.
            self.editing = 0 if editing == 2 or (row == 1 and plan[2] == len(SITES)) else 2
        else:
            at = 2 * row + editing - 1  # plan index: site or side of this row
            count = (len(SITES), len(ui.PLAN_SIDES), len(SITES) + 1, 2)[at]
            plan[at] = (plan[at] + (1 if key == DOWN else -1)) % count

    def plan_sites(self):
        """The site plan as core.visit.start takes it."""
        site, side, remote, remote_side = self.plan
        name = SITES[site]
        sides = ui.PLAN_SIDES[side]
        sites = []
        sites.append((name, sides[0], "local"))
        if len(sides) > 1:
            sites.append((name, sides[2], None))
        if remote < len(SITES):
            sites.append((SITES[remote], "RL"[remote_side], "remote"))
        return sites

    def _start(self, t_ms):
        patient = self.patient
        patient["conditions"] = tuple([n for n in CONDITIONS if n in self.ticked])
        patient["flags"] = tuple([n for n in FLAGS if n in self.ticked])
        present = tuple([n for n in CONTRAINDICATIONS if n in self.present])
        patient["contraindications"] = present
        patient["overrides"] = tuple([n for n in self.overrides if n in present])
        visit = self.visit
        try:
            started = visit.start(t_ms, patient, self.plan_sites())
        except StoreError as err:
            self._storage_error(err)
            return
        if started:
            self._go(VISIT)
            self._seen = -1
            return
        message = visit.message
        if message == V.MSG_FULL:
            self._notice("storage_full", None, None)
        elif message == V.MSG_NO_CAL:
            self._notice("calibration", None, None)
        else:
            self._notice(None, "Cannot start", message or "")

    # --- settings --------------------------------------------------------------------------

    def settings_values(self):
        """What the settings screen shows (core.ui.settings' values)."""
        settings = self.settings
        values = {"clock_set": self.visit.clock.valid, "cal_mass_g": self.cal_mass_g}
        for name, _low, _high in FIELDS:
            values[name] = getattr(settings, name)
        return values

    def _settings_key(self, t_ms, key):
        row = ui.SETTINGS_ROWS[self.cursor]
        settings = self.settings
        if not self.editing:
            if key != SELECT:
                self._move(key, len(ui.SETTINGS_ROWS))
            elif row == "clock":
                if self.visit.clock.valid:
                    self._notice(None, "Clock", _CLOCK_OK)
                else:
                    self._notice("clock", None, None)
            else:
                self.editing = 1
                if row != "calibrate":
                    self._old = getattr(settings, row)
            return
        if row == "calibrate":
            if key == SELECT:
                self.editing = 0
                if self.visit.calibrate(t_ms, self.cal_mass_g):
                    self._go(CAL)
            elif key == BACK:
                self.editing = 0
            else:
                mass = self.cal_mass_g + (_MASS_STEP_G if key == UP else -_MASS_STEP_G)
                self.cal_mass_g = max(_MASS_STEP_G, min(_MASS_MAX_G, mass))
            return
        if key == SELECT:
            self.editing = 0
            if getattr(settings, row) != self._old:
                self.visit.configure()
                self.settings_dirty = True
        elif key == BACK:
            self.editing = 0
            settings.set(row, self._old)  # nothing changes
        else:
            step = _STEPS[row] * (1 if key == UP else -1)
            value = getattr(settings, row) + step
            if row == "unit":
                value %= len(UNITS)
            try:
                settings.set(row, value)
            except ValueError:
                pass  # at the edge of its range: it stays

    def _cal_key(self, t_ms, key):
        visit = self.visit
        if visit.state == V.CALIBRATE:
            if key == BACK:
                visit.wizard.cancel()
                visit.tick(t_ms)  # the visit sees the cancel and goes idle
                self._go(*_AT_CALIBRATE)
            return
        if key == SELECT or key == BACK:
            self._go(*_AT_CALIBRATE)

    # --- the laptop ------------------------------------------------------------------------

    def _pair(self, t_ms):
        if self.link is None:
            self._notice(None, "Pairing", _NO_BLE)
            return
        self.link.open_pairing(t_ms)
        self._go(PAIR)

    # --- the visit -------------------------------------------------------------------------

    def _visit_key(self, t_ms, key):
        visit = self.visit
        state = visit.state
        if key == BACK:
            if state == V.DONE:
                self._finish(t_ms)
            else:
                self._away(END)
            return
        if state == V.RESPONSE:
            if key == SELECT:
                visit.response(t_ms, ui.RESPONSE_CHOICES[self.cursor])
            else:
                self._move(key, len(ui.RESPONSE_CHOICES))
        elif state == V.SITE_DONE or state == V.RESULT or state == V.DONE:
            if key != SELECT:
                self._paged(key)
            elif state == V.SITE_DONE:
                visit.next_site(t_ms)
            elif state == V.RESULT:
                self.dose = V.check_given(visit.recommendation, None)
                self._go(DOSE)
            else:
                self._finish(t_ms)
        elif state == V.STORAGE:
            if key == SELECT:
                self.retry_storage = True
            else:
                self._paged(key)
        elif key == SELECT and state != V.RAMP:  # measuring: options between trials
            self._away(OPTIONS)
        elif key != SELECT:
            self._paged(key)  # a note's pages

    def _option_key(self, t_ms, key):
        if key != SELECT:
            self._move(key, len(OPTION_ITEMS))
            return
        visit = self.visit
        choice = self.cursor
        self._go(VISIT)
        if choice == 1 and not visit.repeat_trial(t_ms):
            self._notice(None, "Repeat", "No finished trial at this site to repeat.")
        elif choice == 2:
            visit.skip_site(t_ms)
        elif choice == 3:
            self._away(END)

    def _dose_key(self, t_ms, key):
        visit = self.visit
        recommended = visit.recommendation
        rows = ui.dose_rows(recommended)
        row = rows[self.cursor]
        dose = self.dose
        if self.editing:
            if key == SELECT or key == BACK:
                self.editing = 0
            else:
                _lower(dose, recommended, row, 1 if key == UP else -1)
            return
        if key == BACK:
            self._go(VISIT)
        elif key != SELECT:
            self._move(key, len(rows))
        elif row == "confirm" or row == "none":
            given = {} if row == "none" else dose
            if visit.give_dose(t_ms, given):
                self._go(VISIT)
            else:
                self._notice(None, "Dose", visit.message or "")  # back to the dose rows
        elif row.startswith("adjunct:"):
            _toggle(dose["adjuncts"], row[8:])
        else:
            self.editing = 1

    def _finish(self, t_ms):
        self.visit.finish(t_ms)
        self.patient = {}
        self._go(HOME)

    # --- time ------------------------------------------------------------------------------

    def update(self, t_ms):
        """Follows the visit and the link: call it before drawing, at the redraw rate."""
        visit = self.visit
        state = visit.state
        screen = self.screen
        if state != self._seen:
            self._seen = state
            if state == V.DONE and visit.patient_update:
                self._remember(visit.patient_update)
            if screen == VISIT:
                self.page = 0
                self.cursor = 0
            elif screen == CAL and state == V.IDLE:
                self.page = 0
                if visit.wizard.state == calibration.DONE:
                    self.settings_dirty = True  # the new calibration is in the settings
        if state == V.IDLE:
            if screen == VISIT or screen == DOSE or screen == OPTIONS or screen == END:
                self._go(HOME)
        elif screen <= SETTINGS and state != V.CALIBRATE:
            self._go(VISIT)  # a visit is open: its screens come first
        elif screen == OPTIONS and state == V.RAMP:
            self._go(VISIT)  # a trial started: the live screen
        link = self.link
        if link is not None:
            if link.syncing and screen == HOME and not self._synced:
                self._synced = True
                self._go(SYNC)
            elif not link.syncing and self._synced:
                self._synced = False
                if self.screen == SYNC:
                    self._go(HOME)
                else:
                    self._status()

    def _remember(self, update):
        # The dose given becomes the patient's history for the next visit (the table is
        # what the laptop pushed; the app saves it).
        table = self.patients
        for i in range(len(table)):
            if table[i]["code"] == update["code"]:
                table[i] = update
                break
        else:
            table.append(update)
        self.patients_dirty = True

    def stamp(self):
        """Changes whenever what draw() shows would change: redraw only then."""
        visit = self.visit
        live = 0
        if self.name() == "measurement":
            live = (visit.kpa_x10 // 5, visit.cue, visit.trial_number, visit.saved)
        elif self.screen == CAL:
            live = visit.wizard.state
        link = self.link
        if link is not None:
            live = (live, link.pairing_open, link.passkey, link.pairing_left_s, link.syncing)
            live = (live, link.sent, link.total)
        return (self.screen, self.rev, self.page, visit.state, visit.message, self.home_status,
                live)  # fmt: skip

    # --- drawing ---------------------------------------------------------------------------

    def draw(self, canvas):
        """Draws the screen on canvas (a core.draw.Canvas) and returns it."""
        c = self._draw(canvas)
        self.pages = c.pages
        return c

    def _draw(self, c):
        screen = self.screen
        visit = self.visit
        if screen == HOME:
            link = self.link
            state = None
            if link is not None:
                state = "syncing" if link.syncing else "pairing" if link.pairing_open else None
            unsynced, pct = self.home_status
            site = SITES[self.plan[0]] if self.patient else None
            return ui.home(c, self.patient.get("code"), site, unsynced, pct, None,
                           visit.clock.valid, state)  # fmt: skip
        if screen == MENU:
            return ui.menu(c, "Menu", MENU_ITEMS, self.cursor)
        if screen == PATIENTS:
            return ui.patient_select(c, [p["code"] for p in self.patients], self.cursor)
        if screen == CODE:
            return ui.code_entry(c, self.code, _CHOICES[self.cursor])
        if screen == FACTORS:
            patient = self.patient
            return ui.factors(c, patient.get("age"), patient.get("sex"), self.ticked,
                              self.cursor, self.editing != 0)  # fmt: skip
        if screen == CONTRA:
            return ui.contraindications(c, self.present, self.overrides, self.cursor)
        if screen == PLAN:
            site, side, remote, remote_side = self.plan
            remote_name = SITES[remote] if remote < len(SITES) else None
            return ui.site_plan(c, SITES[site], ui.PLAN_SIDES[side], remote_name,
                                "RL"[remote_side], self.cursor, self.editing)  # fmt: skip
        if screen == SETTINGS:
            return ui.settings(c, self.settings_values(), self.cursor, self.editing != 0)
        if screen == NOTICE:
            kind, title, text, keys = self.note
            if kind is None:
                return ui.notice(c, title, text, self.page, keys)
            return ui.error(c, kind, text, self.page, keys)
        link = self.link
        if link is not None and screen == PAIR:
            if link.passkey is None and not link.pairing_open:
                return ui.notice(c, "Pairing", "The pairing window is closed.", 0, "ok")
            return ui.pairing(c, link.passkey, link.pairing_left_s)
        if link is not None and screen == SYNC:
            return ui.sync(c, link.sent, link.total, "ok:hide")
        if screen == END:
            text = "Finished trials stay saved. No dose is recorded today."
            return ui.notice(c, "End visit?", text, 0, "ok:end")
        if screen == OPTIONS:
            return ui.menu(c, "Options", OPTION_ITEMS, self.cursor)
        if screen == DOSE:
            rec = visit.recommendation
            return ui.dose_given(c, self.dose, rec, self.cursor, self.editing != 0)
        if screen == CAL:
            return self._draw_cal(c)
        return self._draw_visit(c)

    def _draw_cal(self, c):
        wizard = self.visit.wizard
        step = ui.CALIBRATION_STEPS[max(0, wizard.state - 1)]
        per_kg = wizard.result.get("counts_per_kg")
        keys = "ok" if self.visit.state != V.CALIBRATE else ""
        return ui.calibration(c, step, wizard.mass_g, wizard.message, per_kg, self.page, keys)

    def _draw_visit(self, c):
        visit = self.visit
        state = visit.state
        page = self.page
        unit = UNITS[self.settings.unit]
        if state == V.RESPONSE:
            last = self.patient.get("last_dose")
            if last is not None:
                last = V.dose_of_rungs(last)
            return ui.response(c, self.cursor, last)
        if state == V.SITE_DONE:
            last = len(visit.site_results) >= len(visit.sites)
            keys = "ok:results" if last else "ok:next"
            return ui.site_result(c, visit.site_results[-1], visit.comparison, unit, page, keys)
        if state == V.RESULT:
            return ui.recommendation(c, visit.recommendation, page)
        if state == V.DONE:
            lines = visit.recommendation.get("aftercare") or (_NO_NEEDLES,)
            return ui.aftercare(c, lines, page)
        if state == V.STORAGE:
            message = visit.message
            kind = "storage_full" if message == V.MSG_FULL else "storage"
            return ui.error(c, kind, None if kind == "storage_full" else message, page)
        site = visit.site() or (None, None, None)
        settings = self.settings
        return ui.measurement(
            c,
            visit.kpa_x10,
            V.STATE_NAMES[state],
            visit.cue,
            visit.trial_number + 1,
            settings.trials_per_site,
            site[0],
            site[1],
            visit.saved,
            settings.ceiling_kpa_x10,
            unit,
            visit.message,
            page,
            "" if state == V.RAMP else "ok:options",
        )


def _toggle(names, name):
    if name in names:
        names.remove(name)
    else:
        names.append(name)


def _lower(dose, recommended, row, step):
    # One rung of one dimension up or down, within what core.visit's check_given accepts:
    # never above the recommended rung, nor below the ladder's bottom (NEEDLES_MIN needles).
    rungs = V.rungs_of_dose(dose)
    top = V.rungs_of_dose(recommended)
    if rungs is None or top is None:
        return  # no needling: no rungs (dose_rows offers none to change then)
    i = DIMENSIONS.index(row)  # core.visit's rung order
    rungs = list(rungs)
    rungs[i] = max(NEEDLES_MIN if i == 1 else 0, min(top[i], rungs[i] + step))
    dose[row] = V.dose_of_rungs(rungs)[row]

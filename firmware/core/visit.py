# The bedside visit (DESIGN 1, 3, 4, 5): one synchronous state machine that the board's app,
# the simulator and the tests all drive. Time comes in as ms since boot; nothing here reads a
# clock, a pin or a radio. It owns the scale, the trial engine, zeroing and the calibration
# wizard, sequences the sites and trials, scores the sites (core.qst), runs the dosage rules
# (core.dosage) and writes every result as a record (core.record) through the store
# (core.store), flushing at every trial end so a finished trial survives a power cut.
#
# Inputs: sample(t_ms, counts, stop) per good conversion, fault(t_ms, code, rail) per failed
# one, tick(t_ms) now and then, and intents from the screens (start, response, next_site,
# repeat_trial, skip_site, abort, give_dose, finish, calibrate). Outputs: `state`, the
# attributes the screens draw (kpa_x10, cue, trial_number, site, trials, site_results,
# comparison, recommendation, message, saved) and the records on flash.
from micropython import const

from core import calibration, case, dosage, ppt, qst, record
from core.scale import Scale
from core.store import FULL_MESSAGE, StoreError
from core.vocab import (
    ADJUNCTS,
    CONTRAINDICATIONS,
    DEPTHS,
    GAUGES_MM_X100,
    MANIPULATIONS,
    NEEDLES_MAX,
    NEEDLES_MIN,
    ROLES,
    SIDES,
    SITE_REGIONS,
    SITES,
)

# States. The screens map each to a page; intents that do not fit the state are ignored.
IDLE = const(0)  # no visit: the home screen
CALIBRATE = const(1)  # the span wizard runs: self.wizard.state has its step
RESPONSE = const(2)  # a returning patient: how did the last session go?
ZERO = const(3)  # before a site: probe still, in the air
ARMED = const(4)  # trial n armed: press when ready (the pressure must start from zero)
RAMP = const(5)  # the clinician is pressing; live kPa and the rate cue
SENSOR = const(6)  # sensor fault: waiting for good readings (then the trial is re-armed)
SITE_DONE = const(7)  # the site's value: next site, or the results
RESULT = const(8)  # the recommendation: confirm it or give a lower dose
DONE = const(9)  # the dose given is stored; after-care; finish() goes home
STORAGE = const(10)  # a record could not be written: records wait in RAM (recover storage)
STATE_NAMES = (
    "idle",
    "calibrate",
    "response",
    "zero",
    "armed",
    "ramp",
    "sensor",
    "site_done",
    "result",
    "done",
    "storage",
)

_GOOD_AFTER_FAULT = const(8)  # good conversions (100 ms) before a faulted sensor counts again
_CURVE_PART = const(0)

# Messages the screens show (one line each; the screen wraps them).
MSG_CENSORED = "Ceiling reached: remind the patient to press stop at the first pain"
MSG_SENSOR = "Sensor fault: check the probe cable; the trial will be repeated"
MSG_NO_CAL = "Calibration needed: run the calibration with a known mass"
MSG_FULL = FULL_MESSAGE  # what StoreFull says, and what the screens test for
MSG_ENDED = "Visit ended; every finished trial is saved"


class VisitError(ValueError):
    pass


class Clock:
    """Wall-clock time from ms since boot once the laptop has set it (no RTC)."""

    def __init__(self):
        self._anchor_ms = 0
        self._anchor_s = 0
        self.valid = False

    def set(self, t_ms, wall_s):
        self._anchor_ms = t_ms
        self._anchor_s = wall_s
        self.valid = True

    def wall_s(self, t_ms):
        if not self.valid:
            return None
        return self._anchor_s + (t_ms - self._anchor_ms) // 1000


class Visit:
    def __init__(self, store, settings, reference, cell_counts_per_kg=None, clock=None):
        """store: a core.store.Store, open; settings: core.settings.Settings (its calibration
        is loaded into the scale); reference: the QST table (core.qst.load_reference)."""
        self.store = store
        self.settings = settings
        self.reference = reference
        self.clock = clock or Clock()
        if cell_counts_per_kg is None:
            self.scale = Scale(settings.area_cm2_x100)
        else:
            self.scale = Scale(settings.area_cm2_x100, cell_counts_per_kg=cell_counts_per_kg)
        if settings.calibrated():
            self.scale.set_span(settings.span_counts, settings.span_mass_g, settings.cal_id)
        self.trial = ppt.Trial(**settings.trial_config())
        self.zero = calibration.Zero()
        self.wizard = calibration.SpanWizard(self.scale)
        self.state = IDLE
        self.kpa_x10 = 0  # live, for every screen that shows pressure
        self.message = None
        self.saved = False  # the last finished trial is on flash
        self._good = 0
        self._resume = IDLE
        self._reset_visit()

    def _reset_visit(self):
        self.patient = {}  # empty: no visit open
        self.sites = ()
        self.site_index = 0
        self.trials = []  # results of this site's trials, in order
        self.trial_number = 0  # trials taken at this site (including failed ones)
        self.site_results = []
        self.comparison = None
        self.case = None
        self.recommendation = {}  # empty until the sites are measured
        self.dose = {}
        self.session_seq = 0
        self.recommendation_seq = 0
        self.patient_update = {}  # the patient list's entry after the dose is stored
        # A trial's flush failed: once storage recovers, decide what follows that trial
        # (the site's result, a sensor check or the next trial), not simply re-arm.
        self._after_trial_due = False

    def configure(self):
        """The clinic changed the settings (no visit open): the trial engine takes the new
        target rate, tolerance, onset and ceiling."""
        if self.state == IDLE:
            self.trial = ppt.Trial(**self.settings.trial_config())

    @property
    def cue(self):
        return self.trial.cue if self.state == RAMP else ppt.CUE_NONE

    def site(self):
        """(site, side, role) being measured, or None."""
        if self.site_index < len(self.sites):
            return self.sites[self.site_index]
        return None

    # --- samples ---------------------------------------------------------------------------

    def sample(self, t_ms, counts, stop):
        """One good conversion (raw counts); stop: the patient pressed the stop button since
        the last one. Allocates nothing unless a trial ends."""
        state = self.state
        if state == CALIBRATE:
            self.wizard.sample(t_ms, counts)
            self._after_wizard(t_ms)
            return
        if state == SENSOR:
            self._good += 1
            if self._good < _GOOD_AFTER_FAULT:
                return
            self.message = None
            self._arm(t_ms)
            state = ARMED
        if state == ZERO:
            if self.zero.feed(counts):
                self.scale.set_tare(self.zero.mean())
                self.scale.reset()
                self.message = None
                self._arm(t_ms)
            else:
                self._zero_waited(t_ms)
            return
        if not self.scale.calibrated():
            return
        kpa_x10 = self.scale.update(counts)
        self.kpa_x10 = kpa_x10
        if state == ARMED or state == RAMP:
            if self.trial.feed(t_ms, kpa_x10, stop) == ppt.DONE:
                self._trial_done(t_ms)
            elif self.trial.state == ppt.RAMP:
                self.state = RAMP

    def fault(self, t_ms, code, rail=0):
        """A failed conversion: code is the driver's fault code, rail its rail (+1 high, -1
        low, 0 none). No value from it is ever used."""
        self.scale.reset()  # nothing from before the fault is averaged with what follows
        state = self.state
        if state == CALIBRATE:
            self.wizard.fault(t_ms, code)
            self._after_wizard(t_ms)
            return
        if state == ZERO:
            self.zero.feed_fault(code)
            self._zero_waited(t_ms)
            return
        if state == ARMED or state == RAMP:
            # A rail in the direction pressing moves the reading is an overload.
            overload = rail > 0 if self.scale.span_counts >= 0 else rail < 0
            self.trial.feed_fault(t_ms, code, overload)
            if self.trial.state == ppt.DONE:
                self._trial_done(t_ms)
            if self.state == ARMED or self.state == RAMP:
                self._wait_for_sensor()
            self._good = 0
        elif state == SENSOR:
            self._good = 0

    def tick(self, t_ms):
        """Time passes without samples (the driver reports faults as samples; this covers
        waits that end by time alone)."""
        if self.state == ZERO:
            self._zero_waited(t_ms)
        elif self.state == CALIBRATE:
            self._after_wizard(t_ms)

    def _zero_waited(self, t_ms):
        # No still window in time: say why on the screen and keep trying.
        if self.zero.expired(t_ms):
            self.message = calibration.zero_error(
                "zero", self.zero, "hold the probe still, in the air"
            )
            self.zero.start(t_ms, self.scale.still_counts())

    # --- calibration -----------------------------------------------------------------------

    def calibrate(self, t_ms, mass_g):
        """Starts the span wizard (from the settings screen, no visit open)."""
        if self.state != IDLE:
            return False
        self.state = CALIBRATE
        self.message = None
        self.wizard.start(t_ms, mass_g, (self.settings.cal_id % 65535) + 1)
        return True

    def _after_wizard(self, t_ms):
        wizard = self.wizard
        if wizard.state == calibration.DONE:
            result = wizard.result
            settings = self.settings
            settings.set_calibration(
                result["cal_id"],
                result["span_counts"],
                result["span_mass_g"],
                self.clock.wall_s(t_ms),
            )
            span = result["span_counts"]
            self._append(
                t_ms,
                record.TYPE_EVENT,
                code=record.EV_CALIBRATION,
                detail=1 if span < 0 else 0,
                a=result["cal_id"],
                b=abs(result["counts_per_kg"]),
            )
            self._flush(IDLE)
            self.message = "Calibrated: %d counts per kg" % abs(result["counts_per_kg"])
        elif wizard.state == calibration.FAILED:
            self.state = IDLE
            self.message = wizard.message

    # --- the visit -------------------------------------------------------------------------

    def start(self, t_ms, patient, sites):
        """Opens a visit. patient: a dict with code, age, sex, conditions, flags,
        contraindications, overrides, sessions, last_dose, last_adjuncts (the patient list's
        entry plus today's ticks); sites: ((site, side, role), ...) in the order measured,
        one of them "local" (the site to be needled). Returns False with message set when
        the visit cannot start (no calibration, storage full, bad input). A StoreError (the
        flash failed while making room or storing the session) is raised with no visit
        open: the caller recovers the storage and may start again."""
        if self.state != IDLE:
            return False
        self.message = None
        if not self.scale.calibrated():
            self.message = MSG_NO_CAL
            return False
        try:
            plan = _check_sites(sites)
            self._case_of(patient, None, plan)  # refuse contradictions before storing
        except (VisitError, case.CaseError) as err:
            self.message = str(err)
            return False
        try:
            return self._open_visit(t_ms, patient, plan)
        except StoreError:
            self._reset_visit()
            raise

    def _open_visit(self, t_ms, patient, plan):
        if not self.store.room_for_session():
            self.message = MSG_FULL
            return False
        self._reset_visit()
        self.patient = patient
        self.sites = plan
        region = _region(plan)
        self.session_seq = self._append(
            t_ms,
            record.TYPE_SESSION,
            code=patient["code"],
            age=patient["age"],
            sex=patient.get("sex", "U"),
            conditions=list(patient.get("conditions", ())),
            flags=list(patient.get("flags", ())),
            contraindications=list(patient.get("contraindications", ())),
            overrides=list(patient.get("overrides", ())),
            region=region,
            qst_z_x100=None,
            qst_category=None,
            sessions=patient.get("sessions", 0),
            last_response=None,
            last_dose=patient.get("last_dose"),
        )
        for name in patient.get("overrides", ()):
            self._append(
                t_ms,
                record.TYPE_EVENT,
                code=record.EV_OVERRIDE,
                detail=CONTRAINDICATIONS.index(name),
                a=self.session_seq,
                b=0,
            )
        if patient.get("sessions", 0) > 0:
            return self._flush(RESPONSE)
        return self._flush_then_zero(t_ms)

    def response(self, t_ms, response):
        """The patient's response to the last session: "none", "tolerated", "flare", or None
        when not known (the dose is then held, not raised)."""
        if self.state != RESPONSE:
            return False
        self.patient["last_response"] = response
        if response is not None:
            self._append(
                t_ms,
                record.TYPE_RESPONSE,
                response=response,
                session_seq=self.patient.get("last_session_seq", 0),
            )
        return self._flush_then_zero(t_ms)

    def _flush_then_zero(self, t_ms):
        if not self._flush(ZERO):
            return True
        self._zero(t_ms)
        return True

    def _zero(self, t_ms):
        self.state = ZERO
        self.trials = []
        self.trial_number = 0
        self.zero.start(t_ms, self.scale.still_counts())

    def _arm(self, t_ms):
        self.state = ARMED
        self.trial.arm(t_ms)

    def repeat_trial(self, t_ms):
        """The clinician discards the last trial of this site (the patient misunderstood):
        it stays on flash, an event marks it excluded, and the trial is taken again."""
        if self.state != ARMED or not self.trials:
            return False
        last = self.trials.pop()
        self.trial_number -= 1
        self._append(
            t_ms, record.TYPE_EVENT, code=record.EV_EXCLUDED, detail=0, a=last["seq"], b=0
        )
        if self._flush(ARMED):
            self._arm(t_ms)
        return True

    def skip_site(self, t_ms):
        """Ends this site now with the trials it has (a trial in progress is aborted)."""
        if self.state == RAMP:
            self.trial.abort(t_ms)
            self._trial_done(t_ms, finishing=True)
        if self.state not in (ZERO, ARMED, SENSOR):
            return False
        self._site_done(t_ms)
        return True

    def next_site(self, t_ms):
        """From a site's result: the next site, or after the last one the recommendation."""
        if self.state != SITE_DONE:
            return False
        self.site_index += 1
        if self.site_index < len(self.sites):
            self._zero(t_ms)
        else:
            self._recommend(t_ms)
        return True

    def abort(self, t_ms):
        """Ends the visit now: what is stored stays stored; no recommendation is made."""
        if self.state == IDLE or self.state == CALIBRATE:
            return False
        if self.state == RAMP:
            self.trial.abort(t_ms)
            self._trial_done(t_ms, finishing=True)
        self._append(
            t_ms, record.TYPE_EVENT, code=record.EV_ABORT, detail=0, a=self.session_seq, b=0
        )
        self._reset_visit()
        if self._flush(IDLE):  # else it waits in STORAGE, no visit open, then goes idle
            self.message = MSG_ENDED
        return True

    def _trial_done(self, t_ms, finishing=False):
        site, side, _role = self.sites[self.site_index]
        result = self.trial.result()
        self.trial_number += 1
        result["site"] = site
        result["side"] = side
        result["trial"] = self.trial_number
        seq = self._append(t_ms, record.TYPE_TRIAL, **result)
        result["seq"] = seq
        trace = result["trace_kpa_x10"]
        if len(trace) > 1:
            self._append(
                t_ms,
                record.TYPE_CURVE,
                trial_seq=seq,
                part=_CURVE_PART,
                interval_ms=result["trace_dt_ms"] or 1,
                samples_kpa_x10=trace,
            )
        del result["trace_kpa_x10"]  # on flash now; the screens need the numbers only
        self.trials.append(result)
        if ppt.is_censored(result):
            self.message = MSG_CENSORED
        elif result["valid"]:
            self.message = None
        self.saved = False
        if not self._flush(ARMED):
            self._after_trial_due = not finishing
            return
        self.saved = True
        if not finishing:
            self._after_trial(t_ms)

    def _after_trial(self, t_ms):
        # The trial is stored: the site's result, a sensor check, or the next trial.
        result = self.trials[-1]
        if self._site_complete():
            self._site_done(t_ms)
        elif result["flags"] & (ppt.FLAG_FAULT | ppt.FLAG_SATURATED):
            self._wait_for_sensor()
        else:
            self._arm(t_ms)

    def _wait_for_sensor(self):
        # Until enough good readings come in a row (sample()), then the trial is re-armed.
        self.state = SENSOR
        self.message = MSG_SENSOR
        self._good = 0

    def _site_complete(self):
        settings = self.settings
        counted = 0
        for result in self.trials:
            if result["valid"] or ppt.is_censored(result):
                counted += 1
        return (
            counted >= settings.trials_per_site
            or self.trial_number >= settings.trials_per_site + settings.repeats_max
        )

    def _site_done(self, t_ms):
        site, side, role = self.sites[self.site_index]
        summary = ppt.site_summary(self.trials, self.settings.min_valid)
        if not self.trials:
            why = self.message
            summary["reason"] = "skipped before any trial" + ("" if why is None else ": " + why)
        score = qst.score(
            self.reference,
            site,
            self.patient.get("sex", "U"),
            self.patient["age"],
            summary["ppt_kpa_x10"],
            self.settings.qst_high_z_x100,
            self.settings.qst_low_z_x100,
            ppt_min_kpa_x10=summary["ppt_min_kpa_x10"],
        )
        summary["site"] = site
        summary["side"] = side
        summary["role"] = role
        summary["qst"] = score
        summary["z_x100"] = score["z_x100"]
        summary["z_max_x100"] = score["z_max_x100"]
        summary["category"] = score["category"]
        self._append(t_ms, record.TYPE_SITE, **summary)
        self.site_results.append(summary)
        self._flush(SITE_DONE)

    def _recommend(self, t_ms):
        kept = []
        for s in self.site_results:
            kept.append((s["site"], s["side"], s["role"], s["ppt_kpa_x10"], s["qst"]))
        self.comparison = qst.compare(kept)
        try:
            self.case = self._case_of(self.patient, self.comparison["dosage_qst"], self.sites)
        except case.CaseError as err:  # the start refused contradictions: a firmware bug
            self.message = str(err)
            self.state = IDLE
            return
        result = dosage.recommend(self.case, self.settings.dosage_config())
        self.recommendation = result
        self.recommendation_seq = self._append(t_ms, record.TYPE_RECOMMENDATION, **result)
        self._flush(RESULT)

    def _case_of(self, patient, dosage_qst, plan):
        obj = {
            "age": patient["age"],
            "sex": patient.get("sex", "U"),
            "conditions": list(patient.get("conditions", ())),
            "contraindications": list(patient.get("contraindications", ())),
            "override": list(patient.get("overrides", ())),
            "region": _region(plan),
            "qst": dosage_qst,
        }
        for flag in patient.get("flags", ()):
            obj[flag] = True
        sessions = patient.get("sessions", 0)
        if sessions:
            history = {"sessions": sessions, "last_response": patient.get("last_response")}
            if patient.get("last_dose") is not None:
                history["last"] = dose_of_rungs(patient["last_dose"], patient.get("last_adjuncts"))
            obj["history"] = history
        return case.parse_case(obj)

    def give_dose(self, t_ms, dose=None):
        """The dose actually given: None = as recommended; or a dict with gauge_mm, needles,
        depth, manipulation, adjuncts, each at most the recommended one (the clinician may
        lower a dose, never raise it); {} = no needling today."""
        if self.state != RESULT:
            return False
        recommended = self.recommendation
        try:
            given = check_given(recommended, dose)
        except ValueError as err:
            self.message = str(err)
            return False
        self.dose = given
        self._append(t_ms, record.TYPE_DOSE, recommendation_seq=self.recommendation_seq, **given)
        if not self._flush(DONE):
            return True
        self._visit_finished()
        return True

    def _visit_finished(self):
        patient = self.patient
        given = self.dose
        update = {}
        for key in ("code", "age", "sex", "conditions", "flags", "contraindications"):
            update[key] = patient.get(key)
        update["sessions"] = patient.get("sessions", 0) + 1
        update["last_dose"] = rungs_of_dose(given)
        update["last_adjuncts"] = tuple(given.get("adjuncts") or ())
        update["last_session_seq"] = self.session_seq
        self.patient_update = update

    def finish(self, t_ms):
        """From the after-care screen back home."""
        if self.state != DONE:
            return False
        self._reset_visit()
        self.state = IDLE
        self.message = None
        return True

    # --- storage ---------------------------------------------------------------------------

    def set_clock(self, t_ms, wall_s):
        """The laptop set the clock: anchored now, and a time-set event (a: the time before,
        0 when it was not set) added to the store's batch; the caller flushes."""
        before = self.clock.wall_s(t_ms) or 0
        self.clock.set(t_ms, wall_s)
        self._append(
            t_ms, record.TYPE_EVENT, code=record.EV_TIME_SET, detail=0, a=before, b=wall_s
        )

    def _append(self, t_ms, rtype, **values):
        """Builds a record by name and adds it to the store's batch; returns its seq."""
        return self.store.append(
            rtype, t_ms, self.clock.wall_s(t_ms), record.fields(rtype, values)
        )

    def _flush(self, next_state):
        """Makes the batch durable, then moves on; on a storage error the records stay in
        the store's RAM batch and the visit waits (STORAGE) until storage_recovered()."""
        try:
            self.store.flush()
        except StoreError as err:  # say it on the screen; the records wait in RAM
            self.message = str(err)
            self._resume = next_state
            self.state = STORAGE
            return False
        self.state = next_state
        return True

    def storage_recovered(self, t_ms):
        """The app has remounted the filesystem and reopened the store: flush again."""
        if self.state != STORAGE:
            return False
        resume = self._resume
        if self._flush(resume):
            self.message = None
            self.saved = True
            if resume == ZERO:
                self._zero(t_ms)
            elif resume == ARMED and self._after_trial_due:
                self._after_trial_due = False
                self._after_trial(t_ms)
            elif resume == ARMED:
                self._arm(t_ms)
            elif resume == DONE:
                self._visit_finished()
        return True


def _check_sites(sites):
    if not sites:
        raise VisitError("sites: at least one site to measure")
    local = 0
    seen = []
    for site, side, role in sites:
        if site not in SITES:
            raise VisitError("site: %s is not one of %s" % (site, ", ".join(SITES)))
        if side is not None and side not in SIDES:
            raise VisitError("side: L, R or none (got %s)" % side)
        if role is not None and role not in ROLES:
            raise VisitError("role: local, remote or none (got %s)" % role)
        if (site, side) in seen:
            raise VisitError("sites: %s %s is measured twice" % (site, side or ""))
        seen.append((site, side))
        if role == "local":
            local += 1
    if local > 1:
        raise VisitError("sites: one local site (the one to be needled)")
    return tuple([tuple(s) for s in sites])


def _region(plan):
    for site, _side, role in plan:
        if role == "local":
            return SITE_REGIONS[SITES.index(site)]
    return None


# --- doses as the records and the dosage rules name them --------------------------------
# A dose is a dict: gauge_mm (0.16 ...), needles, depth, manipulation, adjuncts (a list);
# its rungs are indexes on the ladders of core.vocab (needles: the count itself).


def dose_of_rungs(rungs, adjuncts=None):
    gauge, needles, depth, manipulation = rungs
    return {
        "gauge_mm": GAUGES_MM_X100[gauge] / 100,
        "needles": needles,
        "depth": DEPTHS[depth],
        "manipulation": MANIPULATIONS[manipulation],
        "adjuncts": list(adjuncts or ()),
    }


def rungs_of_dose(dose):
    """(gauge, needles, depth, manipulation) rungs, or None for "no needling"."""
    if not dose or dose.get("needles") is None:
        return None
    return (
        _gauge_rung(dose["gauge_mm"]),
        dose["needles"],
        DEPTHS.index(dose["depth"]),
        MANIPULATIONS.index(dose["manipulation"]),
    )


def _gauge_rung(gauge_mm):
    for rung in range(len(GAUGES_MM_X100)):
        if abs(gauge_mm * 100 - GAUGES_MM_X100[rung]) < 0.1:
            return rung
    raise ValueError("gauge_mm: one of the stock gauges")


_NO_DOSE = {"gauge_mm": None, "needles": None, "depth": None, "manipulation": None, "adjuncts": []}


def check_given(recommended, dose):
    """The dose actually given, checked against the recommendation: None = as recommended,
    {} = no needling; otherwise every rung at most the recommended one and only adjuncts
    that were recommended (a clinician may give less, never more, on this device)."""
    if dose is not None and not dose:
        return dict(_NO_DOSE)
    top = rungs_of_dose(recommended)
    if top is None:
        if dose is None:
            return dict(_NO_DOSE)
        raise ValueError("No dose was recommended: record no needling")
    if dose is None:
        return dose_of_rungs(top, recommended["adjuncts"])
    rungs = rungs_of_dose(dose)
    if rungs is None:
        raise ValueError("dose: gauge, needles, depth and manipulation, or no needling")
    names = ("gauge", "needles", "depth", "manipulation")
    for i in range(4):
        low = NEEDLES_MIN if i == 1 else 0
        if not low <= rungs[i] <= top[i]:
            raise ValueError("%s: at most the recommended dose" % names[i])
    adjuncts = list(dose.get("adjuncts") or ())
    for name in adjuncts:
        if name not in recommended["adjuncts"] or name not in ADJUNCTS:
            raise ValueError("%s: only a recommended adjunct" % name)
    if rungs[1] > NEEDLES_MAX:
        raise ValueError("needles: at most %d" % NEEDLES_MAX)
    return dose_of_rungs(rungs, adjuncts)

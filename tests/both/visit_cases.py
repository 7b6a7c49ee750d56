# core.visit on both runtimes: whole visits on the rig, as a clinician performs them.
from rig import Clinician, VisitRig
from unit import records

from core import visit

PATIENT = {
    "code": "P-0042",
    "age": 42,
    "sex": "F",
    "conditions": ("fibromyalgia",),
    "flags": ("chronic",),
    "contraindications": (),
    "overrides": (),
    "sessions": 0,
    "last_dose": None,
}
SITES = (("upper_trapezius", "R", "local"), ("thenar", "R", "remote"))


def _records(rig):
    out = records(rig.store)
    for decoded in out:
        for key in ("boot", "wall_s", "uptime_ms"):
            del decoded[key]
        if decoded["type"] == "curve":
            decoded["samples_kpa_x10"] = len(decoded["samples_kpa_x10"])
    return out


def _site_view(s):
    return {
        "site": s["site"],
        "side": s["side"],
        "role": s["role"],
        "n_valid": s["n_valid"],
        "ppt_kpa_x10": s["ppt_kpa_x10"],
        "cv_pct_x10": s["cv_pct_x10"],
        "z_x100": s["z_x100"],
        "category": s["category"],
    }


def _measure_site(rig, hand, peaks, rate=50):
    hand.hold_still()
    shown = []
    for peak in peaks:
        result = hand.trial(rate * 10, peak * 10)
        shown.append(result.get("ppt_kpa_x10"))
    return shown


def whole_visit():
    rig = VisitRig(noise_counts=40, seed=11)
    hand = Clinician(rig)
    v = rig.visit
    states = [visit.STATE_NAMES[v.state]]
    started = v.start(rig.sample(), PATIENT, SITES)
    states.append(visit.STATE_NAMES[v.state])
    local = _measure_site(rig, hand, (150, 156, 148))
    states.append(visit.STATE_NAMES[v.state])
    v.next_site(rig.now_ms())
    remote = _measure_site(rig, hand, (131, 126, 135))
    states.append(visit.STATE_NAMES[v.state])
    v.next_site(rig.now_ms())
    states.append(visit.STATE_NAMES[v.state])
    rec = v.recommendation
    v.give_dose(rig.now_ms())
    states.append(visit.STATE_NAMES[v.state])
    update = v.patient_update
    out = {
        "started": started,
        "states": states,
        "shown": [local, remote],
        "sites": [_site_view(s) for s in v.site_results],
        "comparison": v.comparison,
        "recommendation": {
            k: rec[k]
            for k in (
                "status",
                "gauge_mm",
                "needles",
                "depth",
                "manipulation",
                "adjuncts",
                "rules",
            )
        },
        "dose": v.dose,
        "update": {"sessions": update["sessions"], "last_dose": list(update["last_dose"] or ())},
        "records": _records(rig),
    }
    v.finish(rig.now_ms())
    out["end"] = visit.STATE_NAMES[v.state]
    return out


def _start(rig, patient=PATIENT, sites=SITES):
    rig.visit.start(rig.sample(), patient, sites)
    return rig.visit


def _state(v):
    return visit.STATE_NAMES[v.state]


def sensor_fault_mid_trial():
    """The cable fails in the middle of the second ramp for 300 ms: that trial ends as a
    fault (stored, never a reading), the unit waits for good readings, then the trial is
    taken again; the site still gets three good trials."""
    rig = VisitRig(noise_counts=40, seed=3)
    hand = Clinician(rig)
    v = _start(rig)
    hand.hold_still()
    hand.trial(500, 2000)
    rig.states = [v.state]
    faulted = hand.trial(500, 2000, fault={"kind": "no_data_ready", "at_ms": 1500, "for_ms": 300})
    seen = [visit.STATE_NAMES[s] for s in rig.states]
    hand.trial(500, 2100)
    hand.trial(500, 1900)
    trials = [r for r in _records(rig) if r["type"] == "trial"]
    return {
        "faulted": {k: faulted[k] for k in ("end", "flags", "ppt_kpa_x10", "valid")},
        "seen": seen,
        "state": _state(v),
        "site": _site_view(v.site_results[0]),
        "stored": [(t["trial"], t["end"], t["ppt_kpa_x10"]) for t in trials],
        "saved": v.saved,
    }


def never_presses_stop():
    """The patient does not press the stop button: the ramp reaches the ceiling, the trial is
    censored and the screen says to re-instruct; it counts towards the site, as a bound."""
    rig = VisitRig(noise_counts=40, seed=5)
    hand = Clinician(rig)
    v = _start(rig)
    hand.hold_still()
    first = hand.trial(500, 10200, press=False)
    message = v.message
    hand.trial(500, 9000)
    hand.trial(500, 9200)
    site = v.site_results[0]
    return {
        "first": {k: first[k] for k in ("end", "flags", "ppt_kpa_x10", "valid")},
        "message": message,
        "after": v.message,
        "state": _state(v),
        "site": {
            k: site[k]
            for k in ("n_valid", "n_censored", "ppt_kpa_x10", "ppt_min_kpa_x10", "reason")
        },  # fmt: skip
        "qst": site["qst"]["category"],
    }


def abort_mid_site():
    """The clinician ends the visit during the second trial: the first trial stays stored,
    the one in progress is stored as aborted, an event says the visit ended, no dose."""
    rig = VisitRig(noise_counts=40, seed=9)
    hand = Clinician(rig)
    v = _start(rig)
    hand.hold_still()
    hand.trial(500, 1500)
    rig.chip.set_profile([(rig.now_ms(), 0), (rig.now_ms() + 2000, 2000000)])
    rig.run_until(lambda v: v.state == visit.RAMP, 5000)
    ramping = _state(v)
    aborted = v.abort(rig.now_ms())
    records = _records(rig)
    return {
        "ramping": ramping,
        "aborted": aborted,
        "state": _state(v),
        "message": v.message,
        "types": [r["type"] for r in records],
        "trials": [(t["end"], t["flags"]) for t in records if t["type"] == "trial"],
        "events": [(e["code"], e["a"]) for e in records if e["type"] == "event"],
        "session_seq": [r["seq"] for r in records if r["type"] == "session"][0],
    }


def storage_full():
    """A store with no room for a session: the visit is refused with the screen's words."""
    rig = VisitRig(noise_counts=0)
    rig.store.room_for_session = lambda: False  # the store's own answer is tested in test_store
    before = rig.store.stats()["records"]
    started = rig.visit.start(rig.sample(), PATIENT, SITES)
    return {
        "started": started,
        "state": _state(rig.visit),
        "message": rig.visit.message,
        "records": rig.store.stats()["records"] - before,
    }


def refused_starts():
    """What the visit refuses before it stores anything: no calibration, bad sites, a
    contradiction in the patient's data."""
    out = []
    rig = VisitRig(calibrated=False)
    out.append((rig.visit.start(rig.sample(), PATIENT, SITES), rig.visit.message))
    rig.store.close()  # one Store per directory: the next rig mounts its own flash there
    rig = VisitRig(store_root=rig.store_root)  # ... or, as here, reopens the same one
    before = rig.store.stats()["records"]
    for sites in ((), (("big_toe", "R", "local"),), SITES + (("thenar", "R", None),),
                  (("thenar", "R", "local"), ("masseter", "L", "local"))):  # fmt: skip
        out.append((rig.visit.start(rig.sample(), PATIENT, sites), rig.visit.message))
    bad = dict(PATIENT, contraindications=("lymphedema",), overrides=("needle_phobia",))
    out.append((rig.visit.start(rig.sample(), bad, SITES), rig.visit.message))
    added = rig.store.stats()["records"] - before
    return {"refused": out, "records": added, "state": _state(rig.visit)}


def calibrate_in_the_visit():
    """The span wizard from the idle unit: the settings take the new calibration and an
    event records it, so the trials after it can be traced to it."""
    rig = VisitRig(calibrated=False, noise_counts=40, seed=21)
    hand = Clinician(rig)
    v = rig.visit
    hand.hold_still(500)
    v.calibrate(rig.sample(), 2000)
    rig.run_until(lambda v: v.wizard.state == 2, 5000)  # WAIT_MASS: tared
    now = rig.now_ms()
    rig.chip.set_profile([(now, 0), (now + 300, 2000000)])
    rig.run_until(lambda v: v.state != visit.CALIBRATE, 10000)
    s = rig.settings
    events = [r for r in _records(rig) if r["type"] == "event" and r["code"] == 6]
    return {
        "state": _state(v),
        "message": v.message,
        "settings": [s.cal_id, s.span_counts, s.span_mass_g],
        "calibrated": v.scale.calibrated(),
        "event": [(e["detail"], e["a"], e["b"]) for e in events],
    }


def returning_patient():
    """A second visit: the response to the last session is asked first and recorded with the
    seq of the session it answers; the dose climbs one rung from the dose given last time."""
    rig = VisitRig(noise_counts=40, seed=13)
    hand = Clinician(rig)
    patient = dict(PATIENT, conditions=(), flags=("chronic",), sessions=1,
                   last_dose=(3, 6, 0, 0), last_adjuncts=(), last_session_seq=77)  # fmt: skip
    v = _start(rig, patient, (("lumbar_paraspinal", "R", "local"),))
    asked = _state(v)
    v.response(rig.now_ms(), "tolerated")
    after = _state(v)
    hand.hold_still()
    for peak in (2400, 2500, 2450):
        hand.trial(500, peak)
    v.next_site(rig.now_ms())
    rec = v.recommendation
    records = _records(rig)
    response = [r for r in records if r["type"] == "response"][0]
    return {
        "asked": asked,
        "after": after,
        "response": (response["response"], response["session_seq"]),
        "dose": [rec["gauge_mm"], rec["needles"], rec["depth"], rec["manipulation"]],
        "rules": rec["rules"],
    }


def give_less_than_recommended():
    """The clinician lowers the dose: the record and the patient's next history carry the
    dose actually given; more than recommended is refused with a reason."""
    rig = VisitRig(noise_counts=40, seed=17)
    hand = Clinician(rig)
    patient = dict(PATIENT, conditions=(), flags=())
    v = _start(rig, patient, (("lumbar_paraspinal", "R", "local"),))
    hand.hold_still()
    for peak in (2400, 2500, 2450):
        hand.trial(500, peak)
    v.next_site(rig.now_ms())
    rec = v.recommendation
    more = dict(gauge_mm=rec["gauge_mm"], needles=rec["needles"] + 1, depth=rec["depth"],
                manipulation=rec["manipulation"], adjuncts=[])  # fmt: skip
    refused = v.give_dose(rig.now_ms(), more)
    refusal = v.message
    less = dict(more, needles=5, depth="superficial")
    given = v.give_dose(rig.now_ms(), less)
    dose = [r for r in _records(rig) if r["type"] == "dose"][0]
    return {
        "recommended": [rec["needles"], rec["depth"]],
        "refused": refused,
        "refusal": refusal,
        "given": given,
        "stored": [dose["needles"], dose["depth"], dose["recommendation_seq"]],
        "recommendation_seq": v.recommendation_seq,
        "update": list(v.patient_update["last_dose"]),
        "state": _state(v),
    }


def repeat_while_the_flash_fails():
    """The clinician repeats a trial while the flash fails once: the visit waits in STORAGE
    with the excluded event in RAM; after the recovery the trial is armed again and the
    event is stored."""
    from core import ppt, record

    rig, v, first = _one_trial()
    repeated, waiting, recovered = _while_the_flash_fails(rig, v.repeat_trial)
    return {
        "repeated": repeated,
        "waiting": waiting,
        "recovered": recovered,
        "state": _state(v),
        "armed": v.trial.state == ppt.WAITING,  # armed: waiting for the onset
        "trial_number": v.trial_number,
        "excluded": [
            e["a"]
            for e in _records(rig)
            if e["type"] == "event" and e["code"] == record.EV_EXCLUDED
        ],
        "first": first,
    }


def abort_while_the_flash_fails():
    """The clinician ends the visit while the flash fails once: no visit is open, the end
    waits in STORAGE; after the recovery the unit is idle and the end is stored."""
    from core import record

    rig, v, _first = _one_trial()
    aborted, waiting, recovered = _while_the_flash_fails(rig, v.abort)
    return {
        "aborted": aborted,
        "waiting": waiting,
        "open": bool(v.patient),
        "recovered": recovered,
        "state": _state(v),
        "message": v.message,
        "ended": record.EV_ABORT in [e["code"] for e in _records(rig) if e["type"] == "event"],
    }


def _one_trial():
    rig = VisitRig(noise_counts=40, seed=9)
    hand = Clinician(rig)
    v = _start(rig)
    hand.hold_still()
    return rig, v, hand.trial(500, 1500)["seq"]


def _while_the_flash_fails(rig, action):
    """action(t_ms) with every file write failing, then the app's recovery. Returns what
    action returned, the visit's state meanwhile, what storage_recovered() returned."""
    from core import store

    write = store._write_file
    store._write_file = _failing_write
    try:
        done = action(rig.now_ms())
        waiting = _state(rig.visit)
    finally:
        store._write_file = write
    t_ms = rig.now_ms()
    rig.store.open(t_ms, None)  # the app's recovery (the directory needs no remount here)
    return done, waiting, rig.visit.storage_recovered(t_ms)


def _failing_write(*_args):
    raise OSError(5)

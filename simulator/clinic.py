"""A small clinic's records, made by running real visits on the simulated unit (CPython).

Two units, two patients, four visits, as a clinician performs them on `simulator/fakes/rig.py`
(VisitRig: the firmware's own visit, trial engine, QST and dosage rules, on a real record
store); their records are then ingested into a laptop database with host_sync.db, the path a
pull takes. The exports' and reports' tests and the clinician guide's pictures use it:

1. P-0042, first visit, on AD-0001 with its clock set: the upper trapezius on both sides (a
   side-to-side difference) and the thenar as the remote site.
2. P-0042, a week later, on AD-0001 after a reboot with its clock NOT set: the response
   "tolerated" to visit 1 and a dose one rung up; the laptop sets the clock after the visit,
   in the same boot, so the visit's times are repaired from that time-set event.
3. P-0107 on AD-0002: needle phobia, not overridden: contraindicated, no needling recorded;
   the thenar is never stopped by the patient (censored at the ceiling).
4. A boot of AD-0002 with nothing in it but a calibration event.

`build(db)` returns what was run, for tests to state expected values from.
"""

import time

from simulator import use_firmware

use_firmware()

from rig import Clinician, VisitRig  # noqa: E402  (simulator/fakes)
from unit import raw_records  # noqa: E402  (simulator/fakes: the store's records as bytes)

from core import record  # noqa: E402  (the firmware on the path, above)

DAY_S = 86400
START_S = 1796115600  # 2026-12-01 09:00 UTC: visit 1
UNITS = {
    "AD-0001": {"model": "AlgoDose ESP32-S3", "firmware": "0.1.0"},
    "AD-0002": {"model": "AlgoDose ESP32-S3", "firmware": "0.1.0"},
}
FIRST = {
    "code": "P-0042",
    "age": 42,
    "sex": "F",
    "conditions": (),
    "flags": ("chronic",),
    "contraindications": (),
    "overrides": (),
    "sessions": 0,
    "last_dose": None,
}
PHOBIC = {
    "code": "P-0107",
    "age": 35,
    "sex": "M",
    "conditions": (),
    "flags": ("acute_injury",),
    "contraindications": ("needle_phobia",),
    "overrides": (),
    "sessions": 0,
    "last_dose": None,
}
# (site, side, role) and the thresholds the patient stops at, kPa, per trial.
VISIT_1 = (
    (("upper_trapezius", "R", "local"), (262, 255, 266)),
    (("upper_trapezius", "L", None), (362, 355, 368)),
    (("thenar", "R", "remote"), (252, 245, 258)),
)
VISIT_2 = (
    (("upper_trapezius", "R", "local"), (284, 290, 279)),
    (("upper_trapezius", "L", None), (352, 346, 356)),
    (("thenar", "R", "remote"), (248, 256, 251)),
)
VISIT_3 = (
    (("lumbar_paraspinal", "R", "local"), (410, 402, 420)),
    (("thenar", "L", "remote"), None),  # never stopped: censored at the ceiling
)
RATE_KPA_S = 50


def set_clock(rig, wall_s):
    """What the app does when the laptop sets the clock (firmware/app.py on_time_set)."""
    rig.visit.set_clock(rig.now_ms(), wall_s)
    rig.store.flush()


def run_visit(rig, patient, plan, response=None, dose=None, seen=None):
    """One visit as a clinician runs it: start, the response if asked, every site's trials,
    the recommendation, the dose given (None: as recommended). Returns the visit's
    recommendation, the dose given and the patient's entry for the next visit; `seen` (a
    dict, if given) gets the site results and comparison the unit showed."""
    hand = Clinician(rig)
    v = rig.visit
    if not v.start(rig.sample(), patient, tuple(site for site, _peaks in plan)):
        raise RuntimeError("the visit did not start: %s" % v.message)
    if patient.get("sessions"):
        v.response(rig.now_ms(), response)
    for index, (_site, peaks) in enumerate(plan):
        hand.hold_still()
        if peaks is None:  # the patient never presses stop: the ceiling ends each trial
            for _ in range(3):
                hand.trial(RATE_KPA_S * 10, 10200, press=False)
        else:
            for peak in peaks:
                hand.trial(RATE_KPA_S * 10, peak * 10)
        if index < len(plan) - 1:
            v.next_site(rig.now_ms())
    v.next_site(rig.now_ms())
    recommendation = dict(v.recommendation)
    if seen is not None:
        seen.update(sites=list(v.site_results), comparison=v.comparison)
    if not v.give_dose(rig.now_ms(), dose):
        raise RuntimeError("the dose was refused: %s" % v.message)
    given = dict(v.dose)
    update = dict(v.patient_update)
    v.finish(rig.now_ms())
    return recommendation, given, update


def _ingest(db, device_id, store):
    info = dict(UNITS[device_id], device_id=device_id, manufacturer="AlgoDose")
    info["ruleset"] = _ruleset()
    db.device_seen(info, now_s=START_S)
    db.ingest(device_id, raw_records(store), received_s=START_S + 8 * DAY_S)


def _ruleset():
    from core import dosage

    return dosage.RULESET


def _visit(out, rig, device_id, patient, plan, response=None):
    rec, given, update = run_visit(rig, patient, plan, response)
    out["visits"].append(
        {"code": patient["code"], "device_id": device_id, "recommendation": rec, "dose": given}
    )
    return update


def build(db):
    """Runs the clinic's visits and ingests every record into db (a host_sync Database).
    Returns {"visits": [{"code", "device_id", "recommendation", "dose"}...], "clock_set_s":
    the time the laptop set on AD-0001 after visit 2, "visit_2_ms": (start, end) uptime}."""
    started = time.monotonic()
    out = {"visits": []}
    # AD-0001, boot 1: clock set at 08:59, visit 1 at 09:00.
    rig = VisitRig(noise_counts=40, seed=11)
    set_clock(rig, START_S - 60)
    rig.at(60000)
    update = _visit(out, rig, "AD-0001", FIRST, VISIT_1)
    root = rig.store_root
    rig.store.close()
    # AD-0001, boot 2, a week later: the clock is not set until after the visit.
    rig = VisitRig(noise_counts=40, seed=13, store_root=root)
    second = dict(FIRST, sessions=update["sessions"], last_dose=update["last_dose"],
                  last_adjuncts=update["last_adjuncts"],
                  last_session_seq=update["last_session_seq"])  # fmt: skip
    start_ms = rig.now_ms()
    _visit(out, rig, "AD-0001", second, VISIT_2, response="tolerated")
    end_ms = rig.now_ms()
    clock_set_s = START_S + 7 * DAY_S + 8 * 3600  # 17:00 a week later, at the sync
    rig.at(end_ms + 5000)
    set_clock(rig, clock_set_s)
    out["clock_set_s"] = clock_set_s
    out["clock_set_ms"] = end_ms + 5000
    out["visit_2_ms"] = (start_ms, end_ms)
    _ingest(db, "AD-0001", rig.store)
    rig.store.close()
    # AD-0002: the contraindicated visit, then a reboot with a calibration event only.
    rig = VisitRig(noise_counts=40, seed=17)
    set_clock(rig, START_S + 2 * DAY_S)
    _visit(out, rig, "AD-0002", PHOBIC, VISIT_3)
    root = rig.store_root
    rig.store.close()
    rig = VisitRig(noise_counts=40, seed=19, store_root=root)
    values = {"code": record.EV_CALIBRATION, "detail": 0, "a": 8, "b": 215000}
    rig.store.append(record.TYPE_EVENT, 10, None, record.fields(record.TYPE_EVENT, values))
    rig.store.flush()
    _ingest(db, "AD-0002", rig.store)
    rig.store.close()
    out["seconds"] = time.monotonic() - started
    return out

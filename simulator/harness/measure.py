# One measurement scenario through the real firmware path, now as the unit runs it: the
# pin-level fake HX711 on a virtual clock -> drivers.hx711 -> core.visit (scale, zeroing,
# calibration wizard, trial engine, site sequencing, QST, dosage rules, records in the
# store). The simulated clinician (rig.Clinician) only moves the probe and presses buttons
# when the unit asks for it; every decision is the visit's. The plan comes on stdin as JSON
# that simulator/scenario.py validated on CPython; the same file runs on CPython (imported by
# `python -m simulator measure`) and on `micropython`, and writes one canonical JSON document.
import json
import sys

from rig import Clinician, VisitRig, storage_root

from core import calibration, canonjson, ppt, visit
from core.vocab import SENSOR_FAULTS

HEAPSIZE = "1M"  # the visit itself needs far less (make bench); the simulated flash is here
_FLASH_BLOCKS = 48  # 192 KB: room for a visit beyond the store's reserve
_MOVE_MS = 2000  # moving the probe to the next site
_LIMIT_MS = 120000  # any wait for the unit longer than this is a harness bug, not a patient
_ZERO_PATIENCE_MS = 15000  # the clinician skips a site whose zero will not settle


def _add_fault(chip, fault, origin_ms):
    if fault is not None:
        at = origin_ms + fault["at_ms"]
        chip.add_fault(
            fault["kind"], at, None if fault["for_ms"] is None else at + fault["for_ms"]
        )


def _calibrate(rig, hand, plan):
    """The calibration wizard, as the clinician runs it with the mass in hand."""
    cal = plan["calibration"]
    rig.settings.cal_id = cal["cal_id"] - 1  # the unit numbers calibrations; the plan names one
    chip = rig.chip
    mg = cal["mass_g"] * 1000
    chip.set_profile([(0, 0)])
    _add_fault(chip, cal["fault"], 0)
    hand.hold_still(500)
    wizard = rig.visit.wizard
    rig.visit.calibrate(rig.sample(), cal["mass_g"])
    rig.run_until(lambda v: wizard.state != calibration.ZEROING, _LIMIT_MS)
    if wizard.state == calibration.WAIT_MASS:
        now = rig.now_ms()
        chip.set_profile([(now, 0), (now + 300, mg)])  # the mass goes on
        rig.run_until(lambda v: wizard.state == calibration.DONE or v.state != visit.CALIBRATE)
        now = rig.now_ms()
        chip.set_profile([(now, mg), (now + 300, 0)])  # and comes off again
        hand.hold_still(700)
    out = {"ok": wizard.state == calibration.DONE, "cal_id": cal["cal_id"]}
    out["mass_g"] = cal["mass_g"]
    out["error"] = None if out["ok"] else wizard.message
    result = wizard.result or {}
    for key in ("tare_counts", "span_counts", "counts_per_kg"):
        out[key] = result.get(key)
    return out


def _trial_view(result):
    result = dict(result)
    result["qc"] = ppt.flag_names(result["flags"])
    if result["fault"] is not None:
        result["fault"] = SENSOR_FAULTS[result["fault"]]
    return result


def _site_view(summary, trials, reason=None):
    site = dict(summary)
    for key in ("z_x100", "z_max_x100", "category"):
        site.pop(key, None)
    site["trials"] = [_trial_view(t) for t in trials]
    if reason is not None:
        site["reason"] = reason
    return site


def _measure_site(rig, hand, spec, write):
    """The scripted trials of one site, as many as the unit asks for; then the site's result."""
    v = rig.visit
    rig.run_until(lambda v: v.state != visit.ZERO, _ZERO_PATIENCE_MS)
    for planned in spec["trials"]:
        if v.state == visit.SENSOR:
            hand.hold_still(300)  # the unit waits for good readings, then re-arms
            rig.run_until(lambda v: v.state != visit.SENSOR, 5000)
        if v.state != visit.ARMED:
            break  # the site has what it needs
        hand.trial(
            planned["rate_kpa_s_x10"],
            planned["peak_kpa_x10"],
            press=planned["press"],
            fault=planned["fault"],
        )
    if v.state in (visit.ARMED, visit.SENSOR, visit.ZERO):
        v.skip_site(rig.now_ms())  # the scenario has no more trials for this site
    trials = v.trials
    write(canonjson.dumps(_site_view(v.site_results[-1], trials)))
    hand.hold_still(_MOVE_MS)
    v.next_site(rig.now_ms())


def measure(plan, write):
    chip = plan["chip"]
    root, _flash = storage_root("log", blocks=_FLASH_BLOCKS)
    rig = VisitRig(
        calibrated=False,
        settings=plan["settings"],
        store_root=root,
        offset_counts=chip["offset_counts"],
        counts_per_kg=chip["counts_per_kg"],
        noise_counts=chip["noise_counts"],
        seed=chip["seed"],
        area_cm2_x100=plan["settings"]["area_cm2_x100"],
    )
    hand = Clinician(rig, plan["settings"]["area_cm2_x100"])
    cal = _calibrate(rig, hand, plan)
    v = rig.visit
    write('{"calibration":' + canonjson.dumps(cal))
    patient = plan["patient"]
    write(',"patient":' + canonjson.dumps({"age": patient["age"], "sex": patient["sex"]}))
    write(',"protocol":' + canonjson.dumps(plan["settings"]))
    write(',"reference":' + canonjson.dumps(v.reference["version"]))
    write(',"scenario":' + canonjson.dumps(plan["title"]) + ',"sites":[')
    plan_sites = [(s["site"], s["side"], s["role"]) for s in plan["sites"]]
    started = cal["ok"] and v.start(rig.sample(), patient, plan_sites)
    if not started:
        reason = "not measured: " + (v.message if cal["ok"] else "no calibration")
        for i in range(len(plan_sites)):
            site, side, role = plan_sites[i]
            empty = {"site": site, "side": side, "role": role}
            write(("," if i else "") + canonjson.dumps(_site_view(empty, [], reason)))
    else:
        for i in range(len(plan["sites"])):
            if i:
                write(",")
            _measure_site(rig, hand, plan["sites"][i], write)
    summary = v.comparison or {"side_to_side": [], "local_to_remote": None, "dosage_qst": None}
    summary["sensor"] = {"faults": rig.hx.faults, "conversions": rig.chip.conversions_read}
    write('],"summary":' + canonjson.dumps(summary))
    # "visit" sorts after "summary": the canonical key order, while sites streamed out early
    recommendation = _recommendation(v.recommendation)
    if v.state == visit.RESULT:
        v.give_dose(rig.now_ms())
    write(',"visit":{"recommendation":' + canonjson.dumps(recommendation))
    write(',"records":%d}}' % rig.store.count())


def _recommendation(result):
    if not result:
        return None
    keep = ("status", "gauge_mm", "needles", "depth", "manipulation", "adjuncts", "rules")
    return {key: result[key] for key in keep}


def main(argv, stdin, stdout, stderr):
    if argv:
        stderr.write("error: usage: measure < plan.json (python -m simulator measure)\n")
        return 2
    plan = json.loads(stdin.read())  # written by simulator/scenario.py, never by hand
    measure(plan, stdout.write)
    stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], sys.stdin, sys.stdout, sys.stderr))

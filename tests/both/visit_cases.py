# core.visit on both runtimes: whole visits on the rig, as a clinician performs them.
from rig import Clinician, VisitRig

from core import record, visit

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
    out = []
    buf = bytearray(4096)
    nxt = 1
    while nxt:
        used, nxt = rig.store.read_into(buf, nxt)
        off = 0
        while off < used:
            n = record.check(buf, off, used)
            decoded = record.decode(buf, off, off + n)
            for key in ("boot", "wall_s", "uptime_ms"):
                del decoded[key]
            if decoded["type"] == "curve":
                decoded["samples_kpa_x10"] = len(decoded["samples_kpa_x10"])
            out.append(decoded)
            off += n
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
        shown.append(None if result is None else result["ppt_kpa_x10"])
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

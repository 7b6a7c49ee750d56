"""The laptop's records grouped into visits, with their times repaired (docs/export.md).

Exports and reports read the database through `Database.raw_records()` and decode every
record here with `core.record`, the device's own decoder, so any database backend serves
them. What this module adds to the records:

- **Times.** A record carries the unit's wall clock only when the clock was set (the laptop
  sets it at sync). A record written before that, in the same boot, gets its time from the
  first "time set" event later in that boot: that event's uptime and the time it set anchor
  the boot, as `core.visit.Clock` anchors it on the unit. Every record gets `time_s` (Unix
  seconds, None when unknown) and `time_source`: "device" (its own clock), "repaired" (from
  the later time-set event) or "unknown" (the clock was never set in that boot).
- **Visits.** A session start and the records after it on the same unit, in the same boot:
  the response to the last session, the trials with their pressure curves, the site results,
  the recommendation, the dose given, and the events of the visit (overrides, discarded
  trials, an early end). A visit ends with its dose, an early end, a reboot or the next
  session start. The side-to-side and local-to-remote comparisons are recomputed from the
  site results with `core.qst.compare`, the function the unit used.
- **Outcomes.** The response a patient reports at a visit is about the dose given at the
  visit before: it is linked back to that visit as its `outcome`.
"""

import math

from core import qst, record
from core.vocab import FLAG_NAMES

TIME_DEVICE = "device"
TIME_REPAIRED = "repaired"
TIME_UNKNOWN = "unknown"

# Event codes (core.record EV_*) by name, for people.
EVENT_NAMES = {
    record.EV_BOOT: "boot",
    record.EV_FAULT: "sensor fault",
    record.EV_TIME_SET: "time set",
    record.EV_OVERRIDE: "contraindication overridden",
    record.EV_STORE: "storage problem",
    record.EV_CALIBRATION: "calibration",
    record.EV_EXCLUDED: "trial discarded",
    record.EV_ABORT: "visit ended before its dose",
    record.EV_CRASH: "crash",
}
ENDED_DOSE = "dose"
ENDED_ABORTED = "aborted"
ENDED_UNFINISHED = "unfinished"


def decode_records(raw_records):
    """(device_id, seq, raw) rows, in (device_id, seq) order, decoded: ({device_id: [record
    dict, ...]}, [undecodable: {device_id, seq, raw, error}]). Each record dict is
    core.record.decode()'s with the device_id and its raw bytes."""
    by_device = {}
    undecodable = []
    for device_id, seq, raw in raw_records:
        try:
            decoded = record.decode(raw)
        except record.RecordError as error:
            undecodable.append(
                {"device_id": device_id, "seq": seq, "raw": raw, "error": str(error)}
            )
            continue
        decoded["device_id"] = device_id
        decoded["raw"] = raw
        by_device.setdefault(device_id, []).append(decoded)
    return by_device, undecodable


def repair_times(records):
    """Sets time_s and time_source on each record of one unit (in seq order): its own clock,
    or repaired from the first time-set event after it in the same boot, or unknown."""
    anchor = None  # (uptime ms, Unix s) of the nearest later time-set event in this boot
    boot = None
    for rec in reversed(records):
        if rec["boot"] != boot:
            boot = rec["boot"]
            anchor = None
        if rec["type"] == "event" and rec["code"] == record.EV_TIME_SET:
            anchor = (rec["uptime_ms"], rec["b"])
        if rec["wall_s"] is not None:
            rec["time_s"] = rec["wall_s"]
            rec["time_source"] = TIME_DEVICE
        elif anchor is not None:
            # As core.visit.Clock computes it on the unit: anchor + whole seconds since.
            rec["time_s"] = anchor[1] + (rec["uptime_ms"] - anchor[0]) // 1000
            rec["time_source"] = TIME_REPAIRED
        else:
            rec["time_s"] = None
            rec["time_source"] = TIME_UNKNOWN
    return records


def _new_visit(device_id, session):
    return {
        "device_id": device_id,
        "session_seq": None if session is None else session["seq"],
        "code": None if session is None else session["code"],
        "boot": None,
        "time_s": None,
        "time_source": TIME_UNKNOWN,
        "ended": ENDED_UNFINISHED,
        "session": session,
        "response": None,
        "trials": [],
        "sites": [],
        "comparison": None,
        "recommendation": None,
        "dose": None,
        "events": [],
        "outcome": None,
        "seqs": [],
    }


def group_visits(device_id, records):
    """One unit's records (decoded, times repaired, in seq order) as (visits, events outside
    any visit). Records of a visit whose session start is not in the database form a visit
    with session None, so that nothing stored is left out."""
    visits = []
    device_events = []
    visit = None
    calibration_id = None
    for rec in records:
        rtype = rec["type"]
        if rtype == "event" and rec["code"] == record.EV_CALIBRATION:
            calibration_id = rec["a"]
        if visit is not None and (
            visit["ended"] != ENDED_UNFINISHED or rec["boot"] != visit["boot"]
        ):
            visit = None  # a visit ends with its dose, an early end or a reboot
        if rtype == "session":
            visit = _new_visit(device_id, rec)
            visits.append(visit)
        elif visit is None:
            if rtype == "event":
                device_events.append(rec)
                continue
            visit = _new_visit(device_id, None)
            visits.append(visit)
        if visit["boot"] is None:
            visit["boot"] = rec["boot"]
            visit["time_s"] = rec["time_s"]
            visit["time_source"] = rec["time_source"]
        visit["seqs"].append(rec["seq"])
        _add(visit, rec, calibration_id)
    for visit in visits:
        _finish(visit)
    return visits, device_events


def _add(visit, rec, calibration_id):
    rtype = rec["type"]
    if rtype == "trial":
        rec["flag_names"] = [
            FLAG_NAMES[i] for i in range(len(FLAG_NAMES)) if rec["flags"] >> i & 1
        ]
        rec["valid"] = rec["flags"] == 0
        rec["excluded"] = False
        rec["calibration_id"] = calibration_id
        rec["curves"] = []
        visit["trials"].append(rec)
    elif rtype == "curve":
        for trial in visit["trials"]:
            if trial["seq"] == rec["trial_seq"]:
                trial["curves"].append(rec)
                break
        else:
            visit["events"].append(rec)  # a curve of a trial not in the database: kept
    elif rtype == "site":
        visit["sites"].append(rec)
    elif rtype == "response":
        visit["response"] = rec
    elif rtype == "recommendation":
        visit["recommendation"] = rec
    elif rtype == "dose":
        visit["dose"] = rec
        visit["ended"] = ENDED_DOSE
    elif rtype == "event":
        visit["events"].append(rec)
        if rec["code"] == record.EV_EXCLUDED:
            for trial in visit["trials"]:
                if trial["seq"] == rec["a"]:
                    trial["excluded"] = True
        elif rec["code"] == record.EV_ABORT:
            visit["ended"] = ENDED_ABORTED


def _finish(visit):
    roles = {}
    for site in visit["sites"]:
        roles[(site["site"], site["side"])] = site["role"]
    for trial in visit["trials"]:
        trial["role"] = roles.get((trial["site"], trial["side"]))
    visit["comparison"] = compare(visit["sites"])


def compare(sites):
    """core.qst.compare over stored site results: side-to-side pairs, local to remote with
    widespread sensitisation, as the unit computed them."""
    return qst.compare(
        [
            (s["site"], s["side"], s["role"], s["ppt_kpa_x10"],
             {"z_x100": s["z_x100"], "z_max_x100": s["z_max_x100"]})
            for s in sites
        ]
    )  # fmt: skip


def link_outcomes(visits):
    """The response recorded at a visit answers the dose of an earlier visit of the same
    patient: the one whose session seq it names on the same unit, else the visit before it
    in the patient's history. That visit gets it as its outcome."""
    by_key = {(v["device_id"], v["session_seq"]): v for v in visits if v["session_seq"]}
    for code, history in patients(visits).items():
        for index, visit in enumerate(history):
            response = visit["response"]
            if response is None or code is None:
                continue
            earlier = by_key.get((visit["device_id"], response["session_seq"]))
            if earlier is None or earlier["code"] != code:
                earlier = history[index - 1] if index > 0 else None
            if earlier is not None:
                earlier["outcome"] = {
                    "response": response["response"],
                    "device_id": visit["device_id"],
                    "seq": response["seq"],
                    "time_s": response["time_s"],
                    "time_source": response["time_source"],
                }


def order_key(visits):
    """A sort key for visits across units: by time; a visit of unknown time right after the
    visit before it on the same unit (the unit's seq order is certain, its clock was not)."""
    last_known = {}
    keys = {}
    for visit in sorted(
        visits, key=lambda v: (v["device_id"], v["session_seq"] or 0, v["seqs"][0])
    ):
        device = visit["device_id"]
        if visit["time_s"] is not None:
            last_known[device] = visit["time_s"]
        keys[id(visit)] = (last_known.get(device, -math.inf), visit["time_s"] is None, device,
                           visit["seqs"][0])  # fmt: skip
    return lambda v: keys[id(v)]


def patients(visits):
    """{patient code: [visits in history order]} (code None: visits whose start is lost)."""
    key = order_key(visits)
    out = {}
    for visit in sorted(visits, key=key):
        out.setdefault(visit["code"], []).append(visit)
    return out


def load(db, patient=None, since_s=None):
    """Everything an export or report needs from a database: {"devices", "visits" (history
    order), "events" (outside visits), "undecodable"}. patient: one patient code's visits
    only (and no unit events); since_s: visits and events from then on, and those of unknown
    time (they cannot be shown to be older)."""
    by_device, undecodable = decode_records(db.raw_records())
    visits = []
    events = []
    for device_id, records in by_device.items():
        repair_times(records)
        device_visits, device_events = group_visits(device_id, records)
        visits.extend(device_visits)
        events.extend(device_events)
    link_outcomes(visits)
    visits.sort(key=order_key(visits))
    if patient is not None:
        visits = [v for v in visits if v["code"] == patient]
        events = []
    if since_s is not None:
        visits = [v for v in visits if v["time_s"] is None or v["time_s"] >= since_s]
        events = [e for e in events if e["time_s"] is None or e["time_s"] >= since_s]
    return {
        "devices": db.devices(),
        "visits": visits,
        "events": events,
        "undecodable": undecodable if patient is None else [],
    }


def records_of(data):
    """Every record an export holds (visits, their trials' curves, events), in (device, seq)
    order: what a JSON export carries raw."""
    out = []
    for visit in data["visits"]:
        for name in ("session", "response", "recommendation", "dose"):
            if visit[name] is not None:
                out.append(visit[name])
        out.extend(visit["sites"])
        out.extend(visit["events"])
        for trial in visit["trials"]:
            out.append(trial)
            out.extend(trial["curves"])
    out.extend(data["events"])
    return sorted(out, key=lambda r: (r["device_id"], r["seq"]))


def time_counts(data):
    """How many exported records have each time source: {"device": n, "repaired": n, ...}."""
    counts = {TIME_DEVICE: 0, TIME_REPAIRED: 0, TIME_UNKNOWN: 0}
    for rec in records_of(data):
        counts[rec["time_source"]] += 1
    return counts

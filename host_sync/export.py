"""Exports of the laptop's database: CSV for a spreadsheet, JSON for other programs
(docs/export.md). FHIR R4 is host_sync/fhir.py.

Both start from host_sync.visits.load(): the records grouped into visits, times repaired.

- CSV: a directory of five files, one row per stored record of each kind (visits.csv,
  trials.csv, sites.csv, recommendations.csv with the dose given beside what was
  recommended, events.csv). UTF-8 with a byte order mark, so that Excel reads the text as
  UTF-8; comma separated, decimal point. Pressures in kPa, and in the clinic's unit when it
  is another one; every row says its time and where that time came from.
- JSON: one file, complete: every visit with every decoded field under the record's own
  names (ppt_kpa_x10, z_x100, ...), the events, the units, and every record's raw bytes, so
  `ingest_json()` rebuilds a database from it and exporting that gives the same file.
"""

import csv
import datetime
import json
import os
import time

from core import dosage
from core.scale import UNITS, convert_x100, format_kpa_x10, format_x100
from host_sync import visits as visits_mod

FORMAT = "algodose-export"
FORMAT_VERSION = 1
_ABNORMAL_Z_X100 = 196  # |z| > 1.96: outside the reference group's 95 % (DFNS)


class ExportError(Exception):
    """A user's mistake (a bad path, an unknown unit): the message is one line for them."""


# --- values as a clinician reads them ------------------------------------------------------


def when(time_s, tz=None):
    """ISO 8601 with the UTC offset, in the laptop's time zone unless tz is given; "" when
    the time is unknown."""
    if time_s is None:
        return ""
    moment = datetime.datetime.fromtimestamp(time_s, datetime.UTC)
    return moment.astimezone(tz).isoformat()


def _tenths(value_x10):
    return "" if value_x10 is None else format_kpa_x10(value_x10)


def _hundredths(value_x100):
    return "" if value_x100 is None else format_x100(value_x100)


def _in_unit(kpa_x10, unit):
    return "" if kpa_x10 is None else format_x100(convert_x100(kpa_x10, unit))


def _yes(value):
    return "" if value is None else ("yes" if value else "no")


def _words(items):
    return "" if items is None else "; ".join(str(item).replace("_", " ") for item in items)


def _name(value):
    return "" if value is None else str(value).replace("_", " ")


def unit_column(unit):
    """The CSV column of a pressure in the clinic's unit: ppt_kgf_cm2, ppt_N, ppt_lbf."""
    return "ppt_" + unit.replace("/", "_")


def check_unit(unit):
    if unit not in UNITS:
        raise ExportError("unit: one of %s (got %s)" % (", ".join(UNITS), unit))
    return unit


# --- CSV ------------------------------------------------------------------------------------

CSV_FILES = ("visits.csv", "trials.csv", "sites.csv", "recommendations.csv", "events.csv")


def _where(rec, visit, tz):
    return {
        "device_id": rec["device_id"],
        "seq": rec["seq"],
        "patient_code": "" if visit is None else visit["code"] or "",
        "session_seq": "" if visit is None else visit["session_seq"] or "",
        "time": when(rec["time_s"], tz),
        "time_source": rec["time_source"],
    }


def _visit_row(visit, tz):
    session = visit["session"] or {}
    comparison = visit["comparison"] or {}
    remote = comparison.get("local_to_remote") or {}
    rec = visit["recommendation"]
    response = visit["response"]
    outcome = visit["outcome"]
    return {
        "device_id": visit["device_id"],
        "session_seq": visit["session_seq"] or "",
        "patient_code": visit["code"] or "",
        "time": when(visit["time_s"], tz),
        "time_source": visit["time_source"],
        "age": session.get("age", ""),
        "sex": session.get("sex", ""),
        "conditions": _words(session.get("conditions")),
        "flags": _words(session.get("flags")),
        "contraindications": _words(session.get("contraindications")),
        "overrides": _words(session.get("overrides")),
        "region": _name(session.get("region")),
        "sessions_before": "" if session.get("sessions") is None else session["sessions"],
        "response_to_last_session": "" if response is None else response["response"],
        "ended": visit["ended"],
        "local_site": _name(remote.get("local")),
        "remote_site": _name(remote.get("remote")),
        "local_pct_of_remote": _tenths(remote.get("ratio_pct_x10")),
        "widespread_sensitisation": _yes(remote.get("widespread")),
        "side_to_side_over_35pct": _words(
            [p["site"] for p in comparison.get("side_to_side", ()) if p["flag"]]
        ),
        "status": "" if rec is None else rec["status"],
        "response_at_next_visit": "" if outcome is None else outcome["response"],
        "trials": len(visit["trials"]),
        "sites": len(visit["sites"]),
    }


def _placed(rec, visit, tz):
    """The columns every trial and site row starts with: where, when, which site."""
    row = _where(rec, visit, tz)
    row.update(site=_name(rec["site"]), side=rec["side"] or "", role=rec["role"] or "")
    return row


def _add_ppt(row, kpa_x10, unit):
    row["ppt_kpa"] = _tenths(kpa_x10)
    if unit != "kPa":
        row[unit_column(unit)] = _in_unit(kpa_x10, unit)


def _trial_row(trial, visit, unit, tz):
    curve = trial["curves"][0] if trial["curves"] else None
    row = _placed(trial, visit, tz)
    row.update(
        trial=trial["trial"],
        end=trial["end"],
        valid=_yes(trial["valid"]),
        qc_flags=_words(trial["flag_names"]),
        discarded=_yes(trial["excluded"]),
    )
    _add_ppt(row, trial["ppt_kpa_x10"], unit)
    row.update(
        peak_kpa=_tenths(trial["peak_kpa_x10"]),
        rate_kpa_s=_tenths(trial["rate_kpa_s_x10"]),
        ramp_ms="" if trial["ramp_ms"] is None else trial["ramp_ms"],
        calibration_id="" if trial["calibration_id"] is None else trial["calibration_id"],
        curve_points=sum(len(c["samples_kpa_x10"]) for c in trial["curves"]),
        curve_interval_ms="" if curve is None else curve["interval_ms"],
    )
    return row


def _site_row(site, visit, unit, tz):
    pair = {}
    for found in (visit["comparison"] or {}).get("side_to_side", ()):
        if found["site"] == site["site"] and site["side"] in ("L", "R"):
            pair = found
    z = site["z_x100"]
    row = _placed(site, visit, tz)
    row.update(n_trials=site["n_trials"], n_valid=site["n_valid"], n_censored=site["n_censored"])
    _add_ppt(row, site["ppt_kpa_x10"], unit)
    row.update(
        ppt_at_least_kpa=_tenths(site["ppt_min_kpa_x10"]),
        cv_pct=_tenths(site["cv_pct_x10"]),
        z=_hundredths(z),
        z_at_most=_hundredths(site["z_max_x100"]),
        category=site["category"] or "",
        outside_reference_95pct=_yes(None if z is None else abs(z) > _ABNORMAL_Z_X100),
        side_to_side_diff_pct=_tenths(pair.get("diff_pct_x10")),
        side_to_side_over_35pct=_yes(pair.get("flag")),
    )
    return row


_DOSE_FIELDS = ("gauge_mm", "needles", "depth", "manipulation", "adjuncts")


def _dose_values(prefix, dose):
    out = {}
    for name in _DOSE_FIELDS:
        value = None if dose is None else dose[name]
        if name == "adjuncts":
            out[prefix + name] = _words(value)
        else:
            out[prefix + name] = "" if value is None else value
    return out


def _recommendation_row(visit, tz):
    rec = visit["recommendation"]
    dose = visit["dose"]
    anchor = rec if rec is not None else dose
    row = _where(anchor, visit, tz)
    if rec is None:
        row["seq"] = ""
    row["status"] = "" if rec is None else rec["status"]
    row.update(_dose_values("", rec))
    row.update(
        sessions_per_week=""
        if rec is None or rec["sessions_per_week"] is None
        else "%d-%d" % tuple(rec["sessions_per_week"]),
        overrides=_words(None if rec is None else rec["overrides"]),
        reasons=" | ".join(r["text"] for r in (rec or {}).get("reasons") or ()),
        rules=" ".join((rec or {}).get("rules") or ()),
        rule_bits="" if rec is None or rec["rules"] is not None else _words(rec["rule_bits"]),
        ruleset="" if rec is None else rec["ruleset"],
        dose_seq="" if dose is None else dose["seq"],
        dose_time="" if dose is None else when(dose["time_s"], tz),
        dose_time_source="" if dose is None else dose["time_source"],
        no_needling=_yes(None if dose is None else dose["needles"] is None),
    )
    row.update(_dose_values("given_", dose))
    outcome = visit["outcome"]
    row["response_at_next_visit"] = "" if outcome is None else outcome["response"]
    return row


def _event_row(event, visit, tz):
    row = _where(event, visit, tz)
    row.update(
        event=visits_mod.EVENT_NAMES.get(event.get("code"), event["type"]),
        code=event.get("code", ""),
        detail=event.get("detail", ""),
        a=event.get("a", ""),
        b=event.get("b", ""),
    )
    return row


def csv_tables(data, unit="kPa", tz=None):
    """{file name: [row dict, ...]}: the rows of each CSV file."""
    check_unit(unit)
    tables = {name: [] for name in CSV_FILES}
    for visit in data["visits"]:
        tables["visits.csv"].append(_visit_row(visit, tz))
        for trial in visit["trials"]:
            tables["trials.csv"].append(_trial_row(trial, visit, unit, tz))
        for site in visit["sites"]:
            tables["sites.csv"].append(_site_row(site, visit, unit, tz))
        if visit["recommendation"] is not None or visit["dose"] is not None:
            tables["recommendations.csv"].append(_recommendation_row(visit, tz))
        for event in visit["events"]:
            tables["events.csv"].append(_event_row(event, visit, tz))
    for event in data["events"]:
        tables["events.csv"].append(_event_row(event, None, tz))
    return tables


def write_csv(data, directory, unit="kPa", tz=None):
    """Writes the CSV files into directory (made if missing); returns {file name: rows}."""
    tables = csv_tables(data, unit, tz)
    _makedirs(directory)
    for name, rows in tables.items():
        path = os.path.join(directory, name)
        header = list(rows[0]) if rows else _EMPTY_HEADERS[name]
        with _open(path, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header)
            writer.writeheader()
            writer.writerows(rows)
    return {name: len(rows) for name, rows in tables.items()}


_EMPTY_HEADERS = {
    "visits.csv": ["device_id", "session_seq", "patient_code", "time", "time_source"],
    "trials.csv": ["device_id", "seq", "patient_code", "session_seq", "time", "time_source"],
    "sites.csv": ["device_id", "seq", "patient_code", "session_seq", "time", "time_source"],
    "recommendations.csv": ["device_id", "seq", "patient_code", "session_seq", "time",
                            "time_source"],
    "events.csv": ["device_id", "seq", "patient_code", "session_seq", "time", "time_source"],
}  # fmt: skip


def _makedirs(directory):
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as error:
        raise ExportError(
            "cannot make the directory %s: %s" % (directory, error.strerror)
        ) from None


def _open(path, mode, **kw):
    try:
        return open(path, mode, **kw)
    except OSError as error:
        raise ExportError("cannot write %s: %s" % (path, error.strerror)) from None


# --- JSON -----------------------------------------------------------------------------------


def _plain(rec):
    """A record dict for JSON: every decoded field, its time, no raw bytes (those are in
    the export's "records")."""
    out = {}
    for key, value in rec.items():
        if key == "raw":
            continue
        if key == "curves":
            value = [_plain(curve) for curve in value]
        out[key] = value
    return out


def _plain_visit(visit):
    out = {}
    for key, value in visit.items():
        if key == "seqs":
            continue
        if isinstance(value, dict) and "raw" in value:
            value = _plain(value)
        elif key in ("trials", "sites", "events"):
            value = [_plain(rec) for rec in value]
        out[key] = value
    return out


def json_document(data, patient=None, since_s=None, now_s=None):
    """The JSON export as a dict (see the module's docstring)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "generated_s": int(time.time()) if now_s is None else now_s,
        "host_ruleset": dosage.RULESET,
        "filters": {"patient": patient, "since_s": since_s},
        "devices": data["devices"],
        "visits": [_plain_visit(v) for v in data["visits"]],
        "events": [_plain(e) for e in data["events"]],
        "undecodable": [
            {
                "device_id": u["device_id"],
                "seq": u["seq"],
                "error": u["error"],
                "raw_hex": u["raw"].hex(),
            }
            for u in data["undecodable"]
        ],  # fmt: skip
        "records": [
            {"device_id": r["device_id"], "seq": r["seq"], "raw_hex": r["raw"].hex()}
            for r in visits_mod.records_of(data)
        ],
    }


def write_json(data, path, patient=None, since_s=None, now_s=None):
    return write_document(json_document(data, patient, since_s, now_s), path)


def write_document(document, path):
    """A JSON document (the export, or a FHIR bundle) to a file, UTF-8, keys sorted."""
    _makedirs(os.path.dirname(os.path.abspath(path)))
    with _open(path, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1, sort_keys=True, ensure_ascii=False)
        handle.write("\n")
    return document


def ingest_json(db, document):
    """Puts a JSON export's records (and its undecodable ones) into a database, as a pull
    would: the units first, then every record, idempotent. Returns how many were new."""
    if document.get("format") != FORMAT:
        raise ExportError("not an AlgoDose JSON export")
    by_device = {}
    for rec in document["records"] + document["undecodable"]:
        by_device.setdefault(rec["device_id"], []).append(bytes.fromhex(rec["raw_hex"]))
    new = 0
    for device in document["devices"]:
        db.device_seen(device, device.get("address"))
        raws = by_device.pop(device["device_id"], [])
        synced = device.get("last_sync_s")
        new += db.ingest(device["device_id"], raws, synced, last_sync=synced is not None)[0]
    if by_device:
        raise ExportError(
            "records of units not in the export's device list: %s" % sorted(by_device)
        )
    return new

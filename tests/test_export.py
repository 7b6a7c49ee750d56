"""Exports and reports of a small clinic's database (issue 12, items 1 and 2).

The database is made the way a clinic makes it: real visits on the simulated unit
(simulator/clinic.py: VisitRig and the Clinician on CPython, the firmware's own visit, QST
and dosage rules, a real record store), the store's records ingested with host_sync.db as a
pull ingests them. Two units, two patients: P-0042 twice (the second visit after a reboot
with the clock not set until after it, so its times are repaired; the response "tolerated"
and a dose one rung up), P-0107 contraindicated with a site censored at the ceiling.
"""

import csv
import datetime
import html.parser
import json
import os
import re
import subprocess
import sys

import fhir.resources as fhir_models
import pytest
from fhir.resources import get_fhir_model_class
from fhir.resources.bundle import Bundle

from core import qst, record
from host_sync import export, report, visits
from host_sync import fhir as fhir_export
from host_sync.db import Database
from simulator import clinic

UTC = datetime.UTC


@pytest.fixture(scope="module")
def clinic_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("clinic") / "algodose.db"
    db = Database(str(path))
    run = clinic.build(db)
    return db, run, str(path)


def _stored(db, rtype):
    """(device_id, seq) of every stored record of a type, straight from the records table."""
    rows = db.conn.execute("SELECT device_id, seq FROM records WHERE type = ?", (rtype,))
    return sorted((device, seq) for device, seq in rows)


def _read_csv(path):
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


# --- the database read ----------------------------------------------------------------------


def test_raw_records_are_every_record_in_device_and_seq_order(clinic_db):
    db, _run, _path = clinic_db
    rows = list(db.raw_records())
    keys = [(device, seq) for device, seq, _raw in rows]
    assert keys == sorted(keys)
    assert len(rows) == db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    assert all(record.decode(raw)["seq"] == seq for _d, seq, raw in rows)
    only = list(db.raw_records("AD-0002"))
    assert {device for device, _s, _r in only} == {"AD-0002"}
    assert len(only) == db.count("AD-0002")


# --- times ----------------------------------------------------------------------------------


def _rec(seq, boot, uptime_ms, wall_s=None, code=None, b=0):
    rec = {"type": "trial", "seq": seq, "boot": boot, "uptime_ms": uptime_ms, "wall_s": wall_s}
    if code is not None:
        rec.update(type="event", code=code, a=0, b=b)
    return rec


def test_times_are_repaired_from_the_later_time_set_in_the_same_boot_only():
    records = [
        _rec(1, 1, 5000),  # boot 1: the clock is never set
        _rec(2, 2, 7000),  # boot 2, 3000 ms before the clock is set: 3 s before
        _rec(3, 2, 9001),  # 999 ms before: still the second before (floor, as the unit's Clock)
        _rec(4, 2, 9000),  # exactly 1000 ms before
        _rec(5, 2, 10000, 2_000_000, record.EV_TIME_SET, b=2_000_000),
        _rec(6, 2, 12500, 2_000_002),
        _rec(7, 3, 100),  # boot 3: the set in boot 2 says nothing about it
    ]
    visits.repair_times(records)
    got = [(r["seq"], r["time_s"], r["time_source"]) for r in records]
    assert got == [
        (1, None, "unknown"),
        (2, 1_999_997, "repaired"),
        (3, 1_999_999, "repaired"),
        (4, 1_999_999, "repaired"),
        (5, 2_000_000, "device"),
        (6, 2_000_002, "device"),
        (7, None, "unknown"),
    ]


def _visit_record(rtype, seq, boot, **fields):
    rec = {"type": rtype, "seq": seq, "boot": boot, "time_s": None, "time_source": "unknown"}
    if rtype == "session":
        rec["code"] = "P-0001"
    if rtype == "trial":
        rec.update(site="thenar", side="L", flags=0)
    rec.update(fields)
    return rec


def test_a_visit_ends_at_a_reboot_its_dose_or_an_early_end():
    records = [
        _visit_record("session", 1, 1),
        _visit_record("trial", 2, 1),
        _visit_record("event", 3, 2, code=record.EV_BOOT, a=0),  # a power cut mid-visit
        _visit_record("trial", 4, 2),  # no session start before it in this boot
        _visit_record("session", 5, 2),
        _visit_record("event", 6, 2, code=record.EV_EXCLUDED, a=7),
        _visit_record("trial", 7, 2),
        _visit_record("event", 8, 2, code=record.EV_ABORT, a=5),
        _visit_record("event", 9, 2, code=record.EV_CALIBRATION, a=3),
        _visit_record("trial", 10, 2),
    ]
    found, events = visits.group_visits("AD-9", records)
    assert [(v["session_seq"], v["ended"], [t["seq"] for t in v["trials"]]) for v in found] == [
        (1, "unfinished", [2]),
        (None, "unfinished", [4]),
        (5, "aborted", [7]),
        (None, "unfinished", [10]),
    ]
    assert [e["seq"] for e in events] == [3, 9]
    assert found[3]["trials"][0]["calibration_id"] == 3
    assert found[0]["trials"][0]["calibration_id"] is None


def test_the_clinics_second_visit_has_repaired_times(clinic_db):
    db, run, _path = clinic_db
    data = visits.load(db)
    first, _phobic, second = [v for v in data["visits"]]
    assert (first["code"], second["code"], _phobic["code"]) == ("P-0042", "P-0042", "P-0107")
    assert first["time_source"] == "device" and first["time_s"] == clinic.START_S
    uptime = second["session"]["uptime_ms"]
    expected = run["clock_set_s"] + (uptime - run["clock_set_ms"]) // 1000
    assert second["time_source"] == "repaired" and second["time_s"] == expected
    assert {t["time_source"] for t in second["trials"]} == {"repaired"}
    # the boot of AD-0002 with only a calibration in it: the clock was never set there
    unknown = [e for e in data["events"] if e["time_source"] == "unknown"]
    assert [(e["device_id"], e["code"]) for e in unknown] == [
        ("AD-0002", record.EV_BOOT),
        ("AD-0002", record.EV_CALIBRATION),
    ]


def test_the_response_is_linked_back_to_the_visit_it_answers(clinic_db):
    db, _run, _path = clinic_db
    first, second = visits.load(db, patient="P-0042")["visits"]
    assert second["response"]["response"] == "tolerated"
    assert second["response"]["session_seq"] == first["session_seq"]
    assert first["outcome"]["response"] == "tolerated" and second["outcome"] is None


# --- CSV ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def csv_dir(clinic_db, tmp_path_factory):
    db, _run, _path = clinic_db
    out = tmp_path_factory.mktemp("csv")
    export.write_csv(visits.load(db), str(out), unit="kgf/cm2", tz=UTC)
    return out


def test_csv_has_one_row_per_stored_trial_site_and_recommendation(clinic_db, csv_dir):
    db, _run, _path = clinic_db
    for name, rtype in (
        ("trials.csv", "trial"),
        ("sites.csv", "site"),
        ("recommendations.csv", "recommendation"),
        ("events.csv", "event"),
        ("visits.csv", "session"),
    ):
        rows = _read_csv(csv_dir / name)
        key = "session_seq" if rtype == "session" else "seq"
        assert sorted((r["device_id"], int(r[key])) for r in rows) == _stored(db, rtype), name
    with open(csv_dir / "trials.csv", "rb") as handle:
        assert handle.read(3) == b"\xef\xbb\xbf"  # UTF-8 with a BOM: Excel reads it as UTF-8


def test_csv_values_a_clinician_reads(csv_dir, clinic_db):
    _db, run, _path = clinic_db
    sites = _read_csv(csv_dir / "sites.csv")
    for row in sites:
        if row["ppt_kpa"]:  # kgf/cm2 to 0.01: 98.0665 kPa each
            assert abs(float(row["ppt_kgf_cm2"]) * 98.0665 - float(row["ppt_kpa"])) <= 0.5
    first = [r for r in sites if r["session_seq"] == "3" and r["device_id"] == "AD-0001"]
    left, right = [float(r["ppt_kpa"]) for r in first if r["site"] == "upper trapezius"][::-1]
    difference = abs(left - right) / min(left, right) * 100
    assert difference > 35
    for row in first[:2]:
        assert float(row["side_to_side_diff_pct"]) == pytest.approx(difference, abs=0.06)
        assert row["side_to_side_over_35pct"] == "yes"
    censored = [r for r in sites if r["device_id"] == "AD-0002" and r["site"] == "thenar"][0]
    assert censored["ppt_kpa"] == "" and float(censored["ppt_at_least_kpa"]) >= 1000
    assert censored["n_censored"] == "3" and censored["z"] == ""
    assert float(censored["z_at_most"]) < -1.96
    recs = _read_csv(csv_dir / "recommendations.csv")
    by_code = {}
    for row in recs:
        by_code.setdefault(row["patient_code"], []).append(row)
    one, two = by_code["P-0042"]
    assert (one["given_manipulation"], two["given_manipulation"]) == ("basic", "rotation")
    assert one["response_at_next_visit"] == "tolerated" and two["response_at_next_visit"] == ""
    assert two["time_source"] == "repaired" and two["time"] == export.when(
        visits.load(_db)["visits"][2]["recommendation"]["time_s"], UTC
    )
    (phobic,) = by_code["P-0107"]
    assert phobic["status"] == "contraindicated" and phobic["no_needling"] == "yes"
    assert phobic["given_needles"] == "" and "CI-NEEDLE-PHOBIA" in phobic["rules"].split()
    assert run["visits"][2]["recommendation"]["needles"] is None
    trials = _read_csv(csv_dir / "trials.csv")
    assert {r["time_source"] for r in trials if r["session_seq"] == "66"} == {"repaired"}
    assert all(int(r["curve_points"]) > 1 for r in trials)


def test_csv_of_an_empty_selection_still_has_headers(clinic_db, tmp_path):
    db, _run, _path = clinic_db
    data = visits.load(db, since_s=clinic.START_S + 365 * clinic.DAY_S)
    export.write_csv(data, str(tmp_path))
    with open(tmp_path / "trials.csv", encoding="utf-8-sig") as handle:
        assert handle.read().startswith("device_id,seq,patient_code")


# --- JSON -----------------------------------------------------------------------------------


def test_json_round_trips_through_a_new_database(clinic_db, tmp_path):
    db, _run, _path = clinic_db
    path = tmp_path / "export.json"
    written = export.write_json(visits.load(db), str(path), now_s=1)
    with open(path, encoding="utf-8") as handle:
        read = json.load(handle)
    assert read == json.loads(json.dumps(written))
    assert len(read["records"]) == db.conn.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    again = Database(str(tmp_path / "again.db"))
    assert export.ingest_json(again, read) == len(read["records"])
    assert export.ingest_json(again, read) == 0  # idempotent, as a pull
    second = json.loads(json.dumps(export.json_document(visits.load(again), now_s=1)))
    assert second == read
    visit = read["visits"][0]
    assert (
        visit["sites"][0]["ppt_kpa_x10"] == visits.load(db)["visits"][0]["sites"][0]["ppt_kpa_x10"]
    )


def test_a_json_file_that_is_not_an_export_is_refused(tmp_path):
    with pytest.raises(export.ExportError):
        export.ingest_json(Database(str(tmp_path / "x.db")), {"resourceType": "Bundle"})


# --- FHIR R4 --------------------------------------------------------------------------------

# Required bindings of FHIR R4 (4.0.1) for the elements the export fills: fhir.resources checks
# structure and types, not these codes.
R4_CODES = {
    ("Bundle", "type"): {"document", "message", "transaction", "transaction-response", "batch",
                         "batch-response", "history", "searchset", "collection"},
    ("Observation", "status"): {"registered", "preliminary", "final", "amended", "corrected",
                                "cancelled", "entered-in-error", "unknown"},
    ("ServiceRequest", "status"): {"draft", "active", "on-hold", "revoked", "completed",
                                   "entered-in-error", "unknown"},
    ("ServiceRequest", "intent"): {"proposal", "plan", "directive", "order", "original-order",
                                   "reflex-order", "filler-order", "instance-order", "option"},
    ("Procedure", "status"): {"preparation", "in-progress", "not-done", "on-hold", "stopped",
                              "completed", "entered-in-error", "unknown"},
    ("Device", "status"): {"active", "inactive", "entered-in-error", "unknown"},
    ("Patient", "gender"): {"male", "female", "other", "unknown"},
}  # fmt: skip
COMPARATORS = {"<", "<=", ">=", ">"}


@pytest.fixture(scope="module")
def bundle(clinic_db):
    db, _run, _path = clinic_db
    made, skipped = fhir_export.bundle(visits.load(db), tz=UTC, now_s=clinic.START_S)
    assert skipped == 0
    return made


def _walk(value, path=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, path + (key,))
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, path)
    yield path, value


def test_every_fhir_resource_validates_against_r4(bundle):
    assert fhir_models.__fhir_version__ == "4.0.1"  # R4, not R4B or R5
    Bundle.parse_obj(bundle)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        get_fhir_model_class(resource["resourceType"]).parse_obj(resource)
        for (rtype, name), allowed in R4_CODES.items():
            if resource["resourceType"] == rtype and name in resource:
                assert resource[name] in allowed, (rtype, name, resource[name])
        for path, value in _walk(resource):
            assert value not in ("", [], {}, None), path  # ele-1: no empty elements
            if path and path[-1] == "comparator":
                assert value in COMPARATORS
    for system in fhir_export.code_systems():
        get_fhir_model_class("CodeSystem").parse_obj(system)
    assert bundle["type"] in R4_CODES[("Bundle", "type")]


def test_fhir_bundle_content(clinic_db, bundle):
    db, _run, _path = clinic_db
    resources = [e["resource"] for e in bundle["entry"]]
    by_type = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    sites = _stored(db, "site")
    assert len(by_type["Patient"]) == 2 and len(by_type["Device"]) == 2
    assert len(by_type["ServiceRequest"]) == len(_stored(db, "recommendation")) == 3
    assert len(by_type["Procedure"]) == len(_stored(db, "dose")) == 3
    codes = {}
    for obs in by_type["Observation"]:
        codes.setdefault(obs["code"]["coding"][0]["code"], []).append(obs)
    assert len(codes["ppt"]) == len(sites) == 8  # one per stored site result
    # z: every site with a reference row (the lumbar paraspinal has none), censored as a bound
    assert len(codes["ppt-z"]) == 7
    assert len(codes["ppt-side-difference"]) == 2
    for obs in codes["ppt"]:
        assert obs["method"]["coding"][0]["code"] == "80314008"
        assert obs["method"]["coding"][0]["system"] == "http://snomed.info/sct"
        value = obs["valueQuantity"]
        assert (value["system"], value["code"], value["unit"]) == (
            "http://unitsofmeasure.org", "kPa", "kPa")  # fmt: skip
        assert obs["device"]["reference"].startswith("urn:uuid:")
    censored = [o for o in codes["ppt"] if "comparator" in o["valueQuantity"]]
    assert [o["valueQuantity"]["comparator"] for o in censored] == [">="]
    bounds = [o for o in codes["ppt-z"] if "comparator" in o["valueQuantity"]]
    assert [o["valueQuantity"]["comparator"] for o in bounds] == ["<="]
    for patient in by_type["Patient"]:
        assert "name" not in patient and "birthDate" not in patient
        assert patient["identifier"][0]["value"] in ("P-0042", "P-0107")
    contraindicated = [s for s in by_type["ServiceRequest"] if s["doNotPerform"]]
    assert len(contraindicated) == 1
    assert {p["status"] for p in by_type["Procedure"]} == {"completed", "not-done"}
    assert {s["intent"] for s in by_type["ServiceRequest"]} == {"proposal"}
    # references resolve inside the bundle; identifiers and fullUrls are unique
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    for path, value in _walk(resources):
        if path and path[-1] == "reference":
            assert value in full_urls
    identifiers = [(r["identifier"][0]["system"], r["identifier"][0]["value"]) for r in resources]
    assert len(set(identifiers)) == len(identifiers)
    for entry in bundle["entry"]:
        request = entry["request"]
        assert request["method"] == "POST" and request["url"] == entry["resource"]["resourceType"]
        system, value = identifiers[bundle["entry"].index(entry)]
        assert request["ifNoneExist"] == "identifier=%s|%s" % (system, value)


def test_every_local_code_in_the_bundle_is_defined_in_its_code_system(bundle):
    defined = {
        (cs["url"], concept["code"])
        for cs in fhir_export.code_systems()
        for concept in cs["concept"]
    }
    base = fhir_export.DEFAULT_SYSTEM_BASE + "/CodeSystem/"
    used = set()
    for _path, value in _walk(bundle):
        if isinstance(value, dict) and str(value.get("system", "")).startswith(base):
            if not value["system"].endswith("/dosage-rule"):
                used.add((value["system"], value["code"]))
    assert used and used <= defined


def test_the_same_export_twice_is_the_same_bundle(clinic_db, bundle):
    db, _run, _path = clinic_db
    assert fhir_export.bundle(visits.load(db), tz=UTC, now_s=clinic.START_S)[0] == bundle


# --- report ---------------------------------------------------------------------------------


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "data", "poster", "background"):
                self.urls.append(value or "")


def test_report_pngs_and_a_self_contained_html_page(clinic_db, tmp_path):
    db, _run, _path = clinic_db
    data = visits.load(db, patient="P-0042")
    paths = report.build(data, "P-0042", str(tmp_path), tz=UTC, now_s=clinic.START_S)
    names = sorted(os.path.basename(p) for p in paths)
    assert names == sorted([name for name, _t, _c in report.CHARTS] + ["report.html"])
    for path in paths[:-1]:
        with open(path, "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(tmp_path / "report.html", encoding="utf-8") as handle:
        page = handle.read()
    links = _Links()
    links.feed(page)
    assert links.urls and all(url.startswith("data:image/png;base64,") for url in links.urls)
    assert "script" not in links.tags and "link" not in links.tags and "iframe" not in links.tags
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)  # base64 has "//"
    assert "http:" not in text and "https:" not in text and "//" not in text
    assert "url(" not in text and "@import" not in text
    assert "not a validated medical device" in page
    assert len(links.urls) == len(paths) - 1


def test_a_report_without_side_to_side_leaves_that_chart_out(clinic_db, tmp_path):
    db, _run, _path = clinic_db
    paths = report.build(visits.load(db, patient="P-0107"), "P-0107", str(tmp_path), tz=UTC)
    assert "side_to_side.png" not in [os.path.basename(p) for p in paths]
    with open(tmp_path / "report.html", encoding="utf-8") as handle:
        assert "Nothing to show for this patient" in handle.read()


def test_the_reference_band_edges_are_z_plus_and_minus_1_96():
    table = report.reference_table()
    for site, sex in (("upper_trapezius", "F"), ("thenar", "M"), ("masseter", "F")):
        low, high, row_id = report.band_kpa(table, site, sex, 40)
        row = qst.find_row(table, site, sex, 40)
        assert row_id == row["id"]
        # the unit's own z at the band's edges (kPa x 10)
        assert qst.z_x100(int(round(low * 10)), row) == pytest.approx(196, abs=1)
        assert qst.z_x100(int(round(high * 10)), row) == pytest.approx(-196, abs=1)
    assert report.band_kpa(table, "lumbar_paraspinal", "F", 40) is None


def test_a_report_of_an_unknown_patient_is_refused(clinic_db, tmp_path):
    db, _run, _path = clinic_db
    with pytest.raises(report.ReportError):
        report.build(visits.load(db), "P-9999", str(tmp_path))


# --- the commands ---------------------------------------------------------------------------


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "host_sync", *args], capture_output=True, text=True, timeout=120
    )


def test_export_and_report_commands(clinic_db, tmp_path):
    _db, _run, path = clinic_db
    done = _cli("export", "--db", path, "--format", "csv", "--out", str(tmp_path / "csv"))
    assert done.returncode == 0, done.stderr
    assert "trials.csv 24 rows" in done.stdout
    assert "28 repaired" in done.stdout and "2 unknown" in done.stdout
    done = _cli("export", "--db", path, "--format", "fhir", "--patient", "p-0107",
                "--out", str(tmp_path / "b.json"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "b.json", encoding="utf-8") as handle:
        Bundle.parse_obj(json.load(handle))
    done = _cli("report", "--db", path, "--patient", "P-0042", "--out", str(tmp_path / "r"))
    assert done.returncode == 0 and (tmp_path / "r" / "report.html").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--since", "last week"), "--since: a date as YYYY-MM-DD"),
        (("--patient", "SMITH"), "--patient: a patient code"),
        (("--patient", "P-9999"), "no visits of patient P-9999"),
        (("--unit", "psi"), "unit: one of kPa"),
    ],
)
def test_export_mistakes_get_one_line_and_exit_2(clinic_db, tmp_path, args, message):
    _db, _run, path = clinic_db
    done = _cli("export", "--db", path, "--format", "csv", "--out", str(tmp_path), *args)
    assert done.returncode == 2
    assert done.stderr.startswith("error: " + message) and done.stderr.count("\n") == 1


def test_no_database_is_one_line_not_a_new_empty_file(tmp_path):
    missing = tmp_path / "none.db"
    done = _cli("report", "--db", str(missing), "--patient", "P-0042", "--out", str(tmp_path))
    assert done.returncode == 2 and "no database at" in done.stderr
    assert not missing.exists()


# --- the guide's pictures -------------------------------------------------------------------


def test_every_picture_the_docs_show_exists():
    from simulator import REPO_DIR

    pages = [REPO_DIR / "README.md", *sorted((REPO_DIR / "docs").glob("*.md"))]
    shown = []
    for page in pages:
        for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text(encoding="utf-8")):
            shown.append(target)
            assert (page.parent / target).is_file(), (page.name, target)
    assert "docs/images/screen_recommendation.png" in shown  # the README's picture


def test_the_guides_screens_are_what_the_firmware_draws_now():
    from simulator import REPO_DIR, display, docs_images

    for name, buf in docs_images.screens():
        committed = display.read_png(REPO_DIR / "docs" / "images" / name)
        assert display.differences(committed, buf) == [], name + ": run `make docs-images`"

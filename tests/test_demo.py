"""`python -m simulator demo`: one clinic visit on the virtual unit (the firmware's real
main.run and app.App on the simulator's board) beside a laptop on the simulator's Bluetooth
(the real host_sync through bleak), end to end in a temporary directory, on both runtimes:
the story a clinician reads, a PNG of every screen, records on flash that equal what the
screens showed, and the same records in the laptop's database."""

import json
import sqlite3

import pytest
from simcli import simulator

from simulator import display
from simulator.runtime import RUNTIMES

# simulator/harness/demo.py: the thresholds the patient's stop button marks (kPa x 10)
THRESHOLDS = ((1503, 1561, 1486), (1312, 1259, 1348))


@pytest.fixture(scope="module", params=RUNTIMES)
def demo(request, tmp_path_factory):
    runtime = request.param
    out_dir = tmp_path_factory.mktemp("demo-" + runtime)
    proc = simulator("demo", "--out", str(out_dir), "--runtime", runtime)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((out_dir / "visit.json").read_text())
    return {"proc": proc, "out_dir": out_dir, "data": data, "runtime": runtime}


def test_the_demo_tells_the_visit_in_words(demo):
    proc = demo["proc"]
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for words in (
        "The clinician opens the pairing window on the unit",
        "$ python -m host_sync pair",
        "the unit has the list: 3 patients",
        "pushed its patient list (K-0007, P-0042, A-1003) and set the clock",
        "Patient P-0042 chosen from the list: 47 y, F",
        "Factors ticked today: high stress.",
        "Site plan: upper trapezius R (to be needled), thenar R (remote reference).",
        "Upper trapezius R: the probe held still in the air",
        "  Trial 3: pressed at",
        "  Result: PPT 151.0 kPa, CV 2.6 %, z +2.01: sensitised.",
        "Recommendation (dose OK): 0.16 mm needles, 5 of them, superficial, basic insertion.",
        "Dose given: as recommended",
        "$ python -m host_sync pull --db",
        "19 records received, 19 new",
        "Stored on the unit's flash: 19 records",
        "on flash equal what the screens showed. The laptop has them all.",
    ):
        assert words in text, words
    assert "{" not in text and "NOT" not in text  # no raw JSON, nothing unsaved
    assert "(%s)." % demo["runtime"] in text


def test_the_laptops_database_holds_the_visit_as_the_screens_showed_it(demo):
    db = sqlite3.connect(demo["out_dir"] / "algodose.db")
    counts = dict(db.execute("SELECT type, count(*) FROM records GROUP BY type"))
    assert counts == {"event": 2, "session": 1, "trial": 6, "curve": 6, "site": 2,
                      "recommendation": 1, "dose": 1}  # fmt: skip
    shown = demo["data"]["shown"]
    rec = db.execute(
        "SELECT gauge_mm, needles, depth, manipulation, adjuncts, status, rules"
        " FROM recommendation_records"
    ).fetchone()
    assert [rec[0], rec[1], rec[2], rec[3], json.loads(rec[4]), rec[5], json.loads(rec[6])] == (
        shown["recommendation"]
    )
    dose = db.execute(
        "SELECT gauge_mm, needles, depth, manipulation, adjuncts FROM dose_records"
    ).fetchone()
    assert [dose[0], dose[1], dose[2], dose[3], json.loads(dose[4])] == shown["dose"]
    trials = [r[0] for r in db.execute("SELECT ppt_kpa_x10 FROM trial_records ORDER BY seq")]
    assert trials == shown["trials"]
    (code,) = db.execute("SELECT code FROM session_records").fetchone()
    assert code == "P-0042"


def test_every_screen_shown_has_a_png_and_the_sheet_holds_them_all(demo):
    out_dir = demo["out_dir"]
    names = demo["data"]["screens"]
    assert len(names) >= 25
    assert names[0] == "01-home" and names[-1].endswith("-home")
    assert any(name.endswith("-pairing") for name in names)
    for wanted in ("patients", "factors", "contraindications", "plan", "site_result-1",
                   "recommendation-1", "dose", "aftercare-1"):  # fmt: skip
        assert any(name.endswith("-" + wanted) for name in names), wanted
    for name in names:
        buf = display.read_png(out_dir / (name + ".png"))
        assert any(buf), name  # something is lit on every screen
    assert "%d screens" % len(names) in demo["proc"].stdout
    with display.Image.open(out_dir / "contact-sheet.png") as sheet:
        rows = (len(names) + 5) // 6
        assert sheet.size == (8 + 6 * (256 + 8), 8 + rows * (128 + 14 + 8))


def test_what_is_stored_equals_what_the_screens_showed(demo):
    data = demo["data"]
    assert data["match"] is True and data["stored"] == data["shown"]
    shown = data["shown"]
    # each threshold within 1 kPa of where the patient pressed stop
    pressed = THRESHOLDS[0] + THRESHOLDS[1]
    assert all(abs(s - p) <= 10 for s, p in zip(shown["trials"], pressed, strict=True))
    (local, remote) = shown["sites"]
    assert local[:2] == ["upper_trapezius", "R"] and local[5] == "high"
    assert remote[:2] == ["thenar", "R"]
    gauge, needles, depth, manipulation, adjuncts, status, rules = shown["recommendation"]
    assert (gauge, needles, depth, manipulation, adjuncts) == (0.16, 5, "superficial", "basic", [])
    assert status == "ok" and "S-LUNG-APEX" in rules
    assert shown["dose"] == [0.16, 5, "superficial", "basic", []]
    assert data["types"][:2] == ["event", "event"]  # boot, then the laptop set the clock
    assert data["events"] == [[1, 1], [3, 0]]  # power-on boot; time set
    assert data["types"].count("trial") == 6 and data["types"][-1] == "dose"
    assert data["state"] == "idle"


def test_an_unwritable_out_dir_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = simulator("demo", "--out", str(blocker / "sub"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot write the screens to ")
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""


def test_the_tui_runs_the_unit_from_keys():
    # menu (w), New visit (enter), then down twice on the patient list, quit
    proc = simulator("tui", stdin="w\nssq")
    assert proc.returncode == 0, proc.stderr
    frames = proc.stdout.split("└")
    assert len(frames) > 3  # the unit redrew as the keys came
    last = proc.stdout.rstrip().splitlines()
    assert last[-2] == "probe 0.0 kPa, pressing at 0 kPa/s | screen: patients"
    assert last[-1].startswith("w/s up/down")


def test_the_tui_presses_the_probe_and_the_stop_button():
    # harder five times: 50 kPa/s; 0.3 s between keys, so the load climbs; lifted; stop
    proc = simulator("tui", stdin="+++++0pq")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("probe ")]
    lines = [line for line in lines if "| screen:" not in line]  # a line per key
    rates = [line for line in lines if "pressing at 0 " not in line]
    assert [line.split()[-2] for line in rates] == ["10", "20", "30", "40", "50"]
    # 0.3 s at each rate: 3 + 6 + 9 + 12 kPa before the fifth key
    assert rates[-1].startswith("probe 30.")
    assert lines[-1] == "probe 0.0 kPa, pressing at 0 kPa/s"  # lifted, then stop


# --- the laptop's work on the demo's database: exports and the report ------------------------


def _host_sync(*args):
    import subprocess
    import sys

    from simulator import REPO_DIR

    return subprocess.run(
        [sys.executable, "-m", "host_sync", *args],
        capture_output=True,
        text=True,
        cwd=REPO_DIR,
        timeout=120,
    )


def test_the_demos_database_exports_to_csv_json_and_fhir_and_reports(demo, tmp_path):
    import csv

    from fhir.resources import get_fhir_model_class
    from fhir.resources.bundle import Bundle

    db = str(demo["out_dir"] / "algodose.db")
    proc = _host_sync("export", "--format", "csv", "--db", db, "--out", str(tmp_path / "csv"))
    assert proc.returncode == 0, proc.stderr
    stored = sqlite3.connect(db)
    for name, rtype in (("trials.csv", "trial"), ("sites.csv", "site"),
                        ("recommendations.csv", "recommendation")):  # fmt: skip
        with open(tmp_path / "csv" / name, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f))
        (count,) = stored.execute(
            "SELECT count(*) FROM records WHERE type = ?", (rtype,)
        ).fetchone()
        assert len(rows) == count, name
    proc = _host_sync("export", "--format", "json", "--db", db, "--out", str(tmp_path / "a.json"))
    assert proc.returncode == 0, proc.stderr
    document = json.loads((tmp_path / "a.json").read_text())
    assert json.loads(json.dumps(document)) == document
    proc = _host_sync("export", "--format", "fhir", "--db", db, "--out", str(tmp_path / "b.json"))
    assert proc.returncode == 0, proc.stderr
    bundle = json.loads((tmp_path / "b.json").read_text())
    Bundle.parse_obj(bundle)
    for entry in bundle["entry"]:
        get_fhir_model_class(entry["resource"]["resourceType"]).parse_obj(entry["resource"])
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds.count("Observation") >= 2 and "ServiceRequest" in kinds and "Device" in kinds
    proc = _host_sync("report", "--patient", "P-0042", "--db", db, "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "r" / "report.html").read_text()
    assert "P-0042" in page and "https:" not in page
    assert len(list((tmp_path / "r").glob("*.png"))) >= 3

"""`python -m simulator measure`: a scenario's clinician and patient, the unit's own visit
(core.visit) doing the rest; byte-identical on CPython and micropython; what each bundled
scenario must show. Scenarios are validated on CPython (simulator/scenario.py)."""

import json

import pytest
from simcli import simulator

from core import canonjson
from simulator import PACKAGE_DIR, scenario
from simulator.__main__ import measure_text

SCENARIOS = sorted((PACKAGE_DIR / "scenarios").glob("*.json"))


@pytest.fixture(scope="module")
def outputs():
    """Each bundled scenario on both runtimes: {name: {runtime: (code, out)}}."""
    runs = {}
    for path in SCENARIOS:
        text = path.read_text()
        runs[path.name] = {rt: measure_text(text, rt) for rt in ("cpython", "micropython")}
    return runs


@pytest.fixture(scope="module")
def results(outputs):
    return {name: json.loads(run["cpython"][1]) for name, run in outputs.items()}


def test_the_bundled_scenarios_cover_the_issue():
    names = [path.stem for path in SCENARIOS]
    for needed in ("sensitised", "robust", "too_fast", "unpowered", "stuck_high", "stuck_low"):
        assert any(needed in name for name in names), needed
    assert any("no_data_ready" in name for name in names)


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_byte_identical_on_both_runtimes(outputs, path):
    cpython = outputs[path.name]["cpython"]
    micropython = outputs[path.name]["micropython"]
    assert cpython[0] == 0, cpython[1]
    assert micropython[0] == 0, micropython[1][-500:]
    assert micropython[1] == cpython[1]
    # written piece by piece, it is still exactly the canonical serialisation
    assert cpython[1] == canonjson.dumps(json.loads(cpython[1])) + "\n"


def _site(result, name, side):
    return next(s for s in result["sites"] if s["site"] == name and s["side"] == side)


def test_ppts_match_the_pressure_profile(results):
    # Every valid trial ends within 3 kPa of the scenario's planned threshold (the trials the
    # unit asked for are the first ones the scenario lists).
    for path in SCENARIOS:
        planned = json.loads(path.read_text())
        result = results[path.name]
        for spec, site in zip(planned["sites"], result["sites"], strict=True):
            for plan, trial in zip(spec["trials"], site["trials"], strict=False):
                if trial["valid"]:
                    assert abs(trial["ppt_kpa_x10"] - plan["peak_kpa"] * 10) <= 30, path.name


def test_faults_never_become_a_reading_a_trial_or_a_z(results):
    for path in SCENARIOS:
        result = results[path.name]
        for site in result["sites"]:
            for trial in site["trials"]:
                if trial["fault"] is not None or trial["flags"] & 0x2C:  # fault/saturated/aborted
                    assert trial["valid"] is False
                if trial["flags"] & 0x2C:  # no threshold at all
                    assert trial["ppt_kpa_x10"] is None
            valid = [t["ppt_kpa_x10"] for t in site["trials"] if t["valid"]]
            if len(valid) < 2:
                assert site.get("ppt_kpa_x10") is None
                assert site.get("qst") is None or site["qst"]["z"] is None
                assert site["reason"]


def test_every_trial_and_site_is_a_record(results):
    # session + per trial a trial and a curve + per site a site record + recommendation +
    # dose, and the boot event of the store
    for path in SCENARIOS:
        result = results[path.name]
        if not result["calibration"]["ok"]:
            assert result["visit"]["records"] == 1  # the boot event only: no visit was opened
            continue
        trials = sum(len(site["trials"]) for site in result["sites"])
        curves = sum(1 for site in result["sites"] for t in site["trials"] if t["ramp_ms"])
        sites = len(result["sites"])
        expected = 1 + 1 + 1 + trials + curves + sites + 2  # boot, calibration, session, ...
        assert result["visit"]["records"] == expected, path.name


def test_sensitised(results):
    result = results["1_sensitised.json"]
    local = _site(result, "upper_trapezius", "R")
    assert local["n_valid"] == 3 and local["qst"]["category"] == "high"
    assert local["qst"]["abnormal"] is True and local["qst"]["z"] > 1.96
    assert result["summary"]["side_to_side"][0]["flag"] is True
    assert result["summary"]["local_to_remote"]["widespread"] is True
    assert result["summary"]["dosage_qst"] == {"z": local["qst"]["z"]}
    rec = result["visit"]["recommendation"]
    assert (rec["depth"], rec["manipulation"], rec["gauge_mm"]) == ("superficial", "basic", 0.16)
    assert "Q-HIGH" in rec["rules"] and "S-LUNG-APEX" in rec["rules"]


def test_robust_with_censored_trials(results):
    result = results["2_robust.json"]
    local = _site(result, "infraspinatus", "R")
    assert [t["end"] for t in local["trials"]] == ["stop", "ceiling", "stop"]
    assert local["trials"][1]["qc"] == ["censored"]
    assert (local["n_valid"], local["n_censored"], local["censored"]) == (2, 1, True)
    # the mean of the two uncensored trials would be biased low: a bound instead, said so
    valid = [t["ppt_kpa_x10"] for t in local["trials"] if t["valid"]]
    assert local["ppt_kpa_x10"] is None and local["ppt_min_kpa_x10"] > sum(valid) // 2
    assert local["reason"].startswith("1 of 3 trials censored at the ceiling: the site value is")
    assert local["qst"]["z"] is None and local["qst"]["z_max"] <= -1.0
    assert local["qst"]["category"] == "low"
    assert result["summary"]["dosage_qst"] == {"z": local["qst"]["z_max"], "censored": True}
    # a censored site is never proof of robustness for the dosage rules
    assert "Q-CENSORED" in result["visit"]["recommendation"]["rules"]
    assert result["visit"]["recommendation"]["gauge_mm"] != 0.30
    left = _site(result, "infraspinatus", "L")
    assert [t["qc"] for t in left["trials"]] == [["censored"]] * 3
    assert (left["n_valid"], left["n_censored"]) == (0, 3)
    assert 10000 <= left["ppt_min_kpa_x10"] <= 10010
    thenar = _site(result, "thenar", "R")
    assert [t["end"] for t in thenar["trials"]] == ["release"] * 3
    assert thenar["qst"]["category"] == "low" and thenar["censored"] is False
    assert result["summary"]["local_to_remote"]["widespread"] is False


def test_very_sensitised_patients_get_site_values(results):
    # PPTs of 40-58 kPa: ramps of 0.6-1 s from the 10 kPa onset at 50 kPa/s, all valid
    result = results["9_very_sensitised.json"]
    for site in result["sites"]:
        assert site["n_valid"] == 3 and site["ppt_kpa_x10"] is not None, site["reason"]
        assert all(t["ramp_ms"] < 1000 for t in site["trials"])
        assert site["qst"]["category"] == "high" and site["qst"]["z"] > 3.5
    thenar = _site(result, "thenar", "R")
    assert thenar["qst"]["age_note"] == "reference age about 30; patient 58"
    assert _site(result, "upper_trapezius", "R")["qst"]["age_note"] is None  # 18-65 band
    assert result["summary"]["local_to_remote"]["widespread"] is True
    assert result["summary"]["sensor"]["faults"] == 0  # the bridge at zero is not a fault


def test_the_calibration_id_and_span_are_in_the_output(results):
    for name, chip in (("1_sensitised.json", 215000), ("2_robust.json", 198000)):
        calibration = results[name]["calibration"]
        planned = json.loads((PACKAGE_DIR / "scenarios" / name).read_text())
        assert calibration["cal_id"] == planned["calibration"]["cal_id"]
        assert abs(calibration["counts_per_kg"] - chip) <= chip // 1000
    assert results["5_fault_unpowered.json"]["calibration"]["counts_per_kg"] is None


def test_too_fast(results):
    result = results["3_too_fast.json"]
    fast = _site(result, "masseter", "R")
    assert [t["qc"] for t in fast["trials"]] == [["rate"]] * 3
    assert all(t["on_target_pct"] == 0 for t in fast["trials"])
    assert fast["ppt_kpa_x10"] is None
    assert fast["reason"] == "2 valid trials needed, 0 of 3 valid (3 rate out of tolerance)"
    assert _site(result, "masseter", "L")["qst"]["category"] == "normal"
    assert result["summary"]["dosage_qst"] is None


def test_no_reference_row(results):
    result = results["4_no_reference.json"]
    for site in result["sites"]:
        assert site["ppt_kpa_x10"] is not None and site["qst"]["z"] is None
        assert site["qst"]["reason"].startswith("no reference row for")
    summary = result["summary"]
    assert summary["side_to_side"][0]["flag"] is True
    assert summary["local_to_remote"]["ratio_pct_x10"] < 1000
    assert summary["local_to_remote"]["widespread"] is None


def test_fault_unpowered_stops_at_calibration(results):
    result = results["5_fault_unpowered.json"]
    assert result["calibration"]["ok"] is False
    assert result["calibration"]["error"].startswith("tare: sensor fault unpowered")
    assert result["sites"][0]["trials"] == []
    assert result["sites"][0]["reason"] == "not measured: no calibration"
    assert result["visit"]["recommendation"] is None
    assert result["summary"]["sensor"]["faults"] > 0


def test_fault_stuck_high_stops_the_trials_until_the_sensor_recovers(results):
    # r1 of the harness ran a third trial on the stuck sensor; the unit now waits for good
    # readings before it arms a trial, so the clinician moves on with what the site has
    site = results["6_fault_stuck_high.json"]["sites"][0]
    assert [t["qc"] for t in site["trials"]] == [[], ["saturated"]]
    assert [t["fault"] for t in site["trials"]] == [None, "rail_high"]
    assert site["ppt_kpa_x10"] is None


def test_fault_stuck_low_before_a_site_skips_it(results):
    result = results["7_fault_stuck_low.json"]
    assert _site(result, "infraspinatus", "L")["n_valid"] == 3
    thenar = _site(result, "thenar", "L")
    assert thenar["trials"] == []
    assert thenar["reason"] == (
        "skipped before any trial: zero: sensor fault rail_low; check the load cell cable and "
        "the HX711"
    )
    assert result["summary"]["local_to_remote"]["ratio_pct_x10"] is None


def test_fault_no_data_ready(results):
    site = results["8_fault_no_data_ready.json"]["sites"][0]
    assert [t["qc"] for t in site["trials"]] == [[], ["fault"], [], []]
    assert site["trials"][1]["fault"] == "no_data_ready"
    assert site["n_valid"] == 3 and site["ppt_kpa_x10"] is not None


_SITE = '{"site": "thenar", "trials": [{"rate_kpa_s": 50, "peak_kpa": 200}]}'
BAD = [
    ("[]", 'scenario: an object with a "title" (text) and "sites" (got [])'),
    ('{"title": "t"}', "sites: a list of 1 to 8 sites (got null)"),
    ('{"title": "", "sites": []}', 'title: text, 1 to 100 characters (got "")'),
    ('{"title": "t", "note": 7, "sites": []}', "note: text, 1 to 1000 characters (got 7)"),
    (
        '{"title": "t", "protocol": {"onset_kpa": 50, "ceiling_kpa": 40}, "sites": [%s]}' % _SITE,
        "protocol.ceiling_kpa: a number from 100 to 2000 (got 40)",
    ),
    ('{"title": "t", "chip": {"seed": NaN}, "sites": [%s]}' % _SITE, "the scenario is not valid"),
    ('{"title": "t", "sites": [%s]}' % ",".join([_SITE] * 9), "sites: a list of 1 to 8 sites"),
    (
        '{"title": "t", "sites": [{"site": "thenar", "trials": [%s]}]}'
        % ",".join(['{"rate_kpa_s": 50, "peak_kpa": 200}'] * 7),
        "sites[0].trials: a list of 1 to 6 trials",
    ),
    ('{"title": "t", "sites": [], "extra": 1}', "scenario: fields title, note, patient, chip, "),
    ('{"title": "t", "patient": {"fault": 1}}', "patient: fields sex, age, conditions"),
    ('{"title": "t", "chip": {"seed": true}}', "chip.seed: a whole number from 0 to 4294967295"),
    (
        '{"title": "t", "sites": [{"site": "thenar", "trials": [{"peak_kpa": 200}]}]}',
        "sites[0].trials[0].rate_kpa_s: required",
    ),
    (
        '{"title": "t", "protocol": {"tolerance_pct": 20.5}, "sites": [%s]}' % _SITE,
        "protocol.tolerance_pct: a whole number from 5 to 50 (got 20.5)",
    ),
    (
        '{"title": "t", "sites": [{"site": "thenar", "trials": [{"rate_kpa_s": 50,'
        ' "peak_kpa": 200, "fault": {"kind": "gremlins"}}]}]}',
        "sites[0].trials[0].fault.kind: one of unpowered, no_data_ready, stuck_high, stuck_low",
    ),
    (
        '{"title": "t", "sites": [{"site": "big_toe", "trials": []}]}',
        "sites[0].site: one of thenar, masseter, upper_trapezius, infraspinatus",
    ),
    (
        '{"title": "t", "sites": [%s, %s]}' % (_SITE, _SITE),
        'sites[1].site: each site and side once (got "thenar ")',
    ),
    ('{"title": ', "the scenario is not valid JSON"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_bad_scenarios_give_one_error_line(text, message):
    code, line = measure_text(text, "micropython")
    assert code == 2 and line.startswith("error: " + message), line
    assert "\n" not in line


def test_every_bundled_scenario_parses_to_a_plan_the_firmware_takes():
    for path in SCENARIOS:
        plan = scenario.load(path.read_text())
        assert plan["settings"]["min_valid"] <= 3 and plan["sites"]


def cli(*args):
    return simulator("measure", *args)


def test_cli_prints_the_results():
    proc = cli("--scenario", str(SCENARIOS[0]))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["sites"][0]["qst"]["category"] == "high"
    assert cli("--scenario", str(SCENARIOS[0]), "--runtime", "micropython").stdout == proc.stdout


@pytest.mark.parametrize(
    "path, message",
    [
        ("no/such.json", "error: scenario file no/such.json not found; try "),
        ("simulator", "error: simulator is a directory; give one scenario file"),
    ],
)
def test_cli_file_errors(path, message):
    proc = cli("--scenario", path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1


def test_cli_bad_scenario(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(
        '{"title": "t", "sites": [{"site": "thenar", "trials": [{"rate_kpa_s": 900}]}]}'
    )
    proc = cli("--scenario", str(bad))
    assert proc.returncode == 2
    assert proc.stderr == ("error: sites[0].trials[0].peak_kpa: required (got null)\n")

"""`python -m simulator measure`: scenarios through fake chip -> driver -> scale -> trials -> QST,
byte-identical on CPython and micropython; what each bundled scenario must show."""

import json

import pytest
from simcli import simulator

from core import canonjson
from simulator import PACKAGE_DIR, QST_REFERENCE
from simulator.harness.measure import (
    HEAPSIZE,
    MAX_NOTE,
    MAX_SITE_NAME,
    MAX_SITES,
    MAX_TITLE,
    MAX_TRIALS,
)
from simulator.runtime import HARNESS_DIR, precompiled_dir, run_harness, run_micropython

SCENARIOS = sorted((PACKAGE_DIR / "scenarios").glob("*.json"))
REFERENCE = QST_REFERENCE
ARGS = ["--reference", str(REFERENCE)]  # the CLI passes it the same way


def measure(text, runtime="cpython"):
    return run_harness("measure", stdin=text, args=ARGS, runtime=runtime, heapsize=HEAPSIZE)


def scenario_text(name):
    return (PACKAGE_DIR / "scenarios" / name).read_text()


@pytest.fixture(scope="module")
def outputs():
    """Each bundled scenario on both runtimes: {name: {runtime: (code, out, err)}}."""
    runs = {}
    for path in SCENARIOS:
        text = path.read_text()
        runs[path.name] = {"cpython": measure(text), "micropython": measure(text, "micropython")}
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
    assert cpython[0] == 0, cpython[2]
    assert micropython[0] == 0, micropython[1][-500:] + micropython[2]
    assert micropython[1] == cpython[1]
    # written piece by piece, it is still exactly the canonical serialisation
    assert cpython[1] == canonjson.dumps(json.loads(cpython[1])) + "\n"


def _trials(result):
    for site in result["sites"]:
        yield from site["trials"]


def _site(result, name, side):
    return next(s for s in result["sites"] if s["site"] == name and s["side"] == side)


def test_ppts_match_the_pressure_profile(results):
    # Every valid trial ends within 3 kPa of the scenario's planned threshold.
    for path in SCENARIOS:
        scenario = json.loads(path.read_text())
        result = results[path.name]
        for spec, site in zip(scenario["sites"], result["sites"], strict=True):
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
                if trial["flags"] & 0x28:  # sensor fault or aborted: no threshold at all
                    assert trial["ppt_kpa_x10"] is None
            valid = [t["ppt_kpa_x10"] for t in site["trials"] if t["valid"]]
            if len(valid) < 2:
                assert site["ppt_kpa_x10"] is None and site["qst"]["z"] is None
                assert site["reason"]


def test_sensitised(results):
    result = results["1_sensitised.json"]
    local = _site(result, "upper_trapezius", "R")
    assert local["n_valid"] == 3 and local["qst"]["category"] == "high"
    assert local["qst"]["abnormal"] is True and local["qst"]["z"] > 1.96
    assert result["summary"]["side_to_side"][0]["flag"] is True
    assert result["summary"]["local_to_remote"]["widespread"] is True
    assert result["summary"]["dosage_qst"] == {"z": local["qst"]["z"]}


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
    # every trial at the ceiling: not "no value" but certainly robust
    left = _site(result, "infraspinatus", "L")
    assert [t["qc"] for t in left["trials"]] == [["censored"]] * 3
    assert (left["n_valid"], left["n_censored"]) == (0, 3)
    assert 10000 <= left["ppt_min_kpa_x10"] <= 10010
    assert left["reason"].startswith("3 of 3 trials censored at the ceiling: the site value")
    assert left["qst"]["category"] == "low" and left["qst"]["z_max"] < -1.0
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
    # What the app logs in its calibration event before the trials (a = id, b = counts/kg)
    for name, chip in (("1_sensitised.json", 215000), ("2_robust.json", 198000)):
        calibration = results[name]["calibration"]
        assert calibration["cal_id"] == json.loads(scenario_text(name))["calibration"]["cal_id"]
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
    assert result["summary"]["sensor"]["faults"] > 0


def test_fault_stuck_high(results):
    trials = results["6_fault_stuck_high.json"]["sites"][0]["trials"]
    assert [t["qc"] for t in trials] == [[], ["saturated"], ["fault", "aborted"]]
    assert [t["fault"] for t in trials] == [None, "rail_high", "rail_high"]


def test_fault_stuck_low(results):
    result = results["7_fault_stuck_low.json"]
    assert _site(result, "infraspinatus", "L")["n_valid"] == 3
    thenar = _site(result, "thenar", "L")
    assert [t["fault"] for t in thenar["trials"]] == ["rail_low"] * 3
    assert result["summary"]["local_to_remote"]["ratio_pct_x10"] is None


def test_fault_no_data_ready(results):
    site = results["8_fault_no_data_ready.json"]["sites"][0]
    assert [t["qc"] for t in site["trials"]] == [[], ["fault"], [], []]
    assert site["trials"][1]["fault"] == "no_data_ready"
    assert site["n_valid"] == 3 and site["ppt_kpa_x10"] is not None


LIVE_DATA = r"""
import gc, sys
import measure
gc.collect()
code_bytes = gc.mem_alloc()
scenario, table, error = measure._prepare(sys.stdin.read(), "%s")
worst = [0]


def write(text):
    gc.collect()
    worst[0] = max(worst[0], gc.mem_alloc() - code_bytes)


measure.measure(scenario, table, write)
print(code_bytes, worst[0])
"""

# Measured 16 KB on the 64-bit unix port (2026-11), where objects are about twice their size
# on a 32-bit board: the table, the unit's buffers, one site's trials with their traces.
DATA_BUDGET_BYTES = 20 * 1024


def test_live_data_fits_a_board_heap():
    # On a board the code is frozen in flash; what the heap must hold is the data. Measured
    # as live bytes above the loaded code, at every write, for the biggest scenario.
    proc = run_micropython(
        code=LIVE_DATA % REFERENCE,
        stdin=scenario_text("1_sensitised.json"),
        heapsize="512K",
        extra_path=[precompiled_dir(HARNESS_DIR)],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    code_bytes, data_bytes = (int(v) for v in proc.stdout.split())
    assert 0 < data_bytes <= DATA_BUDGET_BYTES, (code_bytes, data_bytes)


_SITE = '{"site": "thenar", "trials": [{"rate_kpa_s": 50, "peak_kpa": 200}]}'
BAD = [
    ("[]", 'scenario: an object with a "title" (text) and "sites" (got [])'),
    ('{"title": "t"}', "sites: a list of 1 to 8 sites (got null)"),
    ('{"title": "", "sites": []}', 'title: text, 1 to 100 characters (got "")'),
    ('{"title": "t", "note": 7, "sites": []}', "note: text, 1 to 1000 characters (got 7)"),
    (
        '{"title": "t", "protocol": {"onset_kpa": 50, "ceiling_kpa": 40}, "sites": [%s]}' % _SITE,
        "protocol.ceiling_kpa: above protocol.onset_kpa, 50 (got 40)",
    ),
    (
        '{"title": "t", "protocol": {"onset_kpa": 20, "ceiling_kpa": 20}, "sites": [%s]}' % _SITE,
        "protocol.ceiling_kpa: above protocol.onset_kpa, 20 (got 20)",
    ),
    ('{"title": "t", "chip": {"seed": NaN}, "sites": [%s]}' % _SITE, "the scenario is not valid"),
    ('{"title": "t", "note": -Infinity, "sites": [%s]}' % _SITE, "the scenario is not valid JSON"),
    ('{"title": "t", "sites": [%s]}' % ",".join([_SITE] * 9), "sites: a list of 1 to 8 sites"),
    (
        '{"title": "t", "sites": [{"site": "thenar", "trials": [%s]}]}'
        % ",".join(['{"rate_kpa_s": 50, "peak_kpa": 200}'] * 7),
        "sites[0].trials: a list of 1 to 6 trials",
    ),
    ('{"title": "t", "sites": [], "extra": 1}', "scenario: fields title, note, patient, chip, "),
    ('{"title": "t", "patient": {"fault": 1}}', 'patient: fields sex, age (got "fault")'),
    ('{"title": "t", "chip": {"seed": true}}', "chip.seed: a whole number from 0 to 4294967295"),
    (
        '{"title": "t", "sites": [{"site": "thenar", "trials": [{"peak_kpa": 200}]}]}',
        "sites[0].trials[0].rate_kpa_s: required",
    ),
    (
        '{"title": "t", "protocol": {"tolerance_pct": 20.5},'
        ' "sites": [{"site": "thenar", "trials": [{"rate_kpa_s": 50, "peak_kpa": 200}]}]}',
        "protocol.tolerance_pct: a whole number from 0 to 99 (got 20.5)",
    ),
    (
        '{"title": "t", "sites": [{"site": "thenar", "trials": [{"rate_kpa_s": 50,'
        ' "peak_kpa": 200, "fault": {"kind": "gremlins"}}]}]}',
        "sites[0].trials[0].fault.kind: one of unpowered, no_data_ready, stuck_high, stuck_low",
    ),
    ('{"title": ', "the scenario is not valid JSON"),
]


@pytest.mark.parametrize("text, message", BAD)
def test_bad_scenarios_give_one_error_line_on_both_runtimes(text, message):
    cpython = measure(text)
    assert cpython[0] == 2 and cpython[1] == ""
    assert cpython[2].startswith("error: " + message) and cpython[2].count("\n") == 1
    assert measure(text, "micropython") == cpython


def test_a_non_finite_number_is_not_json_on_either_runtime():
    # CPython decodes NaN and Infinity, micropython refuses them: both say the same line
    cpython = measure('{"title": "t", "chip": {"seed": NaN}}')
    assert cpython[2] == (
        "error: the scenario is not valid JSON (NaN and Infinity are not JSON either); check "
        "its brackets, commas, quotes\n"
    )
    assert measure('{"title": "t", "chip": {"seed": NaN}}', "micropython") == cpython


def test_a_span_error_names_its_step_once():
    # 100 g on a coarse 2000 counts/kg cell moves the reading by about 200 counts
    text = json.dumps(
        {
            "title": "t",
            "chip": {"counts_per_kg": 2000, "noise_counts": 0},
            "calibration": {"mass_g": 100},
            "sites": [{"site": "thenar", "trials": [{"rate_kpa_s": 50, "peak_kpa": 200}]}],
        }
    )
    result = json.loads(measure(text)[1])
    error = result["calibration"]["error"]
    assert error.startswith("span: the mass moved the reading by 2") and "span: span" not in error
    assert error.endswith("counts (need 1000): is it on the probe?")


@pytest.mark.parametrize("kind, qc", [("stuck_low", ["fault"]), ("stuck_high", ["saturated"])])
def test_the_negative_rail_while_pressing_is_a_sensor_fault(kind, qc):
    # Pressing drives the reading up: 0x7FFFFF is an overload; 0x800000 cannot come from
    # pressing (a broken bridge or wiring)
    trial = {"rate_kpa_s": 50, "peak_kpa": 300, "fault": {"kind": kind, "at_ms": 2000}}
    text = json.dumps({"title": "t", "sites": [{"site": "thenar", "trials": [trial]}]})
    result = json.loads(measure(text)[1])["sites"][0]["trials"][0]
    assert result["qc"] == qc and result["ppt_kpa_x10"] is None
    assert result["end"] == ("fault" if kind == "stuck_low" else "saturated")


def largest_scenario():
    """The largest scenario the parser accepts: every site and trial, every optional field,
    the longest texts, and plenty of whitespace. Short ramps keep it quick to run; the bridge
    reads near zero at rest (offset 0), so raw codes of -1 come now and then."""
    trial = {
        "rate_kpa_s": 50,
        "peak_kpa": 45,
        "end": "release",
        "fault": {"kind": "no_data_ready", "at_ms": 0, "for_ms": 1},
    }
    sites = []
    for index in range(MAX_SITES):
        name = ("site%d_" % index + "x" * MAX_SITE_NAME)[:MAX_SITE_NAME]
        site = {"site": name, "side": "LR"[index % 2], "trials": [trial] * MAX_TRIALS}
        sites.append(site)
    sites[0]["role"], sites[1]["role"] = "local", "remote"
    scenario = {
        "title": "T" * MAX_TITLE,
        "note": "N" * MAX_NOTE,
        "patient": {"sex": "F", "age": 120},
        "chip": {"offset_counts": 0, "counts_per_kg": 215000, "noise_counts": 40, "seed": 99},
        "calibration": {
            "mass_g": 2000,
            "cal_id": 65535,
            "fault": {"kind": "no_data_ready", "at_ms": 0, "for_ms": 1},
        },
        "protocol": {
            "target_kpa_s": 50,
            "tolerance_pct": 20,
            "onset_kpa": 10,
            "ceiling_kpa": 1000,
            "min_valid": 2,
            "area_cm2": 1,
        },
        "sites": sites,
    }
    return json.dumps(scenario, indent=8)


def test_the_largest_scenario_runs_on_micropython_at_the_harness_heap():
    text = largest_scenario()
    micropython = measure(text, "micropython")
    assert micropython[0] == 0, micropython[2][-500:]
    assert micropython == measure(text)
    result = json.loads(micropython[1])
    trials = list(_trials(result))
    assert len(trials) == MAX_SITES * MAX_TRIALS
    # and none of the -1 codes of the bridge at zero became a fault
    assert all(t["valid"] for t in trials) and result["summary"]["sensor"]["faults"] == 0


def test_a_scenario_far_too_big_is_one_error_line_on_micropython():
    # The parser's limits leave room: a scenario a little over them decodes on micropython and
    # gets the parser's message (above). One far over them cannot be decoded in the heap at
    # all: micropython says so in one line where CPython names the limit.
    trial = '{"rate_kpa_s": 50, "peak_kpa": 200, "fault": {"kind": "unpowered", "at_ms": 9}}'
    site = '{"site": "thenar", "trials": [%s]}' % ",".join([trial] * 20)
    text = '{"title": "t", "sites": [%s]}' % ",".join([site] * 20)
    code, out, err = measure(text, "micropython")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("error: the scenario is too big for the unit's memory; at most 8 sites")
    assert measure(text)[2].startswith("error: sites: a list of 1 to 8 sites")


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
    assert (
        proc.stderr == "error: sites[0].trials[0].rate_kpa_s: a number from 1 to 500 (got 900)\n"
    )


def test_every_scenario_word_is_a_literal_so_the_decoder_reuses_it():
    # _WORDS lists by hand every key and choice of FIELDS, and the structural keys.
    from simulator.harness import measure

    words = {"title", "note", "sites", "site", "trials", "fault"}
    for line in measure.FIELDS.strip().splitlines():
        name, kind, allowed, _default = line.split()
        section, key = name.split(".")
        words.add(key)
        if section not in ("site", "trial", "fault"):
            words.add(section)  # a top-level object
        if kind == "one":
            words.update(allowed.split(","))
    assert sorted(words - set(measure._WORDS)) == []

"""`python -m simulator measure`: scenarios through fake chip -> driver -> scale -> trials -> QST,
byte-identical on CPython and micropython; what each bundled scenario must show."""

import json
import subprocess
import sys

import pytest

from core import canonjson
from simulator import PACKAGE_DIR, REPO_DIR
from simulator.harness.measure import HEAPSIZE
from simulator.runtime import HARNESS_DIR, run_harness, run_micropython

SCENARIOS = sorted((PACKAGE_DIR / "scenarios").glob("*.json"))
REFERENCE = REPO_DIR / "firmware" / "data" / "qst_reference.json"
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


def test_robust_with_a_censored_trial(results):
    result = results["2_robust.json"]
    local = _site(result, "infraspinatus", "R")
    assert [t["end"] for t in local["trials"]] == ["stop", "ceiling", "stop"]
    assert local["trials"][1]["qc"] == ["censored"] and local["n_valid"] == 2
    assert local["qst"]["category"] == "low"
    thenar = _site(result, "thenar", "R")
    assert [t["end"] for t in thenar["trials"]] == ["release"] * 3
    assert thenar["qst"]["category"] == "low"
    assert result["summary"]["local_to_remote"]["widespread"] is False


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
        extra_path=[HARNESS_DIR],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    code_bytes, data_bytes = (int(v) for v in proc.stdout.split())
    assert 0 < data_bytes <= DATA_BUDGET_BYTES, (code_bytes, data_bytes)


BAD = [
    ("[]", 'scenario: an object with a "title" (text) and "sites" (got [])'),
    ('{"title": "t"}', "sites: a list of 1 to 20 sites (got null)"),
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


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "simulator", "measure", *args],
        cwd=REPO_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


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

"""The virtual unit (tests/both/unit_cases.py): the firmware's real main.run and app.App,
driven only by buttons, the probe and the stop button, on every path through a visit; the
screens' text, the states and what is on flash, each against values stated here. The paths
that exercise the app's own machinery (crash, watchdog, storage recovery, sensor fault,
calibration, abort, override) run on both runtimes; the rest on CPython."""

import json

import pytest

from core import canonjson
from core.nav import SCREEN_NAMES, VISIT_VIEWS

EV_BOOT, EV_OVERRIDE, EV_CALIBRATION, EV_EXCLUDED, EV_ABORT, EV_CRASH = 1, 4, 6, 7, 8, 9
PWRON, WDT, SOFT = 1, 3, 5


_RESULTS = {}


def cpython(case):
    """The case's result on CPython (once per session)."""
    if case not in _RESULTS:
        _RESULTS[case] = canonjson.dumps(getattr(__import__("unit_cases"), case)())
    return json.loads(_RESULTS[case])


@pytest.fixture
def both(both_runtimes):
    def run(case):
        return both_runtimes("unit_cases." + case, heapsize="1M")

    return run


def footer(rows):
    return rows[-1]


def test_contraindicated_without_override_gives_no_dose_and_records_none():
    out = cpython("contraindicated_without_override")
    contra = out["contraindications"]
    assert contra[1] == "NO NEEDLING: 1 open"
    assert contra[2].endswith("needle phobia") and contra[3] == "  override: no"
    assert out["recommendation"][:2] == ["CONTRAINDICATED   1/3", "NO DOSE"]
    assert "! Avoid needling:" in out["recommendation"]
    assert out["dose"][1] == "No needling today" and out["dose"][2] == ""  # the only row
    assert out["aftercare"][1:3] == ["- No needles today:", "  no after-care."]
    assert out["dose_record"] == [[None, None]]
    assert out["session"] == [["needle_phobia"]]


def test_an_override_is_recorded_and_gives_the_minimal_dose(both):
    out = both("contraindicated_with_override")
    contra = out["contraindications"]
    assert contra[1] == "Minimal dose only" and "  override: YES" in contra
    assert out["dose"] == ["contraindicated", 5, "superficial", ["lymphedema"]]
    assert out["recommendation"][1] == "0.16 mm            5"
    assert out["session"] == [[["lymphedema"], ["lymphedema"]]]
    # EV_OVERRIDE: detail = the index of lymphedema in core.vocab.CONTRAINDICATIONS (2),
    # a = the session start's seq (2, after the boot event)
    assert out["events"] == [[EV_BOOT, PWRON, 0], [EV_OVERRIDE, 2, 2]]


def test_storage_full_is_said_before_anything_is_ticked():
    out = cpython("storage_full")
    assert out["name"] == "notice"
    assert out["screen"][0] == "STORAGE FULL" and out["screen"][1] == "Sync with the laptop"
    assert footer(out["screen"]) == "ok          hold:back"
    assert out["after"] == "home" and out["types"] == ["event"]  # nothing stored but the boot


def test_a_sensor_fault_mid_trial_says_what_to_do_and_the_trial_is_taken_again(both):
    out = both("sensor_fault_mid_trial")
    assert out["sensor"][1:2] == ["SENSOR"]
    assert "Sensor fault: check" in out["sensor"]
    assert [t[:2] for t in out["trials"]] == [[1, "stop"], [2, "fault"], [3, "stop"], [4, "stop"]]
    assert out["trials"][1][2] is None  # a fault is never a reading
    # where the patient pressed stop (kPa x 10), within 1.5 kPa (the filter's lag)
    for (_n, _end, ppt), pressed in zip(out["trials"], (2400, None, 2450, 2420), strict=True):
        assert pressed is None or abs(ppt - pressed) <= 15


def test_calibration_runs_from_the_refused_visit_and_survives_a_power_cut(both):
    out = both("calibration_from_settings")
    assert out["refused"][0] == "CALIBRATE FIRST"
    assert footer(out["refused"]) == "ok:settings hold:back"
    assert out["mass"][0] == "Settings          7/8"
    assert out["mass"][6].startswith("Calibrate  \x01\x02 1000 g")
    assert out["tare"][0:2] == ["Calibrate         1/3", "Hold still"]
    assert out["put_mass"][1] == "Mass on" and "Put the 1000 g mass" in out["put_mass"]
    assert out["done"][1] == "Calibrated" and footer(out["done"]).startswith("ok ")
    span = int(out["done"][3].split()[1])
    assert abs(span - 215000) <= 200  # the chip's 215000 counts per kg
    assert out["events"] == [[EV_BOOT, PWRON, 0], [EV_CALIBRATION, 0, 1]]
    assert out["kept"] == [1, 1000, True]


def test_ending_a_visit_asks_first_and_keeps_what_is_stored(both):
    out = both("abort_mid_visit")
    assert out["asked"][0] == "End visit?" and footer(out["asked"]) == "ok:end      hold:back"
    assert out["kept_on"] == "measurement"  # back from the question: still measuring
    assert out["ended"][0] == "Visit ended"
    assert out["types"] == ["event", "session", "trial", "curve", "event"]
    assert out["events"][-1] == [EV_ABORT, 0, 2]  # a: the session start's seq


def test_a_new_code_and_the_age_the_rules_need():
    out = cpython("code_entry_and_age")
    assert out["empty"][1:3] == ["No list from laptop", "+ new code"]
    assert out["code"][0] == "New code         2/16" and out["code"][3] == "Ready to save"
    assert out["age_asked"][1] == "Age          \x01\x02 40 y"  # continue asked for it
    assert out["age_set"] == 42 and out["factors"][1] == "Age             42 y"


def test_a_returning_patient_answers_first_and_a_lowered_dose_is_stored():
    out = cpython("returning_patient_lowered_dose")
    assert out["response"][1:3] == ["How did it go?", "Last: 0.20 mm x 6"]
    assert out["recommended"][1] == 6
    assert out["dose"][0] == "Dose given    lowered"
    assert out["dose"][3] == "Needles            5"  # never above 6, one below
    assert out["stored"] == [[5, 0.25]]
    assert out["response_record"] == ["tolerated"]
    assert out["history"] == [3, [3, 5, 0, 1]]  # the table's next visit starts from here
    # after a power cut the table comes back from flash (the laptop's list format)
    assert out["table"] == [["P-0042", 0, []], ["KNEE-7", 3, [3, 5, 0, 1]], ["NP-3", 0, []]]


def test_a_storage_error_is_recovered_and_the_trial_saved_then(both):
    out = both("storage_error_recovered")
    assert out["failed"][0] == "STORAGE ERROR     1/2"
    assert footer(out["failed"]) == "ok:retry    hold:back"
    assert out["saved_then"] is False and out["saved_after"] is True
    assert out["trials"] == out["shown"] and abs(out["trials"][0] - 2400) <= 15


def test_a_store_full_mid_visit_is_retried_without_a_remount():
    out = cpython("storage_full_mid_visit")
    assert out["full"][0] == "STORAGE FULL"
    assert out["retries"] is True and out["mounts"] == 0
    assert out["saved"] is True and len(out["trials"]) == 1


@pytest.mark.parametrize(
    ("case", "detail", "task"), [("memory_error_in_sampling", 1, 1), ("crash_in_ui", 2, 2)]
)
def test_a_crash_is_an_event_then_a_restart_and_nothing_stored_is_lost(both, case, detail, task):
    out = both(case)
    assert out["before"] == ["event", "session", "trial", "curve"]
    assert len(out["trials"]) == 1  # the trial stored before the crash is still there
    assert abs(out["trials"][0] - 2400) <= 15
    assert out["types"] == out["before"] + ["event", "event"]
    # EV_CRASH (detail 1 MemoryError, 2 another error; a: the task), then the soft reset
    assert out["events"][1:] == [[EV_CRASH, detail, task], [EV_BOOT, SOFT, 0]]
    assert out["restarts"] == 1


def test_a_hung_task_stops_the_watchdog_being_fed_and_the_unit_resets(both):
    out = both("watchdog_resets_a_hung_task")
    assert "not_reset" not in out
    # the board's watchdog: 8 s; fed once a second while every task checks in
    assert 8000 < out["reset_after_ms"] <= 8000 + 2000
    assert out["events"] == [[EV_BOOT, PWRON, 0], [EV_BOOT, WDT, 0]]


def test_a_crash_at_every_start_stops_the_unit_after_three_and_a_power_cycle_starts_it(both):
    out = both("crash_loop")
    assert out["restarts"] == 3 and out["stopped"] is True
    assert out["fault_shown"] is True
    assert out["fault_rows"] == [
        "UNIT FAULT",
        "It crashed at each",
        "start and stopped.",
        "Stored data is kept.",
        "If it stops again,",
        "sync by USB and get",
        "service.",
        "switch off, then on",
    ]
    crash = [EV_CRASH, 1, 1]  # MemoryError in the sampling task
    boots = [[EV_BOOT, PWRON, 0], crash, [EV_BOOT, SOFT, 0], crash, [EV_BOOT, SOFT, 0], crash]
    # Stopped, it still gives everything over USB: the store opened for the pull counts a
    # boot of its own (cause 0: no app), then the power cycle's boot.
    usb_boot = [EV_BOOT, 0, 0]
    assert out["usb_count"] == len(boots) + 1
    assert out["events"] == boots + [usb_boot, [EV_BOOT, PWRON, 0]]


def test_crashes_just_inside_the_stable_minute_count_toward_the_loop():
    out = cpython("crash_loop_just_quick")
    assert out["restarts"] == 3 and out["stopped"] is True and out["fault_shown"] is True


def test_crashes_after_the_stable_minute_restart_the_unit_each_time():
    out = cpython("crash_loop_slow")
    assert out["restarts"] == 5 and out["stopped"] is False  # the simulation's own limit
    assert out["fault_shown"] is False


def test_safe_boot_starts_no_app():
    assert cpython("safe_boot") == {"unit": True, "frames": True}


def test_pairing_and_sync_read_a_plain_object():
    out = cpython("pairing_and_sync")
    assert out["no_radio"][0:3] == ["Pairing", "There is no Bluetooth", "on this unit."]
    assert out["open"][0] == "Pairing          60 s"
    assert "run: host_sync pair." in out["open"]
    assert out["passkey"][0:3] == ["Pairing          41 s", "Type on the laptop:", " 000042"]
    assert out["calls"] == ["open", "close"]  # back closed the window
    assert out["sync"][0:3] == ["Syncing           25%", "Records sent", "10/40"]


def test_settings_changed_are_kept_and_a_change_left_with_back_is_not():
    out = cpython("settings_kept")
    assert out["editing"][2] == "Rate      \x01\x02 6.5 N/s"  # 65 kPa/s in N/s, being changed
    assert out["settings"][1] == "Units              N"
    assert out["settings"][2] == "Rate         5.0 N/s"  # back: not kept
    assert out["settings"][6].startswith("Ice            allow")
    assert out["kept"] == [2, 500, 1]


def test_options_repeat_a_trial_and_skip_a_site():
    out = cpython("options_repeat_and_skip")
    assert out["options"][1:5] == [
        "Continue measuring", "Repeat last trial", "Skip this site", "End visit",
    ]  # fmt: skip
    assert out["after_repeat"] == [0, 0]
    assert out["events"][-1][0:2] == [EV_EXCLUDED, 0]
    assert out["skipped"][1] == "No value" and "skipped before any" in out["skipped"]


def test_the_buzzer_says_faster_and_slower_rate_limited_and_beeps_per_saved_trial(both):
    tones = both("buzzer_cues")["tones"]
    starts = [(t, hz) for t, hz in tones if hz]
    assert all(hz in (2400, 700, 1500) for _t, hz in starts)
    assert len(starts) * 2 == len(tones)  # every tone stops again
    faster = [t for t, hz in starts if hz == 2400]
    slower = [t for t, hz in starts if hz == 700]
    saved = [t for t, hz in starts if hz == 1500]
    assert len(saved) == 2  # one per saved trial
    # faster: two beeps of 60 ms 80 ms apart (the unit's waits end at a sample: +12.5 ms);
    # a cue sounds again no sooner than 0.8 s later
    pairs = list(zip(faster[::2], faster[1::2], strict=True))
    assert all(140 <= second - first <= 165 for first, second in pairs)
    assert all(b[0] - a[0] >= 800 for a, b in zip(pairs, pairs[1:], strict=False))
    # 25 kPa/s to 200 kPa: about 7.6 s of "faster", a pair every 0.8 s
    assert 7 <= len(pairs) <= 10
    assert faster[-1] < saved[0] < slower[0] < saved[1]
    # 90 kPa/s to 220 kPa: about 2.2 s of "slower", single beeps
    assert 2 <= len(slower) <= 3
    assert all(b - a >= 800 for a, b in zip(slower, slower[1:], strict=False))


CASES = (
    "buzzer_cues",
    "storage_full_mid_visit",
    "contraindicated_without_override",
    "contraindicated_with_override",
    "storage_full",
    "sensor_fault_mid_trial",
    "calibration_from_settings",
    "abort_mid_visit",
    "code_entry_and_age",
    "returning_patient_lowered_dose",
    "storage_error_recovered",
    "memory_error_in_sampling",
    "crash_in_ui",
    "watchdog_resets_a_hung_task",
    "pairing_and_sync",
    "settings_kept",
    "options_repeat_and_skip",
)


def test_the_scripted_paths_show_every_screen():
    # every navigation screen and every view of a visit is reached by some path above
    shown = set()
    for case in CASES:
        shown |= set(cpython(case)["screens"])
    assert (set(SCREEN_NAMES) | set(VISIT_VIEWS)) - {"visit"} == shown

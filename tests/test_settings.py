"""Clinic settings (core.settings): ranges, the file written whole, defaults that match the
trial engine's and the dosage rules'."""

import inspect

from core import dosage, ppt, settings


def test_the_settings_file_round_trips_and_a_damaged_one_gives_the_defaults(both_runtimes):
    out = both_runtimes("settings_cases.round_trip", heapsize="1M")
    assert out["missing"] is False and out["loaded"] is True
    values = dict(zip([f[0] for f in settings.FIELDS], out["values"], strict=True))
    assert values["target_kpa_s_x10"] == 400 and values["aftercare_ice"] == 1
    assert (values["cal_id"], values["span_counts"], values["span_mass_g"]) == (12, -430001, 2000)
    assert values["cal_wall_s"] == 1796083200
    assert out["other_version"] is False and out["defaults_kept"] is True
    assert out["out_of_range"] is False
    assert out["dosage"] == {"qst_high_z_x100": 100, "qst_low_z_x100": -125,
                             "aftercare_ice": "allow"}  # fmt: skip
    assert out["trial"]["target_kpa_s_x10"] == 400


def test_values_outside_their_range_are_refused_with_the_range(both_runtimes):
    out = both_runtimes("settings_cases.refused")
    assert out[:6] == [
        "tolerance_pct: a whole number from 5 to 50",
        "tolerance_pct: a whole number from 5 to 50",
        "unit: a whole number from 0 to 3",
        "unknown setting colour",
        "min_valid: at most trials_per_site (3)",
        "ceiling_kpa_x10: a whole number from 1000 to 20000",
    ]
    assert out[6] is True  # nothing refused was kept


def test_the_defaults_are_the_trial_engines_and_the_dosage_rules():
    s = settings.Settings()
    trial = inspect.signature(ppt.Trial).parameters
    for name, value in s.trial_config().items():
        assert trial[name].default == value, name
    assert s.dosage_config() == dosage.DEFAULT_CONFIG
    for name, low, high in settings.FIELDS:
        assert low <= getattr(s, name) <= high, name

"""core.nav on its own, over a real visit on the rig (CPython): the edges of every value the
buttons change (age, settings, calibration mass, the dose given), where back leads from
each screen, the site plan, code entry, and when the screen must be redrawn."""

import pytest
from rig import VisitRig

from core import nav, ui
from core.nav import BACK, DOWN, SELECT, UP, Nav
from core.settings import FIELDS
from core.vocab import AGE_MAX_YEARS, SITES
from simulator.samples import RECOMMENDATION


class Link:
    pairing_open = False
    passkey = None
    pairing_left_s = None
    syncing = False
    sent = 0
    total = 0

    def open_pairing(self, t_ms):
        self.pairing_open = True

    def close_pairing(self, t_ms):
        self.pairing_open = False


@pytest.fixture
def unit():
    rig = VisitRig()
    yield rig, Nav(rig.visit, rig.settings, rig.store, [], Link())
    rig.store.close()


def keys(n, *pressed):
    for key in pressed:
        n.press(0, key)
    n.update(0)
    return n


def to_factors(n, age=None):
    n.patients.append({"code": "A1", "age": age, "sex": "F", "sessions": 0})
    keys(n, SELECT, SELECT)
    assert n.name() == "factors"


def test_the_age_stops_at_0_and_at_the_oldest_age(unit):
    _rig, n = unit
    to_factors(n, age=1)
    keys(n, SELECT)  # edit the age
    keys(n, DOWN)
    assert n.patient["age"] == 0
    keys(n, DOWN)
    assert n.patient["age"] == 0
    n.patient["age"] = AGE_MAX_YEARS - 1
    keys(n, UP)
    assert n.patient["age"] == AGE_MAX_YEARS
    keys(n, UP)
    assert n.patient["age"] == AGE_MAX_YEARS
    keys(n, BACK)  # back ends the edit, it does not leave the screen
    assert (n.name(), n.editing) == ("factors", 0)


def test_continue_without_an_age_asks_for_it_first(unit):
    _rig, n = unit
    to_factors(n)
    keys(n, *[DOWN] * (len(ui.factor_names()) - 1), SELECT)
    assert (n.name(), n.cursor, n.editing, n.patient["age"]) == ("factors", 0, 1, 40)
    keys(n, SELECT, *[DOWN] * (len(ui.factor_names()) - 1), SELECT)
    assert n.name() == "contraindications"


def settings_row(n, name):
    keys(n, UP, DOWN, SELECT)  # home -> menu -> settings
    assert n.name() == "settings"
    keys(n, *[DOWN] * ui.SETTINGS_ROWS.index(name), SELECT)
    assert n.editing


@pytest.mark.parametrize(
    ("name", "start", "key", "expected"),
    [
        ("target_kpa_s_x10", 150, DOWN, 100),  # the lowest rate
        ("target_kpa_s_x10", 100, DOWN, 100),
        ("target_kpa_s_x10", 950, UP, 1000),
        ("target_kpa_s_x10", 1000, UP, 1000),
        ("tolerance_pct", 5, DOWN, 5),
        ("tolerance_pct", 50, UP, 50),
        ("ceiling_kpa_x10", 20000, UP, 20000),
        ("ceiling_kpa_x10", 1000, DOWN, 1000),
        ("trials_per_site", 6, UP, 6),
        ("trials_per_site", 3, DOWN, 2),
        ("trials_per_site", 2, DOWN, 2),  # below min_valid (2) is refused, not kept
        ("aftercare_ice", 1, UP, 1),
        ("unit", 3, UP, 0),  # the unit goes round
        ("unit", 0, DOWN, 3),
    ],
)
def test_settings_stop_at_the_ends_of_their_range(unit, name, start, key, expected):
    rig, n = unit
    rig.settings.set(name, start)
    settings_row(n, name)
    keys(n, key)
    assert getattr(rig.settings, name) == expected
    keys(n, SELECT)
    assert n.settings_dirty is (expected != start)


def test_a_settings_change_reaches_the_trial_engine(unit):
    rig, n = unit
    settings_row(n, "ceiling_kpa_x10")
    keys(n, DOWN, SELECT)
    assert rig.visit.trial.ceiling_kpa_x10 == 9500
    low, high = [(lo, hi) for field, lo, hi in FIELDS if field == "ceiling_kpa_x10"][0]
    assert (low, high) == (1000, 20000)  # the range the test above relies on


def test_the_calibration_mass_stops_at_100_g_and_20_kg(unit):
    _rig, n = unit
    settings_row(n, "calibrate")
    n.cal_mass_g = 200
    keys(n, DOWN)
    assert n.cal_mass_g == 100
    keys(n, DOWN)
    assert n.cal_mass_g == 100
    n.cal_mass_g = 19900
    keys(n, UP, UP)
    assert n.cal_mass_g == 20000
    keys(n, BACK)
    assert (n.name(), n.editing) == ("settings", 0)


def given_dose(unit):
    rig, n = unit
    rig.visit.recommendation = dict(RECOMMENDATION, needles=7, depth="intermediate")
    rig.visit.state = 8  # core.visit.RESULT: the recommendation is shown
    n.screen = nav.VISIT
    keys(n, SELECT)
    assert n.name() == "dose"
    return n


@pytest.mark.parametrize(
    ("row", "presses", "expected"),
    [
        ("needles", [DOWN, DOWN], 5),  # 7 -> 5: the least a dose has
        ("needles", [DOWN, DOWN, DOWN], 5),
        ("needles", [UP], 7),  # never above the recommendation
        ("depth", [DOWN], "superficial"),
        ("depth", [DOWN, DOWN], "superficial"),
        ("depth", [UP], "intermediate"),
        ("gauge_mm", [UP], 0.16),  # 0.16 is both the top and the bottom here
        ("gauge_mm", [DOWN], 0.16),
        ("manipulation", [UP], "basic"),
    ],
)
def test_the_dose_given_moves_between_the_bottom_and_the_recommendation(
    unit, row, presses, expected
):
    n = given_dose(unit)
    keys(n, *[DOWN] * ui.dose_rows(n.visit.recommendation).index(row), SELECT, *presses)
    assert n.dose[row] == expected


def test_back_goes_one_level_up_from_every_screen_before_a_visit(unit):
    _rig, n = unit
    n.patients.append({"code": "A1", "age": 40, "sex": "F", "sessions": 0})
    path = [
        ((UP,), "menu", "home"),
        ((UP, DOWN, SELECT), "settings", "home"),
        ((SELECT,), "patients", "home"),
        ((SELECT, DOWN, SELECT), "code", "patients"),
        ((SELECT, SELECT), "factors", "patients"),
    ]
    for pressed, there, back in path:
        n._go(nav.HOME)
        keys(n, *pressed)
        assert n.name() == there
        keys(n, BACK)
        assert n.name() == back, there
    n._go(nav.HOME)
    keys(n, SELECT, SELECT, *[DOWN] * (len(ui.factor_names()) - 1), SELECT)
    assert n.name() == "contraindications"
    keys(n, BACK)
    assert n.name() == "factors"
    keys(n, *[DOWN] * (len(ui.factor_names()) - 1), SELECT, *[DOWN] * 6, SELECT)
    assert n.name() == "plan"
    keys(n, BACK)
    assert n.name() == "contraindications"


def test_the_site_plan_gives_the_visit_its_sites(unit):
    _rig, n = unit
    assert n.plan_sites() == [("upper_trapezius", "R", "local"), ("thenar", "R", "remote")]
    n.screen = nav.PLAN
    keys(n, SELECT, SELECT, DOWN, DOWN, SELECT)  # local side: R -> L -> R+L
    assert n.plan_sites() == [
        ("upper_trapezius", "R", "local"),
        ("upper_trapezius", "L", None),
        ("thenar", "R", "remote"),
    ]
    keys(n, DOWN, SELECT, UP, SELECT)  # the reference: none, and no side to choose
    assert n.editing == 0
    assert n.plan_sites() == [("upper_trapezius", "R", "local"), ("upper_trapezius", "L", None)]
    keys(n, SELECT, DOWN, SELECT, DOWN, SELECT)  # masseter, its side L
    assert n.plan_sites()[-1] == (SITES[0], "L", "remote")


def test_code_entry_deletes_and_picks_a_pushed_patient_by_its_code(unit):
    _rig, n = unit
    n.patients.append({"code": "B2", "age": 61, "sex": "M", "sessions": 4})
    keys(n, SELECT, DOWN, SELECT)
    assert n.name() == "code"
    keys(n, DOWN, SELECT, SELECT)  # B, B
    assert n.code == "BB"
    keys(n, UP, UP, UP, SELECT)  # A, then round to the end: done, the delete mark
    assert n.code == "B"
    keys(n, DOWN, SELECT)  # done with "B": refused (no digit)
    assert (n.name(), n.code) == ("code", "B")
    n.cursor = ui.CODE_CHARS.index("2")
    keys(n, SELECT)
    n.cursor = len(ui.CODE_CHARS) + 1  # done
    keys(n, SELECT)
    assert n.name() == "factors" and n.patient["age"] == 61  # the laptop's B2


def test_the_screen_is_redrawn_only_when_it_changed(unit):
    rig, n = unit
    first = n.stamp()
    n.update(5)
    assert n.stamp() == first
    keys(n, UP)
    second = n.stamp()
    assert second != first
    rig.visit.kpa_x10 = 1234  # the live value matters on the measuring screen only
    assert n.stamp() == second

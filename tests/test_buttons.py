"""drivers/buttons.py: the IRQ records edge times only; poll() decides, exactly at its
cut-offs (20 ms debounce, 500 ms then 150 ms repeat, 700 ms long press), on both runtimes."""

from core.nav import BACK, SELECT, UP


def test_a_press_counts_once_the_level_held_20_ms(both_runtimes):
    # pressed at 1000: not at 1019, at 1020; released at 1100: nothing for up's release
    assert both_runtimes("buttons_cases.debounce") == [[1020, UP]]


def test_bouncing_contacts_count_from_their_last_edge(both_runtimes):
    assert both_runtimes("buttons_cases.bounce") == [[1030, UP]]


def test_up_repeats_after_500_ms_then_every_150_ms(both_runtimes):
    assert both_runtimes("buttons_cases.repeat") == [[1020, UP], [1520, UP], [1670, UP],
                                                     [1820, UP]]  # fmt: skip


def test_select_is_select_on_release_and_back_when_held_700_ms(both_runtimes):
    assert both_runtimes("buttons_cases.select_short_and_long") == [[1620, SELECT],
                                                                    [3720, BACK]]  # fmt: skip


def test_the_stop_button_ignores_bounce_within_50_ms(both_runtimes):
    assert both_runtimes("buttons_cases.stop_button") == [
        [1000, True, False],
        [1049, False, False],
        [1050, True, False],
    ]

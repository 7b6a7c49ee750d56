"""The real HX711 driver against the pin-level fakes, on CPython and on micropython.

The cases are functions in tests/both/hx711_cases.py; the both_runtimes fixture runs each on
both runtimes, checks that they printed the same bytes and returns the result, which the
tests here check against their own expected values.
"""

import pytest

from drivers import hx711

NOT_READY = "not_ready"  # how the cases print hx711.NOT_READY


@pytest.fixture
def case(both_runtimes):
    return lambda name, *args: both_runtimes("hx711_cases." + name, *args)


def test_not_ready_is_no_24_bit_code():
    assert not -0x800000 <= hx711.NOT_READY <= 0x7FFFFF


def test_readings_match_the_load_within_the_noise(case):
    for worst, mean in case("steps"):
        assert worst <= 4 * 60  # the fake's noise is bounded at 3.5 sd
        assert abs(mean) <= 20  # 100 readings: mean error well under one sd
    assert case("ramp") == 0
    worst, mean = case("negative")
    assert worst <= 240 and abs(mean) <= 40


def test_gain_and_channel_follow_the_pulse_count(case):
    checks = case("gains")
    assert checks["a64"][0] <= 240 and checks["a64_chip"] == [64, 27]
    assert abs(checks["b32"] - 12345) <= 60
    assert checks["b32_chip"] == [32, 26]
    assert checks["a128"][0] <= 240 and checks["a128_chip"] == [128, 25]
    assert checks["bad_gain"] == "rejected"


FAULTS = [
    ("unpowered", 2, 0),
    ("no_data_ready", 1, 0),
    ("stuck_high", 3, 1),
    ("stuck_low", 4, -1),
]


@pytest.mark.parametrize("kind, code, rail", FAULTS)
def test_every_fault_is_reported_and_never_a_reading(case, kind, code, rail):
    found = case("faults", "read")[kind]
    assert found["readings"] == 0
    assert found["codes"] == [code]
    assert found["faults"] > 0
    assert found["rails"] == [rail]
    assert found["max_wait_ms"] <= 101  # the data-ready wait is bounded by timeout_ms
    # and every read: after a fault that may hide a power-on reset, 4 settling conversions
    # (12.5 ms each) come first, and the first of them may follow a wait of up to timeout_ms
    assert found["max_read_ms"] <= 101 + 5 * 13
    worst, _mean = found["after"]  # and readings resume once the fault clears
    assert worst <= 240


@pytest.mark.parametrize("kind, code, rail", FAULTS)
def test_poll_reports_every_fault_as_read_does(case, kind, code, rail):
    # Polled every millisecond: the same faults, never a reading; between two answers
    # (a reading or a fault) at most timeout_ms plus the settling conversions.
    found = case("faults", "poll")[kind]
    assert found["readings"] == 0
    assert found["codes"] == [code] and found["rails"] == [rail]
    assert found["faults"] > 0
    assert found["max_wait_ms"] <= 101 + 5 * 13
    assert found["max_read_ms"] <= 101 + 5 * 13
    assert found["after"][0] <= 240
    if kind == "no_data_ready":  # one fault every timeout_ms through the 1 s without data
        assert 9 <= found["faults"] <= 10


def test_an_overloaded_cell_is_a_fault(case):
    checks = case("overload")
    assert checks["overload"] == [None, 3, 1]
    assert checks["underload"] == [None, 4, -1]


def test_a_lone_minus_one_from_a_healthy_chip_is_not_a_fault(case):
    # At rest on a bridge balanced at zero with 40 counts of noise, about 1 % of the codes
    # are exactly -1: each is skipped for the next conversion, never a fault, never returned.
    readings, faults, minus_one, worst, conversions = case("zero_bridge")
    assert faults == 0 and readings == 3000 and minus_one == 0
    assert worst <= 4 * 40
    assert conversions - 3000 - 4 >= 10  # the skipped -1 codes: one conversion read each


def test_minus_one_every_time_is_unpowered_and_never_a_reading(case):
    values, fault, faults = case("all_minus_one")
    assert values == [None] and fault == 2 and faults == 20


def test_four_minus_ones_then_a_good_code_is_still_an_unpowered_fault(case):
    # The edge of _UNPOWERED_READS: the fourth -1 in a row is the fault, even though a good
    # code comes next; three are skipped and the good code is the reading.
    assert case("unpowered_edge", "4", "read") == [None, 2, 1]
    assert case("unpowered_edge", "3", "read") == [500, 0, 0]
    # poll(): not ready through the 4 settling codes and the first three -1 codes, the fault
    # at the fourth; after it the chip may have reset, so the good code is settling (not ready)
    answers, fault, faults = case("unpowered_edge", "4", "poll")
    assert answers == [NOT_READY] * 7 + [None, NOT_READY] and (fault, faults) == (2, 1)
    answers, fault, faults = case("unpowered_edge", "3", "poll")
    assert answers == [NOT_READY] * 7 + [500] and (fault, faults) == (0, 0)


@pytest.mark.parametrize("kind", ["unpowered", "supply_cut"])
def test_gain_is_set_again_after_a_power_on_reset(case, kind):
    # An unpowered fault or a timeout may hide a power-on reset: the chip comes back at A/128,
    # so the driver settles and sends its gain again before the next reading.
    faulted, read_after, all_at_a64, chip_gain = case("reset")[kind]
    assert faulted is True and read_after is True and chip_gain == 64
    assert all_at_a64 is True


def test_construction_settles_like_power_up(case):
    settle = case("settle")
    for first, after_power_up in settle:
        assert first == after_power_up
    assert settle[0][0] == 5 and settle[1][0] == 6  # 4 settling (+ gain)


def test_every_clock_edge_of_a_read_has_interrupts_off(case):
    checks = case("irq_edges")
    reads = checks["reads"]
    # 25, 26, 27 pulses of two edges each per conversion read, at A/128, B/32, A/64
    assert reads >= 30 and checks["edges"] >= 2 * 25 * reads and checks["pulses_last"] == 27
    assert checks["edges_irq_on"] == 0
    # and restored after every read, a rail fault's included
    assert checks["offs"] == checks["ons"] > reads and checks["enabled"] is True


def test_power_down_and_up(case):
    checks = case("power")
    value, fault, waited, powered, powered_again, settle_ms = checks["down"]
    assert powered is False and value is None and fault == 1 and waited <= 101
    assert powered_again is True
    assert settle_ms >= 50  # 50 ms output settling plus the discarded conversions
    assert checks["a64"] is True  # after the A/128 reset, our gain is set again


def test_timeout_survives_the_tick_wrap(case):
    value, fault, waited = case("wrap")
    assert value is None and fault == 1 and 100 <= waited <= 101


def test_driver_pulses_match_the_datasheet(case):
    # 0x123456 after the settling codes (4, and one more at another gain), every read with
    # 25 / 26 / 27 pulses, and PD_SCK low after it (high for over 60 us powers the chip down)
    for (value, reads, rises, last, sck), pulses, settling in zip(
        case("pulses"), (25, 26, 27), (4, 5, 5), strict=True
    ):
        assert value == 0x123456 and reads == settling + 1
        assert rises == pulses * reads and last == pulses and sck == 0


def test_poll_gives_the_readings_read_gives(case):
    readings, same, polls_x10, fault = case("poll_like_read")
    assert readings == 400 and same is True and fault == 0
    assert 120 <= polls_x10 <= 130  # one reading per 12.5 ms period, polled every ms


def test_poll_times_out_exactly_at_timeout_ms_and_again_after_it(case):
    checks = case("poll_timeout_edge")
    assert checks["timeout_ms"] == 100
    assert checks["answers"] == [
        [1, NOT_READY, 0],
        [99, NOT_READY, 0],
        [100, None, 1],  # timeout_ms after the last conversion: the fault
        [101, NOT_READY, 1],  # the fault stays in .fault until the next reading
        [199, NOT_READY, 1],
        [200, None, 1],  # still silent: the fault again, timeout_ms later
    ]
    assert checks["faults"] == 2


def test_an_asyncio_task_polling_leaves_the_loop_to_others(case):
    checks = case("asyncio_sampling")
    assert checks["readings"] == 40 and checks["within_noise"] is True
    assert checks["faults"] == 0 and checks["conversions"] == 44  # 4 settling
    # 12.5 ms between conversions, a yield per ms: the UI task ran 12 or 13 times in between
    assert checks["least_between"] >= 12 and checks["turns"] >= 40 * 12

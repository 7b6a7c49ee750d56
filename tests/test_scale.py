"""core.scale: tare, span, zero tracking, the integer filter, units; exact against fractions."""

from fractions import Fraction

import pytest

from core import scale
from core.scale import Scale, ScaleError, Window


def calibrated(span_counts=430000, mass_g=2000, area_cm2_x100=100, tare=84000, filter_len=4):
    s = Scale(area_cm2_x100=area_cm2_x100, filter_len=filter_len)
    s.set_tare(tare)
    s.calibrate(mass_g, tare + span_counts, 17)
    return s


def exact_kpa_x10(net, span_counts, mass_g, area_cm2_x100):
    # grams on the probe -> kPa x 10: g * 9.80665 mN / (area cm2 * 1e-4 m2) / 100 Pa
    grams = Fraction(net * mass_g, span_counts)
    return grams * Fraction(980665, 1000000) * 100 / area_cm2_x100


CALIBRATIONS = [
    (430000, 2000, 100),  # 215 counts/g, 1 cm2
    (990000, 5000, 100),
    (-430000, 2000, 100),  # load cell wired the other way round
    (15000, 20000, 100),  # a coarse cell: 0.75 counts/g, 0.13 kPa per count
    (8000000, 20000, 100),  # a fine one
    (430000, 2000, 50),  # 0.5 cm2 probe
    (430000, 2000, 1000),  # 10 cm2
]


@pytest.mark.parametrize("span_counts, mass_g, area", CALIBRATIONS)
def test_conversion_within_one_step_of_exact(span_counts, mass_g, area):
    s = calibrated(span_counts, mass_g, area)
    for net in list(range(-5000, 5000, 37)) + list(range(-(2**24), 2**24, 65537)):
        exact = exact_kpa_x10(net, span_counts, mass_g, area)
        assert abs(s.kpa_x10(net) - exact) <= 1 + abs(exact) / 20000, net


@pytest.mark.parametrize("span_counts, mass_g, area", CALIBRATIONS)
def test_no_product_leaves_a_boards_small_int(span_counts, mass_g, area):
    # A 32-bit port keeps ints below 2**30 on the stack; anything bigger is a heap long.
    s = calibrated(span_counts, mass_g, area)
    assert 2**15 <= abs(s._mul) <= 2**16 and s._post >= 1
    worst_net = 2**25  # two 24-bit codes apart
    assert (worst_net >> 12) * abs(s._mul) + 2**16 < 2**30
    assert 4095 * abs(s._mul) < 2**30


def test_the_filter_settles_in_its_length_and_primes_on_the_first_reading():
    s = calibrated()
    assert s.update(84000) == 0  # primed: no ramp up from zero
    load = 84000 + 43000  # 200 g on 1 cm2: 19.6 kPa
    outputs = [s.update(load) for _ in range(4)]
    assert outputs[0] < outputs[1] < outputs[2] < outputs[3] == 196
    s.reset()
    assert s.update(load) == 196  # re-primed after a fault, nothing from before


def test_the_filter_reaches_the_load_in_four_samples_on_both_runtimes(both_runtimes):
    # 200 g on 1 cm2 is 19.6 kPa; the 4-sample moving average climbs in quarters
    assert both_runtimes("scale_cases.filter_steps") == [0, 49, 98, 147, 196, 196]


def test_window_mean_spread_and_stability():
    w = Window(4)
    assert [w.add(v) for v in (10, 14, 12, 13)] == [False, False, False, True]
    assert (w.mean(), w.spread(), w.stable(4), w.stable(3)) == (12, 4, True, False)
    w.reset()
    w.add(-7)
    assert (w.mean(), w.stable(100)) == (-7, False)  # not full


def test_stillness_limit_is_1_kpa_of_the_cell_not_a_fixed_count():
    # Before a span: 1 kPa on the probe through the cell's nominal counts per kg (10.197 g
    # on 1 cm2); after it: through the calibrated span. A fixed 2000 counts would be 9 kPa on
    # a coarse cell and 0.5 kPa on a fine one.
    assert Scale().still_counts() == 2192  # 215000 counts/kg: the reference cell
    assert Scale(cell_counts_per_kg=21500).still_counts() == 219
    assert Scale(cell_counts_per_kg=-430000).still_counts() == 4385  # wired the other way
    assert Scale(area_cm2_x100=50).still_counts() == 1096  # 1 kPa on 0.5 cm2: half the force
    for span_counts, mass_g in ((430000, 2000), (15000, 20000), (8000000, 20000)):
        s = calibrated(span_counts, mass_g)
        assert s.still_counts() == abs(s.counts_for(10))
        assert abs(s.kpa_x10(s.still_counts()) - 10) <= 1
    with pytest.raises(ScaleError, match="cell_counts_per_kg"):
        Scale(cell_counts_per_kg=0)


def test_counts_per_kg_of_the_calibration():
    assert calibrated(430000, 2000).counts_per_kg() == 215000
    assert calibrated(-990000, 5000).counts_per_kg() == -198000
    assert calibrated(15000, 20000).counts_per_kg() == 750
    assert Scale().counts_per_kg() == 0  # no span yet


@pytest.mark.parametrize(
    "mass_g, span, message",
    [
        (50, 430000, "mass_g"),
        (25000, 430000, "mass_g"),
        (2000, 500, "is it on the probe"),
        (2000.0, 430000, "mass_g"),
        (20000, 1000, "coarser than 0.8 kPa per count"),
    ],
)
def test_bad_calibrations_are_refused(mass_g, span, message):
    s = Scale()
    s.set_tare(0)
    with pytest.raises(ScaleError, match=message):
        s.calibrate(mass_g, span, 1)
    assert not s.calibrated()


def test_zero_tracking_follows_slow_drift_at_rest_only():
    s = calibrated()
    counts_per_kpa_x10 = s.counts_for(1)  # about 219
    reading = 84000
    for _ in range(400):  # 5 s of drift, 0.2 kPa in all: creep at rest is tracked
        reading += counts_per_kpa_x10 * 2 // 400 + 1
        value = s.update(reading)
    assert abs(value) <= 1
    assert s.offset_counts > 84000

    s = calibrated()
    held = 84000 + s.counts_for(300)  # 30 kPa held still: far outside the band
    for _ in range(400):
        value = s.update(held)
    assert value == 300 and s.offset_counts == 84000

    s = calibrated()
    for step in range(400):  # a slow 1 kPa/s ramp leaves the band before a window fills
        value = s.update(84000 + s.counts_for(step * 10 // 80))
    assert s.offset_counts == 84000

    s = calibrated()
    reading = 84000
    for _ in range(20000):  # never more than 20 kPa from the tare in total
        reading += s.counts_for(2) // 80
        s.update(reading)
    assert abs(s.offset_counts - 84000) <= s.counts_for(200)


def test_zero_tracking_needs_a_still_probe_not_just_the_band():
    # A slow wobble between +0.05 and +0.45 kPa: inside the +-0.5 kPa band, no creep at all,
    # but the filtered value moves 0.4 kPa (over the 0.3 kPa stillness limit) in every 1 s
    # window. Someone is touching the probe: the zero must stay where the tare put it.
    s = calibrated()
    low, swing = s.counts_for(1) // 2, s.counts_for(4)
    for i in range(1600):  # 20 s; the triangle wave goes up and down every 0.5 s
        phase = i % 40
        s.update(84000 + low + swing * (phase if phase < 20 else 40 - phase) // 20)
    assert s.offset_counts == 84000


def test_zero_tracking_follows_drift_of_a_still_probe_with_noise():
    # Still near zero: +-0.1 kPa of noise and a drift of 0.3 kPa over 10 s (temperature,
    # creep). Every 1 s window is still, so the zero follows the drift.
    s = calibrated()
    noise = s.counts_for(1)  # 0.1 kPa
    drift = s.counts_for(3)
    for i in range(800):
        s.update(84000 + drift * i // 800 + noise * ((i * 7919) % 3 - 1))
    assert s.offset_counts - 84000 >= drift * 6 // 10  # tracked most of it (windows lag)
    assert abs(s.update(84000 + drift)) <= 1  # and it reads zero


@pytest.mark.parametrize(
    "kpa_x10, unit, area, expected",
    [
        (981, "kgf/cm2", 100, 100),  # 98.1 kPa = 1.00 kgf/cm2
        (43100, "kgf/cm2", 100, 4395),
        (100, "N", 100, 100),  # 10 kPa on 1 cm2 = 1 N
        (100, "N", 50, 50),
        (445, "lbf", 100, 100),  # 44.5 kPa on 1 cm2 = 1.00 lbf
        (4448, "lbf", 100, 1000),
        (1234, "kPa", 100, 12340),
        (-981, "kgf/cm2", 100, -100),
    ],
)
def test_units(kpa_x10, unit, area, expected):
    assert scale.convert_x100(kpa_x10, unit, area) == expected


def test_unit_formatting_without_floats():
    assert scale.format_x100(4395) == "43.95"
    assert scale.format_x100(-5) == "-0.05"
    assert scale.format_kpa_x10(1234) == "123.4"
    assert scale.format_kpa_x10(-7) == "-0.7"
    with pytest.raises(ScaleError):
        scale.convert_x100(1, "psi")


def test_same_pressures_on_both_runtimes(both_runtimes):
    # Byte-identical on both runtimes (the fixture), and right: the conversions within one
    # step of the exact value, as test_conversion_within_one_step_of_exact asks on CPython.
    rows = both_runtimes("scale_cases.parity")
    calibrations = ((430000, 2000, 100), (-990000, 5000, 50), (15000, 20000, 100))
    assert len(rows) == 3 and all(len(row) == 2 + 34 + 300 for row in rows)
    for (span, mass_g, area), row in zip(calibrations, rows, strict=True):
        half_kpa, two_hundred_kpa = row[:2]
        assert abs(exact_kpa_x10(half_kpa, span, mass_g, area) - 5) <= 1
        assert abs(exact_kpa_x10(two_hundred_kpa, span, mass_g, area) - 2000) <= 1
        for net, kpa_x10 in zip(range(-(1 << 24), 1 << 24, 999983), row[2:36], strict=True):
            exact = exact_kpa_x10(net, span, mass_g, area)
            assert abs(kpa_x10 - exact) <= 1 + abs(exact) / 20000, net


# --- zero tracking at the edges of its band and of its limit, on both sides of the tare ---


@pytest.mark.parametrize("sign", [1, -1], ids=["above", "below"])
@pytest.mark.parametrize("beyond, tracked", [(0, True), (1, False)], ids=["at_band", "past_band"])
def test_a_still_probe_outside_the_zero_band_does_not_move_the_zero(sign, beyond, tracked):
    # The band is +-0.5 kPa: a still probe exactly at its edge is drift and is followed; one
    # count further is a load (a touch, the probe resting on something) and is not.
    s = calibrated()
    band = s.counts_for(5)
    reading = 84000 + sign * (band + beyond)
    for _ in range(400):  # 5 s still: four full windows
        s.update(reading)
    assert s.offset_counts == (reading if tracked else 84000)


@pytest.mark.parametrize("sign", [1, -1], ids=["up", "down"])
def test_zero_tracking_stops_exactly_at_its_limit_on_both_sides(sign):
    # Drift walked out in still steps inside the band: the zero follows it to exactly 20 kPa
    # from the tare and no further, upwards and downwards alike.
    s = calibrated()
    band, limit = s.counts_for(5), s.counts_for(200)
    for drift in [*range(band, limit, band), limit, limit + 1]:
        for _ in range(200):
            s.update(84000 + sign * drift)
        expected = min(drift, limit)
        assert s.offset_counts == 84000 + sign * expected, drift

# core.scale on both runtimes: cases for tests/test_scale.py (docs/developing.md, "Tests on
# both runtimes").
from core.scale import Scale


def parity():
    """Per calibration: counts for 0.5 and 200 kPa, kPa x 10 across the 25-bit net range, and
    300 filtered pressures of a noisy reading with a load in the middle."""
    out = []
    for span, mass, area in ((430000, 2000, 100), (-990000, 5000, 50), (15000, 20000, 100)):
        s = Scale(area)
        s.set_tare(1000)
        s.calibrate(mass, 1000 + span, 3)
        row = [s.counts_for(5), s.counts_for(2000)]
        for net in range(-(1 << 24), 1 << 24, 999983):
            row.append(s.kpa_x10(net))
        reading = 1000
        for i in range(300):
            reading += (i * 7919) % 301 - 150
            row.append(s.update(reading + (span // 10 if 100 < i < 200 else 0)))
        out.append(row)
    return out


def filter_steps():
    """The filtered pressure at rest, then on each of five readings with 200 g on 1 cm2."""
    s = Scale()
    s.set_tare(84000)
    s.set_span(430000, 2000, 1)  # 215 counts per g
    return [s.update(84000)] + [s.update(84000 + 43000) for _ in range(5)]

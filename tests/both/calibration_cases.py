# core.calibration on both runtimes: the span wizard driven by the pin-level HX711 fake, as the
# app drives it (one conversion at a time, faults passed on).
from rig import Rig

from core import calibration


def _run(rig, wizard, until_ms):
    hx = rig.hx
    while wizard.state not in (calibration.DONE, calibration.FAILED):
        t_ms = rig.tick()
        if t_ms > until_ms:
            break
        counts = hx.read()
        if counts is None:
            wizard.fault(t_ms, hx.fault)
        else:
            wizard.sample(t_ms, counts)
    return {
        "state": wizard.state,
        "message": wizard.message,
        "result": wizard.result,
        "t_ms": rig.clock.ticks_ms(),
        "tare_counts": rig.scale.tare_counts,
    }


def span(mass_on_g="2000", mass_entered_g="2000", noise="40", wobble_g="0", mass_at_ms="2000"):
    """Tare from 0.5 s, the mass placed at mass_at_ms (0: never), held (with a +-wobble)."""
    rig = Rig(offset_counts=84000, counts_per_kg=215000, noise_counts=int(noise), seed=7)
    mg = int(mass_on_g) * 1000
    at = int(mass_at_ms)
    knots = [(0, 0)]
    if at:
        knots += [(at, 0), (at + 300, mg)]
        wobble = int(wobble_g) * 1000
        for k in range(1, 60):  # 30 s of a hand that cannot keep the mass still
            knots.append((at + 300 + 500 * k, mg + (wobble if k & 1 else -wobble)))
    rig.chip.set_profile(knots)
    wizard = calibration.SpanWizard(rig.scale)
    rig.at(500)
    wizard.start(rig.clock.ticks_ms(), int(mass_entered_g), 5)
    return _run(rig, wizard, 120000)


def tare_fault():
    """The chip is unpowered throughout: the tare names the sensor fault."""
    rig = Rig(noise_counts=40)
    rig.chip.add_fault("unpowered", 0)
    wizard = calibration.SpanWizard(rig.scale)
    wizard.start(rig.clock.ticks_ms(), 2000, 5)
    return _run(rig, wizard, 60000)

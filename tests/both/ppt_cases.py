# The trial engine fed synthetic sample streams: cases for tests/test_ppt.py, run on both
# runtimes by the both_runtimes fixture (docs/developing.md, "Tests on both runtimes").
from vclock import VirtualClock

from core import ppt


def ramp(rate_kpa_s, top_kpa, end="stop", rest_ms=600, start_ms=0, fault_at_ms=-1, rail=False):
    # (t_ms, kpa_x10 or None for a fault, stop) at 80 SPS: rest, ramp to top, then either a
    # stop press at the top or a release (fall at 1000 kPa/s) or, for "hold", a plateau
    out = []
    top = top_kpa * 10
    k = 0
    released = False
    while k < 2000:  # 25 s
        t = k * 25 // 2
        k += 1
        ramp_ms = t - rest_ms
        p = 0 if ramp_ms < 0 else rate_kpa_s * ramp_ms // 100
        wobble = (k * 7919) % 7 - 3  # +-0.3 kPa of deterministic noise
        if p >= top:
            if end == "stop":
                out.append((start_ms + t, top + wobble, True))
                break
            if end == "hold":
                p = top
            else:
                released = True
        if released:
            p = max(0, top - (t - rest_ms - top * 100 // rate_kpa_s) * 100)
        if fault_at_ms >= 0 and ramp_ms >= fault_at_ms:
            out.append((start_ms + t, None, rail))
            continue
        out.append((start_ms + t, p + wobble if p else 0, False))
        if released and p == 0 and len(out) > 3 and out[-2][1] == 0:
            break
    return out


def run(samples, trial=None, abort_ms=None, **config):
    trial = trial or ppt.Trial(**config)
    trial.arm(samples[0][0])
    cues = []
    shown = [0, 0, 0, 0]
    for t, p, stop in samples:
        if p is None:
            state = trial.feed_fault(t, 1 if not stop else 3, stop)
        else:
            state = trial.feed(t, p, stop)
        if trial.cue and (not cues or cues[-1] != trial.cue):
            cues.append(trial.cue)
        shown[trial.cue] += 1
        if state == ppt.DONE:
            break
    if trial.state != ppt.DONE:
        trial.abort(abort_ms if abort_ms is not None else samples[-1][0])
    result = trial.result()
    result["cues"] = [ppt.CUE_NAMES[c] for c in cues]
    result["cue_samples"] = shown
    return result


def trials():
    """Every trial stream above through the trial engine: {name: result}."""
    out = {}
    for rate in (25, 39, 41, 50, 59, 61, 100):
        out["r%d" % rate] = run(ramp(rate, 250))
    out["release"] = run(ramp(50, 300, "release"))
    out["ceiling"] = run(ramp(50, 1200, "hold"))
    out["short"] = run(ramp(50, 30))
    out["low_40"] = run(ramp(50, 40))  # a very sensitised patient: 10 -> 40 kPa in 0.6 s
    out["low_52"] = run(ramp(50, 52))  # thenar F at 52 kPa (z about +4): 0.84 s
    # stop pressed after the pressure dipped below the peak: PPT is the pressure at the press
    dip = [(t, p, False) for t, p, _s in ramp(50, 250, "hold")[:460]]  # 250 kPa from 5.6 s
    t_end = dip[-1][0]
    for k in range(1, 21):  # falls at 50 kPa/s for 0.25 s, down to 237.5 kPa
        dip.append((t_end + k * 25 // 2, 2500 - k * 625 // 100, False))
    dip.append((t_end + 21 * 25 // 2, 2370, True))
    out["dip_then_stop"] = run(dip)
    out["fault"] = run(ramp(50, 300, fault_at_ms=2000))
    out["rail"] = run(ramp(50, 300, fault_at_ms=2000, rail=True))
    out["slow_abort"] = run(ramp(2, 300, "hold"), max_ramp_ms=20000)
    waiting = [(t, None, False) for t, _p, _s in ramp(50, 100)[:40]]
    out["fault_waiting"] = run(waiting)
    pressed = [(k * 12, 400, False) for k in range(50)] + ramp(50, 200, start_ms=600)
    out["pressed_at_arm"] = run(pressed)
    clock = VirtualClock(((1 << 30) - 3000) * 1000)  # ticks wrap 3 s into the trial
    base = clock.ticks_ms()
    wrapped = [((base + t) & ((1 << 30) - 1), p, s) for t, p, s in ramp(50, 250)]
    out["wrap"] = run(wrapped, ppt.Trial(ticks_diff=clock.ticks_diff))
    out["tolerance_10"] = run(ramp(57, 250), tolerance_pct=10)
    return out

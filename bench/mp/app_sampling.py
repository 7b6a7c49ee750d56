# The app's own sampling task (app.App._sampling: HX711 poll() -> core.visit, the stop
# button's flag) on micropython, on the simulator's board, in a trial that ramps slowly for
# the whole measurement (live cue throughout, no trial end): heap allocated and time over
# SAMPLES samples after WARMUP, with the collector off while counting. The board's wait
# returns asyncio's reused sleep object, as board.py's does, and counts the samples.
import asyncio
import gc
import sys
import time

from unit import Board, PowerOff

WARMUP = 200
SAMPLES = 4000
PATIENT = {"code": "B-1", "age": 40, "sex": "F", "sessions": 0}


class Counter:
    """The board's per-sample hook: starts the count after WARMUP, stops after SAMPLES."""

    def __init__(self):
        self.n = 0
        self.before = 0
        self.after = 0
        self.t0 = 0
        self.t1 = 0

    def step(self, board):
        self.n += 1
        if self.n == WARMUP:
            gc.collect()
            gc.disable()
            self.t0 = time.ticks_us()  # pyright: ignore[reportAttributeAccessIssue]
            self.before = gc.mem_alloc()  # pyright: ignore[reportAttributeAccessIssue]
        elif self.n == WARMUP + SAMPLES:
            self.after = gc.mem_alloc()  # pyright: ignore[reportAttributeAccessIssue]
            self.t1 = time.ticks_us()  # pyright: ignore[reportAttributeAccessIssue]
            gc.enable()
            raise PowerOff()


def main():
    from app import App

    board = Board(noise_counts=60, seed=3)
    board.calibrated()
    unit = App(board, 1)
    board.wdt = None  # only the sampling task runs here: nobody feeds the watchdog
    visit = unit.visit
    visit.start(unit.now_ms(), PATIENT, (("lumbar_paraspinal", "R", "local"),))
    board.chip.set_profile([(0, 0)])
    while visit.state != 4:  # ARMED: zeroed
        board.next_sample()
        counts = unit.hx.poll()
        if counts is not None and counts != -0x1000000:
            visit.sample(unit.now_ms(), counts, False)
    now = board.now_ms()
    # 10 kPa/s for 90 s: a ramp that outlasts the measurement, below the ceiling
    board.chip.set_profile([(now, 0), (now + 500, 0), (now + 90500, 900 * 10197)])
    counter = Counter()
    board.attach(counter)
    try:
        asyncio.run(unit._sampling())
    except PowerOff:
        pass
    us = time.ticks_diff(counter.t1, counter.t0)  # pyright: ignore[reportAttributeAccessIssue]
    print(counter.after - counter.before, us, SAMPLES, visit.state, visit.trial.cue)


main()
sys.exit(0)

# The unit's buttons (up, down, select: to GND with pull-ups) and the patient's hand-held
# stop button. The pins' IRQ handlers only record the time of the edge (no allocation, no
# decision: house rule 2); debouncing, the long press and the repeat are decided outside,
# in poll(), which the app's UI task calls every few ms. Pins and the clock come in as
# arguments (board.py binds them: pin.irq(handler=..., trigger=both edges)).
#   select: a press shorter than _LONG_MS is SELECT on release; held _LONG_MS it is BACK
#           (once, while still held: "hold: back" on every screen).
#   up, down: the event on press, then repeated every _REPEAT_MS after _REPEAT_AFTER_MS
#           (so a value such as the age moves quickly).
from array import array

from micropython import const

from core.nav import BACK, DOWN, SELECT, UP

_DEBOUNCE_MS = const(20)  # a level counts once it has held this long after the last edge
_LONG_MS = const(700)
_REPEAT_AFTER_MS = const(500)
_REPEAT_MS = const(150)
_STOP_DEBOUNCE_MS = const(50)
_SELECT = const(2)  # index of the select pin
_KEYS = (UP, DOWN, SELECT)


class Buttons:
    """pins: (up, down, select), each with value() 0 while pressed; clock: ticks_ms /
    ticks_diff (the board's time module). handlers[i] is the IRQ handler for pins[i]."""

    def __init__(self, pins, clock):
        self._pins = pins
        self._ticks = clock.ticks_ms
        self._diff = clock.ticks_diff
        n = len(pins)
        self._edge = array("i", [0] * n)  # ticks of each pin's last edge, set by the IRQ
        self._down = array("b", [0] * n)  # debounced: pressed
        self._since = array("i", [0] * n)  # ticks of the debounced press, or the last repeat
        self._held = array("b", [0] * n)  # select: BACK given for this press
        self.handlers = [self._handler(i) for i in range(n)]

    def _handler(self, i):
        edge = self._edge
        ticks = self._ticks

        def irq(_pin):
            edge[i] = ticks()

        return irq

    def poll(self):
        """The next button event (UP, DOWN, SELECT, BACK), or 0 when there is none: call it
        until 0. Allocates nothing."""
        now = self._ticks()
        diff = self._diff
        for i in range(len(self._pins)):
            if diff(now, self._edge[i]) < _DEBOUNCE_MS:
                continue  # bouncing: wait for the level to settle
            pressed = 1 if self._pins[i].value() == 0 else 0
            if pressed != self._down[i]:
                self._down[i] = pressed
                self._since[i] = now
                if pressed:
                    self._held[i] = 0
                    if i != _SELECT:
                        return _KEYS[i]
                elif i == _SELECT and not self._held[i]:
                    return SELECT
            elif pressed:
                held = diff(now, self._since[i])
                if i == _SELECT:
                    if held >= _LONG_MS and not self._held[i]:
                        self._held[i] = 1
                        return BACK
                elif held >= (_REPEAT_MS if self._held[i] else _REPEAT_AFTER_MS):
                    self._held[i] = 1  # repeating
                    self._since[i] = now
                    return _KEYS[i]
        return 0


class StopButton:
    """The patient's stop button: irq (the pin's falling-edge handler) sets pressed;
    take() returns it and clears it, once per sample. Edges within _STOP_DEBOUNCE_MS of an
    accepted one are contact bounce."""

    def __init__(self, clock):
        self._ticks = clock.ticks_ms
        self._diff = clock.ticks_diff
        self._last = clock.ticks_ms() - _STOP_DEBOUNCE_MS
        self.pressed = False

    def irq(self, _pin):
        now = self._ticks()
        if self._diff(now, self._last) >= _STOP_DEBOUNCE_MS:
            self._last = now
            self.pressed = True

    def take(self):
        pressed = self.pressed
        self.pressed = False
        return pressed

# drivers/buttons.py on both runtimes: when an edge becomes an event, polled at given times.
from vclock import VirtualClock

from drivers.buttons import Buttons, StopButton


class Pin:
    def __init__(self):
        self.level = 1

    def value(self):
        return self.level


def _timeline(steps):
    """steps: (t_ms, pin index or -1, level or -1): set the pin (its IRQ fires) or just
    poll. Returns [t_ms, event] for every event poll() gave."""
    clock = VirtualClock()
    pins = [Pin(), Pin(), Pin()]
    buttons = Buttons(pins, clock)
    out = []
    for t_ms, index, level in steps:
        clock.sleep_us(t_ms * 1000 - clock.now_us)
        if index >= 0:
            pins[index].level = level
            buttons.handlers[index](pins[index])
        event = buttons.poll()
        while event:
            out.append([t_ms, event])
            event = buttons.poll()
    return out


def debounce():
    """Up pressed at 1000: an edge counts once the level held 20 ms."""
    return _timeline([(1000, 0, 0), (1019, -1, -1), (1020, -1, -1), (1100, 0, 1),
                      (1119, -1, -1), (1120, -1, -1)])  # fmt: skip


def bounce():
    """Contact bounce: edges 5 ms apart never count until 20 ms after the last one."""
    return _timeline([(1000, 0, 0), (1005, 0, 1), (1010, 0, 0), (1029, -1, -1),
                      (1030, -1, -1)])  # fmt: skip


def repeat():
    """Up held: one event on the press, again 500 ms later, then every 150 ms."""
    steps = [(1000, 0, 0), (1020, -1, -1)]
    steps += [(t, -1, -1) for t in (1519, 1520, 1669, 1670, 1820)]
    return _timeline(steps + [(1830, 0, 1), (1850, -1, -1)])


def select_short_and_long():
    """Select: released before 700 ms held is SELECT (on release); held 700 ms is BACK,
    once, and its release gives nothing."""
    steps = [(1000, 2, 0), (1020, -1, -1), (1600, 2, 1), (1620, -1, -1)]  # 580 ms: SELECT
    steps += [(3000, 2, 0), (3020, -1, -1), (3719, -1, -1), (3720, -1, -1), (4000, -1, -1)]
    steps += [(4100, 2, 1), (4120, -1, -1)]
    return _timeline(steps)


def stop_button():
    """The stop button's IRQ: a press, bounce within 50 ms ignored, a new press after."""
    clock = VirtualClock(1000000)
    stop = StopButton(clock)
    out = []
    for t_ms in (1000, 1049, 1050):
        clock.sleep_us(t_ms * 1000 - clock.now_us)
        stop.irq(None)
        out.append([t_ms, stop.take(), stop.take()])
    return out

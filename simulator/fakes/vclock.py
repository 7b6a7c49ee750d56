# Virtual time with the board's `time` API (ticks_ms, ticks_us, ticks_diff, sleep_us,
# sleep_ms), so a driver or app built with `clock=time` on the board runs here unchanged and
# a minute of sampling simulates in milliseconds. Ticks wrap like a 32-bit port's (2**30),
# so code that subtracts ticks instead of using ticks_diff fails here too.
_PERIOD = 1 << 30
_MASK = _PERIOD - 1
_HALF = _PERIOD >> 1


class VirtualClock:
    def __init__(self, start_us=0):
        self.now_us = start_us  # never wraps: the fake chip schedules on this

    def ticks_us(self):
        return self.now_us & _MASK

    def ticks_ms(self):
        return (self.now_us // 1000) & _MASK

    def ticks_diff(self, end, start):
        return ((end - start + _HALF) & _MASK) - _HALF

    def ticks_add(self, ticks, delta):
        return (ticks + delta) & _MASK

    def sleep_us(self, us):
        if us > 0:
            self.now_us += us

    def sleep_ms(self, ms):
        if ms > 0:
            self.now_us += ms * 1000

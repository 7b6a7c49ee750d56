# HX711 24-bit load-cell ADC. The two pins come in as objects (machine.Pin on the board, the
# simulator's pin-level fake on a desktop) and time as a clock with the `time` module's
# ticks_ms / ticks_diff / sleep_us, so the same code runs against virtual time.
# Datasheet protocol: DOUT low = a conversion is ready; each PD_SCK pulse shifts one bit out,
# MSB first, 24 bits two's complement; 1-3 more pulses choose input and gain of the NEXT
# conversion (25 -> A/128, 26 -> B/32, 27 -> A/64); PD_SCK high for over 60 us powers the
# chip down, so the bit loop keeps the clock high for one pin write only and runs with
# interrupts off (an interrupt in mid-pulse could stretch it past 60 us).
# Two ways to read, one decoder behind both:
# - poll() never waits: it returns the counts of a conversion that is ready, NOT_READY when
#   none is (yet), or None with .fault set. An asyncio sampling task polls and yields between
#   conversions; the data-ready timeout is measured on the injected clock from the last
#   conversion read (or the last fault, or power-up), so a chip that stays not ready past
#   timeout_ms is a FAULT_TIMEOUT however often it is polled (and again every timeout_ms).
# - read() blocks (sleep_us(poll_us) between polls) until a reading or a fault, waiting at
#   most timeout_ms for each conversion, as a calibration loop or a simple script wants.
# Hot path: poll() and read() allocate nothing (bound methods are fetched once, in __init__).
from micropython import const

GAIN_A128 = const(128)
GAIN_B32 = const(32)
GAIN_A64 = const(64)

# Faults are reported in .fault and read() and poll() return None: a fault code is never a
# reading.
FAULT_NONE = const(0)
FAULT_TIMEOUT = const(1)  # no data-ready within timeout_ms: unplugged, powered down, dead
# An unpowered chip shifts out all ones (-1) every time; a healthy one reads exactly -1 now and
# then (a bridge balanced at zero, a ramp crossing zero). So a lone -1 is skipped (read()
# takes the next conversion) and only _UNPOWERED_READS in a row are the fault: with the
# chip's ~45 counts of noise, four true -1 codes in a row come about once in 10**8 readings.
# A -1 code is never returned as a reading.
FAULT_UNPOWERED = const(2)  # code -1 (0xFFFFFF), _UNPOWERED_READS times running
FAULT_RAIL_HIGH = const(3)  # 0x7FFFFF: the positive rail (overload, or a broken bridge)
FAULT_RAIL_LOW = const(4)  # 0x800000: the negative rail (negative overload, or a broken bridge)
# poll()'s answer when no reading is ready: an int (no allocation, a cheap ==) that no 24-bit
# code can be. A caller that forgot to test for it would see a huge negative load, below any
# onset and outside the zero band: never a threshold, never a moved zero.
NOT_READY = const(-0x1000000)

_CODE_MAX = const(0x7FFFFF)
_CODE_MIN = const(-0x800000)
_SIGN = const(0x800000)
_WRAP = const(0x1000000)
_UNPOWERED_READS = const(4)
_SETTLE_READS = const(4)  # 50 ms output settling after power-up at 80 SPS (datasheet)
_POWER_DOWN_US = const(80)  # over 60 us of PD_SCK high powers the chip down
_TIMEOUT_MS = const(100)  # 8 periods at 80 SPS; at 10 SPS (RATE low) pass at least 250
_POLL_US = const(200)


def _irq_none():
    return 0


def _irq_restore_none(_state):
    pass


def _extra_pulses(gain):
    if gain == GAIN_A128:
        return 1
    if gain == GAIN_B32:
        return 2
    if gain == GAIN_A64:
        return 3
    raise ValueError("hx711: gain must be 128, 64 (channel A) or 32 (channel B)")


class HX711:
    def __init__(
        self,
        dout,
        pd_sck,
        clock,
        gain=GAIN_A128,
        timeout_ms=_TIMEOUT_MS,
        poll_us=_POLL_US,
        disable_irq=None,
        enable_irq=None,
    ):
        self._dout = dout.value
        self._sck = pd_sck.value
        self._clock = clock
        self._irq_off = disable_irq or _irq_none
        self._irq_on = enable_irq or _irq_restore_none
        self.timeout_ms = timeout_ms
        self.poll_us = poll_us
        self.gain = gain
        self._extra = _extra_pulses(gain)
        self.fault = FAULT_NONE
        self.faults = 0  # fault readings since construction, for the event log
        self.powered = True
        self._ones = 0  # -1 codes in a row
        self._sck(0)
        # At boot the chip may have just powered up (settling, A/128) or still hold another
        # gain from before a soft reset: start as after power_up().
        self._wake()

    @property
    def rail(self):
        """The last fault's rail: 1 (0x7FFFFF), -1 (0x800000), 0 (not a rail fault)."""
        fault = self.fault
        return 1 if fault == FAULT_RAIL_HIGH else -1 if fault == FAULT_RAIL_LOW else 0

    def set_gain(self, gain):
        self._extra = _extra_pulses(gain)
        self.gain = gain
        # The next read carries the new pulse count but returns a conversion at the old gain.
        self._discard = max(self._discard, 1)

    def power_down(self):
        self._sck(0)
        self._sck(1)
        self._clock.sleep_us(_POWER_DOWN_US)
        self.powered = False

    def power_up(self):
        self._sck(0)
        self.powered = True
        self._wake()

    def _wake(self):
        # After a power-on reset the chip is at A/128 and needs settling: the settling reads
        # are discarded, and one more when another gain is set (the first read sets it).
        self._discard = _SETTLE_READS + (0 if self.gain == GAIN_A128 else 1)
        self._wait_ms = self._clock.ticks_ms()  # the data-ready timeout runs from here

    def poll(self):
        """Never waits. Returns the counts of the conversion that is ready, NOT_READY when there
        is none yet, or None with .fault set (FAULT_TIMEOUT once the chip has been not ready
        for timeout_ms since the last conversion read, fault or power-up; the rail and unpowered
        faults as read() reports them). A conversion that is read but not a reading (a settling
        conversion, a lone -1 code) also gives NOT_READY: poll again at the next data-ready.
        .fault is FAULT_NONE again after the next reading."""
        clock = self._clock
        if self._dout():
            if clock.ticks_diff(clock.ticks_ms(), self._wait_ms) >= self.timeout_ms:
                return self._failed(FAULT_TIMEOUT)
            return NOT_READY
        value = self._shift()
        self._wait_ms = clock.ticks_ms()
        if value == -1:
            self._ones += 1
            if self._ones < _UNPOWERED_READS:
                return NOT_READY  # a lone -1: take the next conversion
            return self._failed(FAULT_UNPOWERED)
        self._ones = 0
        if value == _CODE_MAX:
            return self._failed(FAULT_RAIL_HIGH)
        if value == _CODE_MIN:
            return self._failed(FAULT_RAIL_LOW)
        if self._discard > 0:
            self._discard -= 1  # settling, or the first conversion after a gain change
            return NOT_READY
        self.fault = FAULT_NONE
        return value

    def read(self):
        """Counts of the next conversion, or None with .fault set. Waits at most timeout_ms for
        each conversion. After power-up, a gain change or a timeout / unpowered fault (the chip
        may have reset), settling reads come first; a lone -1 code is skipped for the next
        conversion. So a read may take a few periods, never an unbounded time."""
        clock = self._clock
        self._wait_ms = clock.ticks_ms()  # a blocking read waits timeout_ms from its call
        while True:
            value = self.poll()
            if value != NOT_READY:
                return value
            clock.sleep_us(self.poll_us)

    def _shift(self):
        """Shifts out the ready conversion as a signed int and sets the next one's gain."""
        sck = self._sck
        dout = self._dout
        state = self._irq_off()
        value = 0
        for _ in range(24):
            sck(1)
            sck(0)  # DOUT changed on the rising edge and holds until the next one
            value = (value << 1) | dout()
        for _ in range(self._extra):
            sck(1)
            sck(0)
        self._irq_on(state)
        if value & _SIGN:
            value -= _WRAP
        return value

    def _failed(self, fault):
        self.fault = fault
        self.faults += 1
        if fault == FAULT_TIMEOUT or fault == FAULT_UNPOWERED:
            self._wake()  # the chip may come back from a power-on reset: A/128, settling
        return None

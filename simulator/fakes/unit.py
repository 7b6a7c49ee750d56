# The virtual bedside unit's board: the names firmware/board.py gives app.App and main.py,
# built on simulated hardware, on CPython and on micropython alike. The firmware's real
# main.run(board) and app.App run on it unchanged.
#   - the pin-level HX711 fake on a virtual clock; the sampling task's wait moves the clock
#     to the next conversion in lock-step (no real-time sleeping: a visit runs in seconds),
#     and every other wait lasts in virtual time;
#   - buttons and the stop button as pins whose level a Hand sets, their IRQ handlers
#     called as a pin would;
#   - the OLED as a FrameBuffer whose show() hands the frame to on_frame;
#   - the record store's filesystem: LittleFS on a FakeFlash behind drivers.flashfs on
#     micropython, a directory on CPython; the buzzer's PWM and the watchdog as recorders.
# A Hand (below) is the clinician and the patient: called once per sample, it runs a
# script, a generator that yields conditions on the unit's state and screen.
import asyncio
import sys

import framebuf
from fake_hx711 import PERIOD_US, PHASE_US, FakeHX711, probe_mg
from vclock import VirtualClock

# The firmware's drivers are imported where the board builds them: importing this module
# costs no firmware (the heap bench counts the firmware's heap, not the simulator's).
MICROPYTHON = sys.implementation.name == "micropython"

PWRON_RESET = 1  # machine.reset_cause() codes on the ESP32 (board.py)
WDT_RESET = 3
SOFT_RESET = 5
_WATCHDOG_MS = 8000  # as board.py
_PRESS_MS = 120  # a button press
_HOLD_MS = 900  # a press that means "back"


class PowerOff(BaseException):
    """The simulation is over: raised out of the app (main.run does not catch it)."""


class ScriptError(BaseException):
    """The simulation's own script failed (not the firmware: main.run must not take it
    for a crash of the unit)."""


class WatchdogReset(BaseException):
    """The watchdog was not fed in time: the hardware resets (the caller boots again)."""


class Pin:
    """An input to GND with a pull-up: value() 1 until pressed; irq() keeps the handler."""

    def __init__(self):
        self.level = 1
        self.handler = None

    def value(self):
        return self.level

    def irq(self, handler=None, trigger=0):
        self.handler = handler

    def set(self, level):
        if level != self.level:
            self.level = level
            if self.handler is not None:
                self.handler(self)


class PWM:
    """The buzzer's PWM: tones keeps [t_ms, Hz] at each start and [t_ms, 0] at each stop."""

    def __init__(self, clock):
        self._clock = clock
        self.freq_hz = 0
        self.duty = 0
        self.tones = []

    def freq(self, hz):
        self.freq_hz = hz

    def duty_u16(self, duty):
        if (duty != 0) != (self.duty != 0):
            self.tones.append([self._clock.now_us // 1000, self.freq_hz if duty else 0])
        self.duty = duty


class Watchdog:
    def __init__(self, clock):
        self._clock = clock
        self.fed_us = clock.now_us
        self.feeds = 0

    def feed(self):
        self.fed_us = self._clock.now_us
        self.feeds += 1

    def expired(self):
        return self._clock.now_us - self.fed_us > _WATCHDOG_MS * 1000


class Display(framebuf.FrameBuffer):
    """The SSD1306 as the app sees it: a 128x64 MONO_VLSB FrameBuffer with show()."""

    def __init__(self, on_frame):
        self.buffer = bytearray(128 * 64 // 8)
        super().__init__(self.buffer, 128, 64, framebuf.MONO_VLSB)
        self._on_frame = on_frame
        self.frames = 0

    def show(self):
        self.frames += 1
        if self._on_frame is not None:
            self._on_frame(self.buffer)


class Board:
    """The simulator's board. Keywords: the chip (offset_counts, counts_per_kg,
    noise_counts, seed), flash (a FakeFlash, formatted here) or flash_blocks (4 KB each;
    micropython) or store_root (CPython: a directory; None: a new temporary one), reference
    (the QST table's path), on_frame(buf) for every frame shown, safe (the select button
    held at power-up), restarts_max (crash restarts before the simulation gives up)."""

    def __init__(
        self,
        *,
        offset_counts=84000,
        counts_per_kg=215000,
        noise_counts=40,
        seed=1,
        flash=None,
        flash_blocks=48,
        store_root=None,
        reference=None,
        on_frame=None,
        safe=False,
        restarts_max=10,
        radio=None,
        device_id="SIM0000AD1",
    ):
        self.clock = clock = VirtualClock()
        self.radio = radio  # CPython: the simulator's radio (simulator.ble); None: no BLE
        self._device_id = device_id
        # Lock-step: a sample as soon as the tasks have had their turn, so a visit runs in
        # seconds. Real time: one sample per 12.5 ms of the host's clock, for whatever
        # happens outside the unit meanwhile (a laptop pairing, syncing): set_realtime().
        self.realtime = False
        self._settle = 0  # samples still taken in real time after leaving it
        self.chip = FakeHX711(clock, offset_counts, counts_per_kg, noise_counts, seed)
        self.QST_REFERENCE = reference or _reference()
        self.on_frame = on_frame
        self.safe = safe
        self.cause = PWRON_RESET
        self.restarts = 0  # restarts after a crash
        self.restarts_max = restarts_max  # more: the simulation stops
        self.crashes = 0  # main.py's crash count: kept over a restart, not a power cut
        self.pins = (Pin(), Pin(), Pin())  # up, down, select
        self.stop_pin = Pin()
        self.pwm = PWM(clock)
        self.hand = None  # called once per sample with the unit
        self.names = []  # every screen shown (core.nav's names), once each, in order
        self.unit = None  # the running app.App (main.run sets it)
        self.mount_failures = 0  # the next mounts that fail (a flash that fails for a while)
        self.hang_next_sleep = False
        self.screen = None
        self.wdt = None
        self.flash = None
        if MICROPYTHON:
            import vfs
            from fake_flash import FakeFlash

            from drivers import flashfs

            if flash is None:
                flash = FakeFlash(block_size=4096, block_count=flash_blocks)
            self.flash = flash
            vfs.VfsLfs2.mkfs(flash)  # pyright: ignore[reportArgumentType] (block protocol)
            self._fence = flashfs.Fence(self.flash)
            self.STORE_ROOT = "/flash"
        else:
            if store_root is None:
                import tempfile

                store_root = tempfile.mkdtemp(prefix="algodose-unit-")
            self.STORE_ROOT = store_root

    # --- what app.App and main.run ask of a board ----------------------------------------

    def mount_storage(self):
        if self.mount_failures:
            self.mount_failures -= 1
            raise OSError(5)
        if MICROPYTHON:
            from drivers import flashfs

            flashfs.mount(self._fence, self.STORE_ROOT)

    def sample_wait(self):
        """Lets virtual time run to just after the chip's next conversion, gives the Hand
        its turn, and yields (allocation-free on micropython)."""
        self.next_sample()
        if self._settle:
            self._settle -= 1
            return _pause(True)
        return _pause(self.realtime)

    def set_realtime(self, on):
        """Real time (True) or lock-step (False). Leaving real time, a few more samples
        keep it: every task sleeping a real period wakes before lock-step races ahead (a
        button pressed meanwhile would otherwise come and go unseen)."""
        if self.realtime and not on:
            self._settle = 4
        self.realtime = on

    def next_sample(self):
        """The clock to just after the next conversion; the watchdog; the Hand's turn."""
        clock = self.clock
        clock.sleep_us(PERIOD_US - (clock.now_us - PHASE_US) % PERIOD_US + 100)
        wdt = self.wdt
        if wdt is not None and wdt.expired():
            raise WatchdogReset()
        hand = self.hand
        if hand is not None:
            hand.step(self)

    def sleep_ms(self, ms):
        if self.hang_next_sleep:  # a task that never wakes again (the watchdog's test)
            self.hang_next_sleep = False
            return _until(self, -1)
        return _until(self, self.clock.now_us + ms * 1000)

    def hx711(self):
        from drivers.hx711 import HX711

        chip = self.chip
        return HX711(chip.dout, chip.pd_sck, self.clock)

    def stop_button(self):
        from drivers.buttons import StopButton

        stop = StopButton(self.clock)
        self.stop_pin.irq(handler=stop.irq)
        return stop

    def buttons(self):
        from drivers.buttons import Buttons

        found = Buttons(self.pins, self.clock)
        for i in range(3):
            self.pins[i].irq(handler=found.handlers[i])
        return found

    def display(self):
        self.screen = Display(self._frame)
        return self.screen

    def _frame(self, buf):
        unit = self.unit
        if unit is not None:
            name = unit.nav.name()
            if name not in self.names:
                self.names.append(name)
        if self.on_frame is not None:
            self.on_frame(buf)

    def buzzer(self):
        from drivers.buzzer import Buzzer

        return Buzzer(self.pwm)

    def watchdog(self):
        self.wdt = Watchdog(self.clock)
        return self.wdt

    def ble(self):
        """The radio as firmware/board.py gives it: on micropython the simulator's bluetooth
        module over the socket bridge (when the bridge runs: None otherwise), on CPython on
        the radio this board was given (None: no BLE)."""
        import os

        if MICROPYTHON:
            if not os.getenv("ALGODOSE_BLE_BRIDGE"):
                return None
            import bluetooth

            return bluetooth.BLE()
        if self.radio is None:
            return None
        import bluetooth

        return bluetooth.BLE(self.radio)  # pyright: ignore[reportCallIssue] (the simulator's)

    def ble_uuid(self):
        import bluetooth

        return bluetooth.UUID

    def device_id(self):
        return self._device_id

    def attach(self, hand):
        """hand: a Hand, called once per sample from now on."""
        self.hand = hand

    def reset_cause(self):
        return self.cause

    def restart(self):
        """After a crash: a soft reset, as machine.soft_reset() would. None when the
        simulation should stop (restarts_max reached)."""
        self.restarts += 1
        self.unit = None
        if self.restarts > self.restarts_max:
            return None
        self.cause = SOFT_RESET
        return SOFT_RESET

    def safe_boot(self):
        return self.safe

    def crash_count(self):
        return self.crashes

    def set_crash_count(self, count):
        self.crashes = count

    # --- the simulation's own controls ---------------------------------------------------

    def now_ms(self):
        return self.clock.now_us // 1000

    def calibrated(self, mass_g=2000, cal_id=1):
        """Writes the settings a calibration with mass_g on this chip would leave (as a
        unit calibrated earlier has them on its flash). Before the first boot."""
        from core.settings import Settings

        self.mount_storage()
        settings = Settings()
        settings.set_calibration(cal_id, self.chip.counts_per_kg * mass_g // 1000, mass_g, None)
        settings.save(self.STORE_ROOT + "/settings")
        return self

    def storage_fails(self, failing):
        """The store's storage fails (True) or works again (False): on micropython every
        flash call fails (raised, as a board's partition driver does); on CPython a file
        takes the place of the store's directory, so every file operation in it fails."""
        flash = self.flash
        if flash is not None:
            flash.fail("raise" if failing else None)
            return
        import os

        root = self.STORE_ROOT + "/log"
        if failing:
            os.rename(root, root + ".away")
            open(root, "w").close()
        else:
            os.remove(root)
            os.rename(root + ".away", root)

    def power_cut(self):
        """The supply is cut: RAM is lost (the store's batch too); the flash keeps what it
        has. The next boot is a power-on."""
        unit = self.unit
        if unit is not None:
            unit.store.close()
        self.unit = None
        self.cause = PWRON_RESET
        self.crashes = 0


def _reference():
    from core import qst  # the firmware is imported where it is used (above)

    return qst.find_reference()


def _pause(realtime):
    # A task's turn: at once in lock-step, one conversion period of the host's clock in
    # real time.
    if MICROPYTHON:
        return asyncio.sleep_ms(12 if realtime else 0)  # pyright: ignore[reportAttributeAccessIssue]
    return asyncio.sleep(PERIOD_US / 1e6 if realtime else 0)


async def _until(board, end_us):
    clock = board.clock
    while end_us < 0 or clock.now_us < end_us:
        await _pause(board.realtime)


# --- the hand on the probe and the buttons ---------------------------------------------


class Hand:
    """The clinician and the patient. script(hand) is a generator: it acts (press(),
    hold(), trial(), hold_still()) and yields a condition, a function of the Hand that is
    True when the script may go on; step() checks it once per sample. When the script ends
    the board is powered off."""

    def __init__(self, board, script, area_cm2_x100=100, patience_ms=120000):
        self.board = board
        self.area = area_cm2_x100
        self.patience_ms = patience_ms  # a condition not met by then: the script is wrong
        self._since_ms = 0
        self.unit = None
        self._events = []  # [at_ms, pin, level], time ascending
        self._stop_at = -1  # the patient presses stop at this time (ms), -1: not planned
        self._script = script(self)
        self._waiting = None
        self._calm_ms = 0  # the UI has answered the last press by then
        self.busy_ms = 0  # the probe is off the skin again by then
        self.done = False

    def step(self, board):
        self.unit = board.unit
        now = board.now_ms()
        events = self._events
        while events and events[0][0] <= now:
            _at, pin, level = events.pop(0)
            pin.set(level)
        if 0 <= self._stop_at <= now:
            self._stop_at = -1
            board.stop_pin.set(0)
            events.append([now + 150, board.stop_pin, 1])
        if self.unit is None or self.done:
            return
        waiting = self._waiting
        if waiting is not None and not waiting(self):
            if now - self._since_ms > self.patience_ms:
                raise ScriptError(
                    "waited %d s on the screen %s, in visit state %d"
                    % (self.patience_ms // 1000, self.unit.nav.name(), self.unit.visit.state)
                )
            return
        self._since_ms = now
        try:
            self._waiting = next(self._script)
        except StopIteration:
            self.done = True
            raise PowerOff() from None
        except Exception as err:
            raise ScriptError(repr(err)) from err

    # --- conditions a script yields ---

    def idle(self, _hand=None):
        """No button is held and the UI has had time to answer the last press."""
        return not self._events and self.board.now_ms() >= self._calm_ms

    def ready(self):
        """The probe is off the skin again after the last trial()."""
        return self.board.now_ms() >= self.busy_ms

    def after(self, ms):
        end = self.board.now_ms() + ms

        def waited(hand):
            return hand.board.now_ms() >= end

        return waited

    # --- actions ---

    def press(self, index, times=1, hold_ms=_PRESS_MS):
        """Presses button index (0 up, 1 down, 2 select) times, one after the other."""
        board = self.board
        at = max(board.now_ms(), self._events[-1][0] + 60 if self._events else 0)
        pin = board.pins[index]
        for _ in range(times):
            self._events.append([at, pin, 0])
            self._events.append([at + hold_ms, pin, 1])
            at += hold_ms + 80
        self._calm_ms = at + 60

    def back(self):
        self.press(2, 1, _HOLD_MS)

    def probe(self, knots):
        """The load on the probe: [(t_ms from now, kPa x 10)], linear between the knots."""
        now = self.board.now_ms()
        area = self.area
        self.board.chip.set_profile([(now + t, probe_mg(kpa_x10, area)) for t, kpa_x10 in knots])

    def trial(self, rate_x10, peak_x10, press=True, rest_ms=800, react_ms=200):
        """One ramp: rest, press at rate_x10 (kPa/s x 10) up to peak_x10 (kPa x 10), where
        the patient presses stop (press=False: never; the clinician lifts at the peak);
        react_ms later the probe comes off."""
        start = rest_ms
        peak_at = start + (peak_x10 * 1000 + rate_x10 // 2) // rate_x10
        lift = peak_at + (react_ms if press else 0)
        self.probe([(0, 0), (start, 0), (peak_at, peak_x10), (lift, peak_x10), (lift + 300, 0)])
        if press:
            self._stop_at = self.board.now_ms() + peak_at
        self.busy_ms = self.board.now_ms() + lift + 400

    def hold_still(self):
        self.probe([(0, 0)])


# --- what scripts and tests read --------------------------------------------------------


def screen(unit):
    """The text view of what the unit's screen shows now (8 rows of 21 characters)."""
    from core.draw import Canvas

    canvas = Canvas(framebuf.FrameBuffer(bytearray(1024), 128, 64, framebuf.MONO_VLSB))
    return unit.nav.draw(canvas).rows()


def raw_records(store):
    """Every record on flash as its bytes (what a pull receives), oldest first."""
    from core import record

    out = []
    buf = bytearray(1024)
    nxt = 1
    while nxt:
        used, nxt = store.read_into(buf, nxt)
        off = 0
        while off < used:
            n = record.check(buf, off, used)
            out.append(bytes(buf[off : off + n]))
            off += n
    return out


def records(store):
    """Every record on flash, decoded (core.record), oldest first."""
    from core import record

    return [record.decode(raw) for raw in raw_records(store)]


def on(name):
    """A condition: the screen is name (core.nav's names) and the hand is idle."""

    def shown(hand):
        return hand.idle() and hand.unit.nav.name() == name

    return shown


def left(name):
    def gone(hand):
        return hand.idle() and hand.unit.nav.name() != name

    return gone


def state(wanted):
    """A condition: core.visit's state is wanted."""

    def reached(hand):
        return hand.unit.visit.state == wanted

    return reached


def idle(hand):
    return hand.idle()


def tick(hand, rows, wanted, at=0):
    """Moves a list's cursor from row at down to each row of wanted in turn (rows: what
    each cursor position is) and presses ok there; returns the row it ends on."""
    for row in wanted:
        hand.press(1, rows.index(row) - at)
        hand.press(2)
        at = rows.index(row)
    return at


def then(hand, name, button=2):
    """Presses a button (ok by default) and waits for the screen name."""
    hand.press(button)
    yield on(name)


async def serve(script, board):
    """main.serve on a running event loop (beside the simulator's Bluetooth): the unit with
    script as its Hand, until the script ends (the board powers off)."""
    import main

    board.attach(Hand(board, script))
    try:
        await main.serve(board)
    except PowerOff:
        pass
    return board


def run(script, board=None, **keywords):
    """Boots the firmware's main.run on board (None: a new Board of keywords, calibrated
    unless calibrated=False) with script as the Hand; returns the board when it ends."""
    import main

    if board is None:
        calibrated = keywords.pop("calibrated", True)
        board = Board(**keywords)
        if calibrated:
            board.calibrated()
    board.attach(Hand(board, script))
    try:
        main.run(board)
    except PowerOff:
        pass
    return board

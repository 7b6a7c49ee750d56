"""`python -m simulator tui`: the virtual unit in a terminal (CPython). The firmware's real
main.run and app.App on the simulator's board, in real time; the OLED is drawn in the
terminal at every frame the unit shows. Keys are the clinician's and the patient's hands:

    w / up arrow      up              +   press harder (10 kPa/s faster; from still: start)
    s / down arrow    down            -   press softer (10 kPa/s slower; below 0 it eases off)
    enter / space     ok (select)     0   lift the probe off
    b / backspace     hold ok: back   p   the patient's stop button
    q                 quit

With keys piped in (not a terminal) they are read one at a time, 0.3 s apart in the unit's
time, and the unit runs as fast as it can (what the tests do)."""

import sys
import threading
import time

from simulator import use_firmware

KEYS_HELP = "w/s up/down  enter ok  b back  +/- harder/softer  0 lift  p stop  q quit"
_PIPE_GAP_MS = 300
_STEP_X10 = 100  # kPa/s x 10 per + or -
_ARROWS = {"\x1b[A": "w", "\x1b[B": "s"}


class Keyboard:
    """Keys from stdin on a thread: raw single keys from a terminal, else one per char."""

    def __init__(self, stream):
        self.keys = []
        self.tty = stream.isatty()
        self.closed = False
        self._stream = stream
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        stream = self._stream
        while True:
            ch = stream.read(1)
            if not ch:
                self.closed = True
                return
            if ch == "\x1b":
                ch += stream.read(2)
            self.keys.append(_ARROWS.get(ch, ch))


class Hands:
    """What the keys do to the unit, once per sample (the board calls step)."""

    def __init__(self, board, keyboard, out):
        self.board = board
        self.keyboard = keyboard
        self.out = out
        self.rate_x10 = 0  # kPa/s x 10 the probe is pressed at (negative: easing off)
        self.load_x10 = 0  # kPa x 10 on the probe now
        self._load_x10000 = 0  # the same to 1/1000, so slow presses add up
        self.last_ms = 0
        self.next_key_ms = 0
        self.releases = []  # [at_ms, pin]
        self.quit = False

    def step(self, board):
        now = board.now_ms()
        dt = now - self.last_ms
        self.last_ms = now
        if self.rate_x10:
            self._load_x10000 = max(0, self._load_x10000 + self.rate_x10 * dt)
            self.load_x10 = self._load_x10000 // 1000
            from fake_hx711 import probe_mg  # on the path once use_firmware() ran

            board.chip.set_profile([(now, probe_mg(self.load_x10))])
        for item in list(self.releases):
            if item[0] <= now:
                item[1].set(1)
                self.releases.remove(item)
        keyboard = self.keyboard
        if board.unit is None or (not keyboard.tty and now < self.next_key_ms):
            return
        if keyboard.keys:
            self.next_key_ms = now + _PIPE_GAP_MS
            self.key(board, keyboard.keys.pop(0), now)
        elif keyboard.closed and not keyboard.tty and not self.releases:
            self.quit = True
        if self.quit:
            from unit import PowerOff

            raise PowerOff()

    def key(self, board, key, now):
        pins = {"w": 0, "s": 1, "\r": 2, "\n": 2, " ": 2}
        if key in pins:
            self.press(board.pins[pins[key]], now, 120)
        elif key in ("b", "\x7f", "\b"):
            self.press(board.pins[2], now, 900)
        elif key in ("+", "="):
            self.rate_x10 = max(0, self.rate_x10) + _STEP_X10
        elif key == "-":
            self.rate_x10 -= _STEP_X10
        elif key == "0":
            self.rate_x10 = 0
            self.load_x10 = 0
            self._load_x10000 = 0
            board.chip.set_profile([(now, 0)])
        elif key == "p":
            self.press(board.stop_pin, now, 150)
        elif key == "q":
            self.quit = True
            return
        else:
            return
        if key in "+=-0p":  # the screen may not change: say what the hands did
            self.out.write(status_line(self) + "\n")

    def press(self, pin, now, hold_ms):
        pin.set(0)
        self.releases.append([now + hold_ms, pin])


def status_line(hands):
    load = hands.load_x10
    return "probe %d.%d kPa, pressing at %d kPa/s" % (load // 10, load % 10, hands.rate_x10 // 10)


def frame_text(buf, hands, board):
    import shutil

    from simulator import display

    compact = shutil.get_terminal_size((80, 24)).columns < display.WIDTH + 2
    status = status_line(hands)
    name = board.unit.nav.name() if board.unit is not None else "-"
    oled = display.to_terminal(buf, compact=compact)
    return "%s\n%s | screen: %s\n%s" % (oled, status, name, KEYS_HELP)


def run(stdin=None, stdout=None):
    """Runs the unit until q (or the end of piped keys); returns the exit code."""
    use_firmware()
    import asyncio

    import main
    from unit import Board, PowerOff

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    keyboard = Keyboard(stdin)
    board = Board()
    board.calibrated()
    hands = Hands(board, keyboard, stdout)
    clear = "\x1b[H\x1b[2J" if keyboard.tty else ""

    def on_frame(buf):
        stdout.write(clear + frame_text(buf, hands, board) + "\n")
        stdout.flush()

    board.on_frame = on_frame
    board.attach(hands)
    if keyboard.tty:  # the unit's time follows the wall clock
        start = time.monotonic()

        def paced():
            board.next_sample()
            return asyncio.sleep(max(0.0, board.now_ms() / 1000 - (time.monotonic() - start)))

        board.sample_wait = paced
    settings = _raw(stdin) if keyboard.tty else None
    try:
        main.run(board)
    except PowerOff:
        pass
    finally:
        if settings is not None:
            _restore(stdin, settings)
    board.power_cut()
    return 0


def _raw(stream):
    import termios
    import tty

    settings = termios.tcgetattr(stream.fileno())
    tty.setcbreak(stream.fileno())
    return settings


def _restore(stream, settings):
    import termios

    termios.tcsetattr(stream.fileno(), termios.TCSADRAIN, settings)

# Boot entry (DESIGN 1). On the board MicroPython runs this file after boot.py and it runs
# the unit with board.py; the simulator calls run() with its own board, the same code.
# - Safe boot: the select button held at power-up skips the app (the REPL stays free for
#   mpremote, e.g. to install a firmware that crashes at start).
# - The reset cause is the boot event's detail (core.store.Store.open).
# - Any exception out of the app, MemoryError included, is recorded as an event (after
#   whatever the store still held in RAM) and the unit restarts: a soft reset on the
#   board, a new App on the same flash in the simulator. What was stored stays stored.
# - A crash loop ends: after _LOOP_CRASHES crashes in a row, each within _STABLE_MS of its
#   start, the unit stops restarting and says so on its screen (a fault present at every
#   start would otherwise write a boot and a crash record per start until the storage is
#   full, and the unit would flicker forever). The count is kept by the board where a soft
#   reset does not clear it (the ESP32's RTC memory: a power cycle does); the REPL then
#   stays free for a USB pull of everything stored.
import sys

import micropython
from micropython import const

_LOOP_CRASHES = const(3)
_STABLE_MS = const(60000)  # an app that ran this long without a crash clears the count

try:
    micropython.alloc_emergency_exception_buf(100)  # an IRQ's error can still be reported
except AttributeError:
    pass  # the unix port (the simulator) has no IRQ to report from


def run(board):
    """Runs the unit on board until it powers off (the simulator's board.restart() returns
    None then; the real one resets and never returns)."""
    if board.safe_boot():
        print("AlgoDose: safe boot, the app is not started (REPL only)")
        return
    import asyncio

    asyncio.run(serve(board))


async def serve(board):
    """The unit's life on an event loop that is already running (run() starts one; the
    simulator's demo runs it beside the laptop's Bluetooth on its own loop)."""
    import asyncio

    cause = board.reset_cause()
    while True:
        if board.crash_count() >= _LOOP_CRASHES:
            _halt(board)
            return
        unit = None
        stable = asyncio.create_task(_stable(board))
        try:
            from app import App

            unit = App(board, cause)
            board.unit = unit  # for the REPL (and the simulator's hand): the running unit
            await unit.run()  # its tasks are cancelled when it ends, whatever the cause
        except Exception as err:  # the crash handler: every error, MemoryError included
            stable.cancel()
            board.set_crash_count(board.crash_count() + 1)
            show = getattr(sys, "print_exception", None)  # MicroPython's
            if show is not None:
                show(err, sys.stderr)  # the board's console, for whoever has it connected
            else:
                print("AlgoDose: crash:", repr(err), file=sys.stderr)
            if unit is not None:
                unit.crashed(err)
        cause = board.restart()
        if cause is None:
            return


async def _stable(board):
    await board.sleep_ms(_STABLE_MS)
    board.set_crash_count(0)


def _halt(board):
    # No app: the screen says what happened and what to do, drawn by core.ui alone (what
    # crashed may be elsewhere); if even that fails, the console says it.
    print("AlgoDose: the app crashed at every start: stopped (REPL free)", file=sys.stderr)
    try:
        from core import ui

        display = board.display()
        ui.halted(display)
        display.show()
    except Exception as err:  # noqa: BLE001 (a display that fails too: the console has it)
        print("AlgoDose: no screen:", repr(err), file=sys.stderr)


if __name__ == "__main__":
    import board

    run(board)

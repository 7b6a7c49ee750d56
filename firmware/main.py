# Boot entry (DESIGN 1). On the board MicroPython runs this file after boot.py and it runs
# the unit with board.py; the simulator calls run() with its own board, the same code.
# - Safe boot: the select button held at power-up skips the app (the REPL stays free for
#   mpremote, e.g. to install a firmware that crashes at start).
# - The reset cause is the boot event's detail (core.store.Store.open).
# - Any exception out of the app, MemoryError included, is recorded as an event (after
#   whatever the store still held in RAM) and the unit restarts: a soft reset on the
#   board, a new App on the same flash in the simulator. What was stored stays stored.
import sys

import micropython

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
    cause = board.reset_cause()
    while True:
        unit = None
        try:
            from app import App

            unit = App(board, cause)
            board.unit = unit  # for the REPL (and the simulator's hand): the running unit
            await unit.run()  # its tasks are cancelled when it ends, whatever the cause
        except Exception as err:  # the crash handler: every error, MemoryError included
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


if __name__ == "__main__":
    import board

    run(board)

# A stand-in for the unit's app on the virtual unit (tests/test_usb_pull.py): it opens the
# store on the board it is given, as app.App does, registers it with usb.attach() (the one
# line app.py gets) and keeps storing records, flushing every third one (the others wait in
# RAM, as mid-visit), until the laptop's pull interrupts it with Ctrl-C, or limit_ms has
# passed.
import time

import usb

from core import record
from core.store import Store


class Watchdog:
    """Counts its feeds: the interrupted app no longer feeds it, the pull must."""

    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


store = None
watchdog = Watchdog()


def run(board, limit_ms=60000, attach=True):
    """board: the unit's board module, as main.py hands it to the app. attach=False: an app
    that does not register its store (older firmware)."""
    global store
    board.mount_storage()
    store = Store(board.STORE_ROOT + usb.STORE_DIR)
    store.open(time.ticks_ms())  # pyright: ignore[reportAttributeAccessIssue]
    if attach:
        usb.attach(store, watchdog)
    start = time.ticks_ms()  # pyright: ignore[reportAttributeAccessIssue]
    print("app running")
    appended = 0
    while time.ticks_diff(time.ticks_ms(), start) < limit_ms:  # pyright: ignore
        store.append(record.TYPE_EVENT, appended, None, (record.EV_TIME_SET, 0, 0, appended))
        appended += 1
        if appended % 3 == 0:
            store.flush()
        time.sleep_ms(2)  # pyright: ignore[reportAttributeAccessIssue]

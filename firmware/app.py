# The bedside unit's program (DESIGN 1): asyncio tasks that feed the board's hardware into
# core.visit and core.nav and nothing more; every decision is theirs.
#   sampling  HX711 poll() at each data-ready (80 samples/s) into the visit; the stop
#             button's IRQ only sets a flag, taken here with the sample. No allocation per
#             sample in steady state (bench/bench_app.py).
#   ui        button events (decided from the IRQ's edge times) into navigation; redraws
#             only when the screen would change, at most every _FRAME_MS.
#   buzzer    the rate cue (faster / slower), rate-limited, and a beep per saved trial.
#   storage   settings and the patient table written when changed (core.atomic); after a
#             storage error the filesystem is remounted (drivers.flashfs, by the board)
#             and the same Store opened again, then the visit flushes what waits in RAM
#             (docs/storage.md, "When the flash fails").
#   watchdog  feeds the board's watchdog only while every task has checked in since the
#             last feed: a task that hangs resets the unit.
# Time is ms since boot, monotonic (ticks_diff), passed into core.* everywhere. The board
# object (board.py on the device, the simulator's on a desktop) gives the hardware, the
# waits and the storage mount: docs/hardware.md lists what it provides.
import asyncio

from micropython import const

from core import atomic, nav, ppt, qst, record
from core.draw import Canvas
from core.settings import Settings
from core.store import Store, StoreError
from core.visit import DONE, IDLE, MSG_FULL, STORAGE, Clock, Visit
from drivers.hx711 import NOT_READY

# Task numbers: the crash event's `a` (core.record EV_CRASH) and the watchdog's bits.
TASK_SAMPLING = const(1)
TASK_UI = const(2)
TASK_STORAGE = const(3)
TASK_BUZZER = const(4)
TASK_WATCHDOG = const(5)
TASK_SYNC = const(6)
_CHECKED = const(0x1E)  # sampling, ui, storage and buzzer check in (bit = 1 << task)
_UI_POLL_MS = const(10)  # buttons: an event within 10 ms of the debounced edge
_FRAME_MS = const(100)  # at most 10 redraws a second
_STORAGE_MS = const(250)
_RETRY_MS = const(1000)  # a failing flash is remounted at most once a second
_BUZZ_POLL_MS = const(50)
_CUE_EVERY_MS = const(800)  # a cue that holds sounds again after this long
_WATCHDOG_MS = const(1000)
_FASTER_HZ = const(2400)  # faster: two short high beeps; slower: one long low beep
_SLOWER_HZ = const(700)
_SAVED_HZ = const(1500)
_NO_VISIT = (IDLE, DONE)  # the visit states in which no record of a visit is still to come


class App:
    def __init__(self, board, cause=0):
        """Builds the unit on board (see the head of this file) and opens the store; cause:
        the reset cause, stored as the boot event's detail."""
        self.board = board
        clock = board.clock
        self._ticks = clock.ticks_ms
        self._diff = clock.ticks_diff
        self._last = clock.ticks_ms()
        self.ms = 0  # since boot
        self.crash_task = 0
        self._alive = 0
        self._store_down = False
        self._retry_at = 0
        root = board.STORE_ROOT
        try:
            board.mount_storage()
        except OSError:
            self._store_down = True  # everything below finds no file: the defaults
        self.settings_path = root + "/settings"
        self.patients_path = root + "/patients"
        self.settings = settings = Settings()
        try:
            settings.load(self.settings_path)  # missing or damaged: the defaults
        except OSError:
            pass
        self.patients = []
        self.list_time_s = 0
        self._load_patients()
        import usb  # the USB pull (firmware/usb.py) uses this store when it stops the app

        self.store = store = Store(root + usb.STORE_DIR)
        self.clock = Clock()
        try:
            store.open(self.now_ms(), None, cause)
        except StoreError:
            self._store_down = True  # retried by the storage task; the screen says so
        reference = qst.load_reference(board.QST_REFERENCE)
        self.visit = Visit(store, settings, reference, clock=self.clock)
        self.hx = board.hx711()
        self.stop = board.stop_button()
        self.buttons = board.buttons()
        self.display = board.display()
        self.buzzer = board.buzzer()
        self.wdt = board.watchdog()
        usb.attach(store, self.wdt)
        self.server = None  # the BLE sync server, when the board has a radio
        self._link_state = None
        self.sync_task = self._start_sync()
        # what the screens read of the laptop link: the server (None: no radio)
        self.nav = nav.Nav(self.visit, settings, store, self.patients, self.server)

    def now_ms(self):
        """ms since boot, monotonic; allocation-free while below 2**30 (12 days)."""
        now = self._ticks()
        self.ms += self._diff(now, self._last)
        self._last = now
        return self.ms

    # --- the laptop link -------------------------------------------------------------------

    def _start_sync(self):
        """The BLE sync server (firmware/ble.py, docs/protocol.md) when the board has a
        radio: self.server is what the screens read of it (pairing_open, passkey,
        pairing_left_s, syncing, sent, total; open_pairing(t_ms), close_pairing(t_ms)). It
        calls on_time_set and on_patients from its task. Returns its coroutine, run as task
        TASK_SYNC; None without a radio."""
        board = self.board
        radio = board.ble()
        if radio is None:
            return None
        from ble import SyncServer

        server = SyncServer(
            radio,
            self.store,
            uuid=board.ble_uuid(),
            device_id=board.device_id(),
            bonds_path=board.STORE_ROOT + "/bonds",
            on_time_set=self.on_time_set,
            on_patients=self.on_patients,
            ticks_ms=self.now_ms,
        )
        self.server = server
        return server.run()

    def _link_status(self):
        # What the status characteristic says that only the app knows, when it changes.
        server = self.server
        if server is None:
            return
        visit = self.visit
        state = (self.clock.valid, visit.state not in _NO_VISIT, visit.message == MSG_FULL)
        if state != self._link_state:
            self._link_state = state
            server.set_state(clock_valid=state[0], visit_open=state[1], storage_full=state[2])

    def on_time_set(self, wall_s):
        """The laptop set the clock (Current Time): anchored now, and an event records it."""
        try:
            self.visit.set_clock(self.now_ms(), wall_s)
            self.store.flush()
        except StoreError:
            self._store_down = True  # the storage task recovers; the event waits in RAM

    def on_patients(self, list_time_s, patients):
        """The laptop pushed its patient list: it replaces the table (saved at once)."""
        self.patients[:] = patients
        self.list_time_s = list_time_s
        self.nav.patients_dirty = True

    def _event(self, t, code, detail, a, b):
        fields = record.fields(record.TYPE_EVENT, {"code": code, "detail": detail, "a": a, "b": b})
        store = self.store
        try:
            store.append(record.TYPE_EVENT, t, self.clock.wall_s(t), fields)
            store.flush()
        except StoreError:
            self._store_down = True  # the storage task recovers; the event waits in RAM

    # --- the patient table: the laptop's list format (core.protocol) -----------------------

    def _load_patients(self):
        from core.protocol import PATIENTS_MAX_BYTES, ProtocolError, parse_patient_list

        try:
            got = atomic.read(
                self.patients_path, bytearray(PATIENTS_MAX_BYTES + atomic.OVERHEAD_BYTES)
            )
            if got is not None:
                self.list_time_s, self.patients[:] = parse_patient_list(got)
        except (OSError, ProtocolError):
            pass  # no table yet, or unreadable: new codes can still be entered

    def _save_patients(self):
        from core.protocol import patient_list

        table = self.patients
        while True:
            try:
                data = patient_list(table, self.list_time_s)
                break
            except ValueError:  # more than the list holds: the oldest entry goes
                if len(table) < 2:
                    raise
                table.pop(0)
        atomic.write(self.patients_path, data)

    # --- tasks ---------------------------------------------------------------------------

    async def run(self):
        """Runs every task until one fails: the exception is raised with crash_task set
        (main.py records it and restarts)."""
        tasks = []
        for number, task in (
            (TASK_SAMPLING, self._sampling),
            (TASK_UI, self._ui),
            (TASK_STORAGE, self._storage),
            (TASK_BUZZER, self._buzzer),
            (TASK_WATCHDOG, self._watchdog),
        ):
            tasks.append(asyncio.create_task(self._guard(number, task())))
        if self.sync_task is not None:
            tasks.append(asyncio.create_task(self._guard(TASK_SYNC, self.sync_task)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _guard(self, number, coro):
        try:
            await coro
        except Exception:
            if not self.crash_task:
                self.crash_task = number
            raise

    async def _sampling(self):
        hx = self.hx
        visit = self.visit
        take = self.stop.take
        wait = self.board.sample_wait
        now = self.now_ms
        while True:
            await wait()
            self._alive |= 1 << TASK_SAMPLING
            counts = hx.poll()
            if counts == NOT_READY:
                continue
            if counts is None:
                visit.fault(now(), hx.fault, hx.rail)
            else:
                visit.sample(now(), counts, take())

    async def _ui(self):
        board = self.board
        navigation = self.nav
        buttons = self.buttons
        display = self.display
        canvas = Canvas(display)
        drawn = None
        drawn_ms = -_FRAME_MS
        while True:
            await board.sleep_ms(_UI_POLL_MS)
            self._alive |= 1 << TASK_UI
            t = self.now_ms()
            key = buttons.poll()
            while key:
                navigation.press(t, key)
                key = buttons.poll()
            self.visit.tick(t)
            navigation.update(t)
            if t - drawn_ms >= _FRAME_MS:
                stamp = navigation.stamp()
                if stamp != drawn:
                    navigation.draw(canvas)
                    display.show()
                    drawn = stamp
                    drawn_ms = t

    async def _buzzer(self):
        board = self.board
        buzzer = self.buzzer
        visit = self.visit
        cued = ppt.CUE_NONE
        cued_ms = 0
        trials = visit.trial_number  # a trial ended and was saved when this rises
        while True:
            await board.sleep_ms(_BUZZ_POLL_MS)
            self._alive |= 1 << TASK_BUZZER
            t = self.now_ms()
            cue = visit.cue
            beeps = 0
            if cue == ppt.CUE_FASTER or cue == ppt.CUE_SLOWER:
                if cue != cued or t - cued_ms >= _CUE_EVERY_MS:
                    beeps = 2 if cue == ppt.CUE_FASTER else 1
                    cued_ms = t
            cued = cue
            if visit.trial_number > trials and visit.saved:
                beeps = 1
                cue = ppt.CUE_NONE
            trials = visit.trial_number
            while beeps:
                beeps -= 1
                if cue == ppt.CUE_FASTER:
                    buzzer.tone(_FASTER_HZ)
                    await board.sleep_ms(60)
                elif cue == ppt.CUE_SLOWER:
                    buzzer.tone(_SLOWER_HZ)
                    await board.sleep_ms(250)
                else:
                    buzzer.tone(_SAVED_HZ)
                    await board.sleep_ms(100)
                buzzer.off()
                await board.sleep_ms(80)

    async def _storage(self):
        board = self.board
        while True:
            await board.sleep_ms(_STORAGE_MS)
            self._alive |= 1 << TASK_STORAGE
            self.persist(self.now_ms())

    def persist(self, t):
        """What the storage task does each round: recovery, then settings and the table."""
        navigation = self.nav
        visit = self.visit
        if self._store_down or navigation.retry_storage or visit.state == STORAGE:
            if t >= self._retry_at or navigation.retry_storage:
                self._retry_at = t + _RETRY_MS
                navigation.retry_storage = False
                self._recover(t)
        if navigation.settings_dirty:
            try:
                self.settings.save(self.settings_path)
                navigation.settings_dirty = False
            except OSError:
                pass  # written again next round
        if navigation.patients_dirty:
            try:
                self._save_patients()
                navigation.patients_dirty = False
            except OSError:
                pass
        self._link_status()

    def _recover(self, t):
        # Remount and reopen the same Store (it keeps its RAM batch), then let the visit
        # flush; a full store is not a failure of the flash: the flush is only retried.
        visit = self.visit
        try:
            if self._store_down or visit.message != MSG_FULL:
                self.board.mount_storage()
                self.store.open(t, self.clock.wall_s(t))
            self._store_down = False
            visit.storage_recovered(t)
        except (OSError, StoreError):
            self._store_down = True

    async def _watchdog(self):
        board = self.board
        wdt = self.wdt
        while True:
            await board.sleep_ms(_WATCHDOG_MS)
            if self._alive & _CHECKED == _CHECKED:
                self._alive = 0
                wdt.feed()

    # --- after a crash ---------------------------------------------------------------------

    def crashed(self, err):
        """main.py's handler: the crash as an event record after whatever the store still
        holds in RAM (best effort: the store itself may be what failed), then the store is
        released for the App that follows."""
        detail = 1 if isinstance(err, MemoryError) else 2
        try:
            self._event(self.now_ms(), record.EV_CRASH, detail, self.crash_task, 0)
        except Exception:  # noqa: BLE001 (out of memory again, say): the restart matters more
            pass
        self.store.close()

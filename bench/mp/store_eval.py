# Runs on micropython: the store on LittleFS over a simulated 1 MB ESP32 flash partition
# (4096-byte blocks, VfsLfs2 defaults). Prints one JSON object.
import gc
import json
import time

import vfs
import visit_records
from fake_flash import FakeFlash

from core import record, store
from drivers import flashfs

MNT = "/bench"
ROOT = MNT + "/log"
BLOCK = 4096
BLOCKS = 256  # 1 MB
SITES = 6
TRIALS = 3
WALL_S = 1_790_000_000
BLE_PAYLOAD = 244  # MTU 247 - 3


TRIAL_FIELDS = ("masseter", "L", 1, "stop", 0, 2950, 3010, 497, 6100)


def fresh(**kw):
    gc.collect()  # the last run's 1 MB image
    flash = FakeFlash(BLOCK, BLOCKS)
    vfs.VfsLfs2.mkfs(flash)
    flashfs.mount(flashfs.Fence(flash), MNT)
    st = store.Store(ROOT, **kw)
    st.open(0, None)
    return flash, st


def done(st):
    st.close()
    vfs.umount(MNT)


class Clock:
    t_ms = 0

    def tick(self):
        self.t_ms += 700
        return self.t_ms


def session(st, clock, number, policy):
    # A realistic visit (visit_records: 6 sites x 3 trials + a summary each, recommendation,
    # response) and one event. policy: "record" flushes after every record, "trial" at
    # trial and session end, "session" at session end (and when the 1 KB batch fills).
    def put(rtype, fields):
        seq = st.append(rtype, clock.tick(), WALL_S + clock.t_ms // 1000, fields)
        if policy == "record":
            st.flush()
        return seq

    def trial_end():
        if policy == "trial":
            st.flush()

    start = visit_records.session(put, trial_end, number, SITES, TRIALS)
    put(record.TYPE_EVENT, (record.EV_OVERRIDE, 0, start, 0))
    st.flush()


def erases_per_trial(policy, sessions=20, **kw):
    flash, st = fresh(**kw)
    clock = Clock()
    before = flash.erases
    for number in range(sessions):
        session(st, clock, number, policy)
    done(st)
    return (flash.erases - before) / (sessions * SITES * TRIALS)


def fill_partition():
    # Sessions flushed at every trial end until one is refused; then the host syncs every
    # session and as many sessions again run on a full partition (reclaim at work).
    flash, st = fresh()
    clock = Clock()
    sessions = 0
    before = flash.erases
    started = time.ticks_ms()
    while True:
        try:
            session(st, clock, sessions, "trial")
        except store.StoreFull:
            break
        sessions += 1
    fill_ms = time.ticks_diff(time.ticks_ms(), started)
    fill_erases = flash.erases - before
    stats = st.stats()
    steady = 0
    before = flash.erases
    while steady < sessions // 2:
        st.ack(st.stored_seq)
        session(st, clock, sessions + steady, "trial")
        steady += 1
    steady_erases = flash.erases - before
    steady_ms = time.ticks_diff(time.ticks_ms(), started) - fill_ms
    done(st)
    # Boot with a full log: the mount scan reads every segment and slot.
    flashfs.mount(flashfs.Fence(flash), MNT)
    started = time.ticks_ms()
    st = store.Store(ROOT)
    st.open(0, None)
    mount_ms = time.ticks_diff(time.ticks_ms(), started)
    reads = read_throughput(st)
    done(st)
    trials = sessions * SITES * TRIALS
    return {
        "trials_fit": trials,
        "records_fit": stats["records"],
        "log_bytes": stats["bytes"],
        "erases_fill": fill_erases / trials,
        "erases_steady": steady_erases / (steady * SITES * TRIALS),
        "mount_full_ms": mount_ms,
        "fill_ms": fill_ms,
        "steady_ms": steady_ms,
        "read": reads,
    }


def read_all(st, readers):
    # readers interleaved, each with a 244-byte buffer, until each has read everything.
    bufs = [bytearray(BLE_PAYLOAD) for _ in range(readers)]
    nxt = [1] * readers
    chunks = 0
    nbytes = 0
    while True:
        busy = False
        for r in range(readers):
            if nxt[r]:
                used, nxt[r] = st.read_into(bufs[r], nxt[r])
                chunks += 1
                nbytes += used
                busy = True
        if not busy:
            return chunks, nbytes


def read_throughput(st):
    out = {}
    for readers in (1, 2):
        gc.collect()
        started = time.ticks_us()
        chunks, nbytes = read_all(st, readers)
        us = time.ticks_diff(time.ticks_us(), started)
        out[readers] = {
            "kb_s": nbytes * 1000 // (us or 1),
            "us_per_chunk": us // chunks,
            "fill": nbytes / chunks / BLE_PAYLOAD,
            "chunks": chunks,
        }
    return out


def heap_per_append(wall_s):
    flash, st = fresh()
    fields = TRIAL_FIELDS
    worst = 0
    total = 0
    rounds = 20
    for i in range(rounds):
        st.flush()  # an empty batch: the append below does not flush
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        st.append(record.TYPE_TRIAL, 1000 + i, wall_s, fields)
        used = gc.mem_alloc() - before
        gc.enable()
        worst = max(worst, used)
        total += used
    done(st)
    return worst, total // rounds


fill = fill_partition()
worst, mean = heap_per_append(WALL_S)
worst_nowall, _ = heap_per_append(None)
fill.update(
    {
        "trial_bytes": record.size(record.TYPE_TRIAL, WALL_S, TRIAL_FIELDS),
        "trial_bytes_no_clock": record.size(record.TYPE_TRIAL, None, TRIAL_FIELDS),
        "erases_trial": erases_per_trial("trial"),
        "erases_trial_segments": erases_per_trial("trial", journal_slots=0),
        "erases_session": erases_per_trial("session"),
        "erases_record": erases_per_trial("record"),
        "heap_append_worst": worst,
        "heap_append_mean": mean,
        "heap_append_no_clock": worst_nowall,
    }
)
print(json.dumps(fill))

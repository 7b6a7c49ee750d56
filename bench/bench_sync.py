"""The sync's budgets (DESIGN 7): notification payload use at MTU 247, a clinic day's air time
at 1M PHY from a stated model, and the laptop's ingest beside a bare executemany.

Records are real: one bedside visit run through core.visit on the simulated hardware (two
sites of three trials, each with its pressure curve, the recommendation and the dose),
stored by core.store, and streamed by core.sync's Framer exactly as the unit notifies them.

Air-time model (Bluetooth Core 5.x, LE 1M PHY, 8 us per byte on air), per notification:
  LL data PDU = preamble 1 + access address 4 + header 2 + payload + MIC 4 (encrypted) +
  CRC 3 bytes, payload = L2CAP 4 + ATT 3 + the notification (up to 244 at MTU 247, Data
  Length Extension: 251-byte PDUs); then T_IFS 150 us, the central's empty PDU (10 bytes,
  80 us) and T_IFS 150 us again. Connection interval 15 ms (what laptops ask for); a
  connection event carries as many such packets as fit in the interval less a 1.25 ms
  guard. Each RACP exchange (count, report's answer, delete: a write with response and an
  indication with its confirmation) costs 2 round trips of 2 connection events each.
  Connecting, encrypting and discovering the services (done once per sync, before the
  transfer) are not in the number.

Ingest: host_sync.db.Database.write (the rows of `records` and of each type's table, with
ON CONFLICT DO NOTHING, in one transaction) beside a bare executemany of the same rows
into the same tables of a fresh database, both to a file; the decoding before it (pure
Python, the same for any way of writing) is its own row, without a budget.
"""

import math
import os
import sqlite3
import tempfile
import time

from simulator import use_firmware

use_firmware()

from core import protocol, record  # noqa: E402

MTU = 247
PAYLOAD = MTU - 3
INTERVAL_US = 15000
GUARD_US = 1250
T_IFS_US = 150
US_PER_BYTE = 8
LL_OVERHEAD_BYTES = 1 + 4 + 2 + 4 + 3  # preamble, access address, header, MIC, CRC
L2CAP_ATT_BYTES = 4 + 3
EMPTY_PDU_BYTES = 1 + 4 + 2 + 3
RACP_EXCHANGES = 3  # count, report, delete
EVENTS_PER_EXCHANGE = 2 * 2
VISITS = 40


def one_visit():
    """The raw records of one scripted bedside visit (core.visit, the real store)."""
    from rig import Clinician, VisitRig

    rig = VisitRig(noise_counts=40, seed=11)
    hand = Clinician(rig)
    v = rig.visit
    patient = {
        "code": "P-0042", "age": 42, "sex": "F", "conditions": ("fibromyalgia",),
        "flags": ("chronic",), "contraindications": (), "overrides": (), "sessions": 0,
        "last_dose": None,
    }  # fmt: skip
    v.start(rig.sample(), patient, (("upper_trapezius", "R", "local"), ("thenar", "R", "remote")))
    for peaks in ((1500, 1560, 1480), (1310, 1260, 1350)):
        hand.hold_still()
        for p in peaks:
            hand.trial(500, p)
        v.next_site(rig.now_ms())
    v.give_dose(rig.now_ms())
    raws = [bytes(view) for _seq, view in rig.store.records()]
    rig.store.close()
    return [r for r in raws if r[0] != record.TYPE_EVENT]  # the unit's boot event


def renumbered(raws, count, first_seq=1):
    """`count` records cycling through raws, with fresh seqs (and CRCs)."""
    buf = bytearray(record.MAX_BYTES)
    out = []
    for i in range(count):
        decoded = record.decode(raws[i % len(raws)])
        rtype = record.TYPE_NAMES.index(decoded["type"])
        n = record.encode(
            buf, 0, rtype, first_seq + i, decoded["boot"], decoded["uptime_ms"],
            decoded["wall_s"], record.fields_of(decoded),
        )  # fmt: skip
        out.append(bytes(buf[:n]))
    return out


def frames_of(raws, payload=PAYLOAD):
    """The notifications the unit sends for these records (core.protocol.Framer)."""
    position = [0]

    def read_into(buf, from_seq, to_seq):
        used = 0
        i = position[0]
        while i < len(raws) and used + len(raws[i]) <= len(buf):
            buf[used : used + len(raws[i])] = raws[i]
            used += len(raws[i])
            i += 1
        position[0] = i
        return used, (i + 1 if i < len(raws) else 0)

    framer = protocol.Framer(read_into, payload)
    framer.start(1, protocol.SEQ_MAX)
    sizes = []
    while (frame := framer.frame()) is not None:
        sizes.append(len(frame))
        framer.sent(len(frame))
    return sizes


def packet_us(notification_bytes):
    data = (LL_OVERHEAD_BYTES + L2CAP_ATT_BYTES + notification_bytes) * US_PER_BYTE
    return data + T_IFS_US + EMPTY_PDU_BYTES * US_PER_BYTE + T_IFS_US


def air_time_s(sizes):
    """Connection events needed for the notifications, plus the RACP exchanges."""
    events = 0
    used_us = INTERVAL_US  # start a new event on the first packet
    for size in sizes:
        t = packet_us(size)
        if used_us + t > INTERVAL_US - GUARD_US:
            events += 1
            used_us = 0
        used_us += t
    events += RACP_EXCHANGES * EVENTS_PER_EXCHANGE
    return events * INTERVAL_US / 1e6


def ingest_times(raws):
    """(decode s, write s, bare s): host_sync.db's ingest as its two halves (decoding the
    raw records into rows; writing them, idempotent, in one transaction), and a bare
    executemany of the same rows into the same tables of a fresh database."""
    from host_sync.db import Database

    with tempfile.TemporaryDirectory() as tmp:
        db = Database(os.path.join(tmp, "ingest.db"))
        db.device_seen({"device_id": "BENCH"})
        start = time.perf_counter()
        rows, typed, _bad = db.rows("BENCH", raws, 0)
        decode_s = time.perf_counter() - start
        start = time.perf_counter()
        new = db.write("BENCH", rows, typed, 0)
        write_s = time.perf_counter() - start
        assert new == len(raws)
        db.close()
        bare = Database(os.path.join(tmp, "bare.db"))
        bare.device_seen({"device_id": "BENCH"})
        bare.close()
        conn = sqlite3.connect(os.path.join(tmp, "bare.db"), isolation_level=None)
        start = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO records VALUES (%s)" % ", ".join("?" * 9), rows)
        for rtype, values in typed.items():
            marks = ", ".join("?" * len(values[0]))
            conn.executemany("INSERT INTO %s_records VALUES (%s)" % (rtype, marks), values)
        conn.execute("COMMIT")
        bare_s = time.perf_counter() - start
        conn.close()
    return decode_s, write_s, bare_s


def rows():
    visit = one_visit()
    trials = [r for r in visit if r[0] == record.TYPE_TRIAL]
    ten_thousand = renumbered(trials, 10000)
    record_bytes = sum(len(r) for r in ten_thousand)
    packed = frames_of(ten_thousand)
    use = record_bytes / (len(packed) * PAYLOAD)
    glucose_use = record_bytes / (len(ten_thousand) * PAYLOAD)
    day = renumbered(visit, VISITS * len(visit))
    day_sizes = frames_of(day)
    day_s = air_time_s(day_sizes)
    one_per = air_time_s([len(r) + 1 for r in day])
    decode_s, write_s, bare_s = ingest_times(renumbered(visit, 100000))
    return [
        {
            "what": "sync: 10 000 trial records (%d B each) at MTU 247: notifications"
            % len(trials[0]),
            "measured": len(packed),
            "unit": "notifications",
            "budget": "-",
            "baseline": "%d, one per notification (Glucose profile)" % len(ten_thousand),
            "ok": None,
        },
        {
            "what": "sync: notification payload use at MTU 247 (of MTU - 3)",
            "measured": round(100 * use, 1),
            "unit": "%",
            "budget": ">= 90 %",
            "baseline": "%.1f %% one record per notification" % (100 * glucose_use),
            "ok": use >= 0.90,
        },
        {
            "what": "sync: a clinic day (%d visits, %d records, %d KB) modelled air time, 1M PHY"
            % (VISITS, len(day), math.ceil(sum(len(r) for r in day) / 1024)),
            "measured": round(day_s, 2),
            "unit": "s",
            "budget": "<= 1 s",
            "baseline": "%.2f s one record per notification" % one_per,
            "ok": day_s <= 1.0,
        },
        {
            "what": "host: ingest of 100 000 records into SQLite, one transaction, idempotent",
            "measured": round(100 * bare_s / write_s),
            "unit": "% of bare executemany",
            "budget": ">= 50 %",
            "baseline": "%.0f records/s, bare %.0f" % (1e5 / write_s, 1e5 / bare_s),
            "ok": bare_s / write_s >= 0.5,
        },
        {
            "what": "host: the same records decoded first (core.record, in Python)",
            "measured": round(1e5 / (decode_s + write_s)),
            "unit": "records/s",
            "budget": "-",
            "baseline": "decoding %.0f %% of it" % (100 * decode_s / (decode_s + write_s)),
            "ok": None,
        },
    ]


if __name__ == "__main__":
    for row in rows():
        print(row)

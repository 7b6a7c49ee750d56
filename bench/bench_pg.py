"""A clinic's shared PostgreSQL database (DESIGN 6, 7): the laptop's ingest of 100 000 records
beside two bare ways of putting the same rows into the same tables.

Records are the scripted bedside visit's (bench_sync.one_visit: trials, curves, summaries,
the recommendation and the dose), renumbered to 100 000 and decoded first (host_sync.db's
rows(), the same for every way of writing; SQLite's row of bench_sync times the decoding).
Measured on a throwaway server on this machine (tests/pgserver.py: Debian's PostgreSQL on a
loopback port, fsync off), each into a fresh database:
  - ingest: host_sync.pg.PostgresDatabase.write: one transaction, idempotent on (device_id,
    seq): COPY into temporary tables, then INSERT ... SELECT ... ON CONFLICT DO NOTHING;
  - bare executemany: psycopg's executemany of plain INSERTs (no conflict handling; psycopg
    pipelines them), one transaction;
  - bare COPY: COPY straight into the tables, one transaction: the fastest way in, and
    no idempotency (a second COPY of the same rows fails on the key).
The budget is SQLite's (DESIGN 7): at least 50 % of a bare executemany.
"""

import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))

import bench_sync  # noqa: E402  (bench/, on the path just above: the visit's records)
from run import not_run  # noqa: E402

RECORDS = 100000
DEVICE_ID = "BENCH"


def _bare(server, name, rows, typed, how):
    """Seconds to put the rows into a fresh database's tables, `how`: executemany or copy."""
    import psycopg

    from host_sync.db import RECORD_COLUMN_NAMES, _q, open_database, record_columns

    db = open_database(server.create_database(name))
    db.device_seen({"device_id": DEVICE_ID})
    db.close()
    tables = [("records", RECORD_COLUMN_NAMES, rows)]
    for rtype, values in typed.items():
        tables.append((rtype + "_records", ("device_id", "seq") + record_columns(rtype), values))
    with psycopg.connect(server.url(name)) as conn:
        start = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            for table, columns, values in tables:
                names = ", ".join(_q(c) for c in columns)
                if how == "copy":
                    with cursor.copy("COPY %s (%s) FROM STDIN" % (_q(table), names)) as copy:
                        for row in values:
                            copy.write_row(row)
                else:
                    marks = ", ".join(["%s"] * len(columns))
                    sql = "INSERT INTO %s (%s) VALUES (%s)" % (_q(table), names, marks)
                    cursor.executemany(sql, values)
        return time.perf_counter() - start


def ingest_times():
    """(ingest s, bare executemany s, bare COPY s), or None without a PostgreSQL server."""
    import pgserver

    from host_sync.db import open_database

    try:
        server = pgserver.PostgresServer().start()
    except pgserver.Unavailable:
        return None
    try:
        raws = bench_sync.renumbered(bench_sync.one_visit(), RECORDS)
        db = open_database(server.create_database("ingest"))
        db.device_seen({"device_id": DEVICE_ID})
        rows, typed, _bad = db.rows(DEVICE_ID, raws, 0)
        start = time.perf_counter()
        new = db.write(DEVICE_ID, rows, typed, 0)
        ingest_s = time.perf_counter() - start
        assert new == RECORDS
        db.close()
        bare_s = _bare(server, "bare", rows, typed, "executemany")
        copy_s = _bare(server, "copy", rows, typed, "copy")
    finally:
        server.stop()
    return ingest_s, bare_s, copy_s


def rows():
    what = "host: ingest of 100 000 records into PostgreSQL, one transaction, idempotent"
    times = ingest_times()
    if times is None:
        return [not_run(what, "no PostgreSQL server here: apt-get install postgresql", ">= 50 %")]
    ingest_s, bare_s, copy_s = times
    return [
        {
            "what": what,
            "measured": round(100 * bare_s / ingest_s),
            "unit": "% of bare executemany",
            "budget": ">= 50 %",
            "baseline": "%.0f records/s; bare executemany %.0f, bare COPY %.0f (ingest %.0f %%)"
            % (RECORDS / ingest_s, RECORDS / bare_s, RECORDS / copy_s, 100 * copy_s / ingest_s),
            "ok": bare_s / ingest_s >= 0.5,
        }
    ]


if __name__ == "__main__":
    for row in rows():
        print(row)

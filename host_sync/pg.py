"""A clinic's shared database on PostgreSQL (psycopg 3): `--db postgresql://...`
(docs/protocol.md, "A clinic's shared database").

The same tables, columns, schema version and migrations as the SQLite file, through
host_sync.db.Database's own methods; only what differs is here: the connection (psycopg
under the calls db.py makes of sqlite3), the column types, the catalog queries, the lock
that serialises schema changes between laptops, and the bulk insert. Ingest stays one
transaction, idempotent on (device_id, seq) with INSERT ... ON CONFLICT DO NOTHING, so
laptops pulling at once into one server lose and duplicate nothing: a record two of them
insert is stored once, by whichever commits first.
"""

import re

import psycopg
import psycopg.conninfo

from host_sync.db import RECORD_COLUMN_NAMES, Database, _q, record_columns, table_name

CONNECT_TIMEOUT_S = 10
# How long a statement waits for a lock another laptop holds (its schema change or its
# ingest of the same records) before giving up with one line: every wait has an end.
LOCK_TIMEOUT = "60s"
# The advisory lock of schema changes (any constant the clinic's other software does not
# use: "AlgoDose" in ASCII).
SCHEMA_LOCK = 0x416C676F446F7365
_TYPES = {
    # seq and uptime_ms are u32, beyond PostgreSQL's INTEGER; REAL would be single precision
    "INTEGER": "BIGINT",
    "REAL": "DOUBLE PRECISION",
    "BLOB": "BYTEA",
    "TEXT": "TEXT",
}
_PASSWORD = re.compile(r"(://[^:/@?]*):[^@/?]*@")
_PASSWORD_PARAMETER = re.compile(r"([?&])password=[^&]*&?")


def display_url(url):
    """The URL as a message may show it: without its password."""
    return _PASSWORD_PARAMETER.sub(r"\1", _PASSWORD.sub(r"\1@", url)).rstrip("?&")


class _Connection:
    """psycopg in autocommit mode under the calls host_sync.db makes of sqlite3: execute
    and executemany with `?` placeholders (the SQL there has no other `?` and no `%`), the
    transactions as explicit BEGIN / COMMIT / ROLLBACK."""

    def __init__(self, pg):
        self.pg = pg

    def execute(self, sql, args=()):
        return self.pg.execute(sql.replace("?", "%s"), args)

    def executemany(self, sql, rows):
        cursor = self.pg.cursor()
        cursor.executemany(sql.replace("?", "%s"), rows)
        return cursor  # rowcount: the rows inserted, summed over the batch

    def close(self):
        self.pg.close()


class PostgresDatabase(Database):
    """host_sync.db.Database on a PostgreSQL server; url: postgresql://USER@HOST/DBNAME
    (a password from ~/.pgpass or PGPASSWORD, not the command line; ?sslmode=require
    and the rest of libpq's parameters as the clinic's server wants them)."""

    errors = (psycopg.Error,)

    def _connect(self, url):
        self.path = display_url(url)  # what messages name
        options = {"autocommit": True}
        given = psycopg.conninfo.conninfo_to_dict(url)
        if "connect_timeout" not in given:
            options["connect_timeout"] = CONNECT_TIMEOUT_S
        if "options" not in given:
            options["options"] = "-c lock_timeout=%s" % LOCK_TIMEOUT
        return _Connection(psycopg.connect(url, **options))

    def sql_type(self, kind):
        return _TYPES[kind]

    def has_table(self, name):
        row = self.conn.execute("SELECT to_regclass(?)", (_q(name),)).fetchone()
        return row is not None and row[0] is not None

    def columns(self, table):
        cursor = self.conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema ="
            " current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        return [row[0] for row in cursor]

    def _begin_schema(self):
        self.conn.execute("BEGIN")
        self.conn.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))

    def _insert_rows(self, rows, typed):
        """COPY into temporary tables, then INSERT ... SELECT ... ON CONFLICT DO NOTHING in
        seq order (two laptops inserting the same records wait for each other in the same
        order, never deadlock): about twice executemany's speed (make bench)."""
        new = self._copy_insert("records", RECORD_COLUMN_NAMES, rows)
        for rtype, values in typed.items():
            columns = ("device_id", "seq") + record_columns(rtype)
            self._copy_insert(table_name(rtype), columns, values)
        return new

    def _copy_insert(self, table, columns, rows):
        pg = self.conn.pg
        names = ", ".join(_q(c) for c in columns)
        staging = _q("incoming_" + table)
        pg.execute("CREATE TEMPORARY TABLE %s (LIKE %s) ON COMMIT DROP" % (staging, _q(table)))
        with pg.cursor().copy("COPY %s (%s) FROM STDIN" % (staging, names)) as copy:
            for row in rows:
                copy.write_row(row)
        return pg.execute(
            "INSERT INTO %s (%s) SELECT %s FROM %s ORDER BY device_id, seq"
            " ON CONFLICT (device_id, seq) DO NOTHING" % (_q(table), names, names, staging)
        ).rowcount

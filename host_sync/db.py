"""The laptop's database: every record a device sent, raw and decoded (docs/protocol.md).

SQLite by default (a file); a clinic's shared PostgreSQL server with `open_database(
"postgresql://...")` (host_sync/pg.py): the same tables, the same SQL (quoted identifiers,
`?` placeholders, ON CONFLICT DO NOTHING), the types named through `sql_type()`.

Tables:

- `schema_version(version)`: one row; `MIGRATIONS` brings an older database up to date
  (below: "Adding a schema version").
- `devices(device_id, address, manufacturer, model, firmware, ruleset, first_seen_s,
  last_sync_s)`.
- `records(device_id, seq, type, boot, uptime_ms, wall_s, raw, received_s, decode_error)`:
  one row per record, keyed on (device_id, seq); `raw` is the record's bytes as the device
  stored them (CRC included), so anything can be decoded again later.
- one table per record type, `<type>_records` (trial_records, site_records, ...), keyed on
  (device_id, seq) too, with one column per field, named exactly as `core.record.FIELDS`
  names it (and the extra names `record.decode` gives a recommendation). The columns are
  derived from `record.FIELDS` when the database is opened: a field added to a record later
  becomes a column (ALTER TABLE ADD COLUMN) with no migration written by hand. Lists (masks
  as names, rule ids, reasons, samples) are stored as JSON text.

Ingest is idempotent on (device_id, seq): a record seen again is ignored, never duplicated.
A record whose CRC holds but whose fields do not decode is kept raw with `decode_error`.

Adding a schema version (a change record.FIELDS does not make by itself: a new table, an
index, a column renamed or retyped): write `_schema_v2(db)` with the same portable SQL (the
types through `db.sql_type()`), append `(2, _schema_v2)` to MIGRATIONS and set
SCHEMA_VERSION = 2. Opening a version-1 database then runs the step and writes version 2 in
the one transaction that also adds field columns, serialised between laptops (SQLite: BEGIN
IMMEDIATE; PostgreSQL: an advisory lock); a step that fails leaves the database as it was.
A database of a newer version than this host_sync knows is refused with one line.
"""

import contextlib
import json
import os
import sqlite3
import time

from core import record

SCHEMA_VERSION = 1
DB_FILE_NAME = "algodose.db"
URL_SCHEMES = ("postgresql://", "postgres://")

# Columns of `records` besides the key: (name, type, constraint).
_RECORD_COLUMNS = (
    ("type", "TEXT", "NOT NULL"),
    ("boot", "INTEGER", "NOT NULL"),
    ("uptime_ms", "INTEGER", "NOT NULL"),
    ("wall_s", "INTEGER", ""),
    ("raw", "BLOB", "NOT NULL"),
    ("received_s", "INTEGER", "NOT NULL"),
    ("decode_error", "TEXT", ""),
)
RECORD_COLUMN_NAMES = ("device_id", "seq") + tuple(c[0] for c in _RECORD_COLUMNS)
# Names record.decode() returns beyond FIELDS, per type (another ruleset's rule bits).
DECODE_EXTRAS = {"recommendation": ("rule_bits", "reason_rules")}
# SQL types of the fields that are neither integers nor lists ("<type>.<field>"); a list
# (LIST_FIELDS) is TEXT, every other field INTEGER. tests/test_host_db.py checks this
# against decoded records of every type.
_TEXT = "TEXT"
_REAL = "REAL"
COLUMN_TYPES = {
    "session.code": _TEXT,
    "session.sex": _TEXT,
    "session.region": _TEXT,
    "session.qst_category": _TEXT,
    "session.last_response": _TEXT,
    "trial.site": _TEXT,
    "trial.side": _TEXT,
    "trial.end": _TEXT,
    "site.site": _TEXT,
    "site.side": _TEXT,
    "site.role": _TEXT,
    "site.category": _TEXT,
    "recommendation.status": _TEXT,
    "recommendation.gauge_mm": _REAL,
    "recommendation.depth": _TEXT,
    "recommendation.manipulation": _TEXT,
    "recommendation.ruleset": _TEXT,
    "response.response": _TEXT,
    "dose.gauge_mm": _REAL,
    "dose.depth": _TEXT,
    "dose.manipulation": _TEXT,
}
# The fields that hold lists (masks as names, rule ids, reasons, samples), stored as JSON
# text.
LIST_FIELDS = frozenset(
    {
        "session.conditions",
        "session.flags",
        "session.contraindications",
        "session.overrides",
        "session.last_dose",
        "recommendation.adjuncts",
        "recommendation.sessions_per_week",
        "recommendation.overrides",
        "recommendation.reasons",
        "recommendation.rules",
        "recommendation.rule_bits",
        "recommendation.reason_rules",
        "curve.samples_kpa_x10",
        "dose.adjuncts",
    }
)


def _json_fields(rtype):
    return frozenset(name for name in record_columns(rtype) if rtype + "." + name in LIST_FIELDS)


def _json(value):
    # Lists of ints (curve samples, rule bits, rungs) are most of what is stored as JSON:
    # joined directly, as json.dumps would write them, at a fraction of its cost.
    if all(type(v) is int for v in value):
        return "[" + ",".join(map(str, value)) + "]"
    return json.dumps(value, separators=(",", ":"))


class DatabaseError(Exception):
    """The database cannot be opened or written: the message is one line for the user."""


def open_database(target):
    """--db: a postgresql:// URL (a clinic's shared server, host_sync/pg.py) or the path of
    an SQLite file. Raises DatabaseError with one line."""
    if target.startswith(URL_SCHEMES):
        from host_sync.pg import PostgresDatabase

        return PostgresDatabase(target)
    return Database(target)


def default_path():
    """Where the database lives unless --db says otherwise: the user's data directory."""
    import platformdirs

    return os.path.join(platformdirs.user_data_dir("algodose", appauthor=False), DB_FILE_NAME)


def record_types():
    """(type name, type number) of every record type."""
    return [(name, number) for number, name in enumerate(record.TYPE_NAMES) if name]


def record_columns(rtype):
    """The decoded columns of a type's table: record.FIELDS, then the decode extras."""
    number = record.TYPE_NAMES.index(rtype)
    return tuple(record.FIELDS[number]) + DECODE_EXTRAS.get(rtype, ())


def column_type(rtype, field):
    key = rtype + "." + field
    return _TEXT if key in LIST_FIELDS else COLUMN_TYPES.get(key, "INTEGER")


def table_name(rtype):
    return rtype + "_records"


def _q(name):
    return '"%s"' % name  # quoted: "end" and friends are SQL keywords


def _one_line(error):
    """A driver's message on one line (PostgreSQL's run over several)."""
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _header(raw):
    # Header fields of a CRC-valid record whose payload did not decode.
    rtype, seq, boot, uptime_ms, wall_s = record.header(raw)
    name = record.TYPE_NAMES[rtype] if 0 < rtype < len(record.TYPE_NAMES) else str(rtype)
    return name, seq, boot, uptime_ms, wall_s


class Database:
    """SQLite, the zero-setup default. The SQL is plain (quoted identifiers, ON CONFLICT DO
    NOTHING, `?` placeholders, types through sql_type()) so that host_sync.pg's
    PostgresDatabase shares every method but the few marked "backend" below."""

    errors = (sqlite3.Error,)  # backend: what its driver raises

    def __init__(self, path):
        self.path = path
        try:
            self.conn = self._connect(path)
            self._migrate()
        except (OSError, *self.errors) as error:
            raise DatabaseError(
                "cannot open the database %s: %s" % (self.path, _one_line(error))
            ) from None
        self._inserts = self._build_inserts()

    def _connect(self, path):
        """backend: the connection, with execute() and executemany() as sqlite3 has them."""
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        # Created 0600 before SQLite opens it: patient data, pseudonymous or not.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA journal_mode = WAL")
        return conn

    def close(self):
        self.conn.close()

    # --- schema ------------------------------------------------------------------------------

    def sql_type(self, kind):
        """backend: the column type for INTEGER, TEXT, REAL or BLOB."""
        return kind

    def has_table(self, name):
        """backend"""
        row = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone()
        return row is not None

    def columns(self, table):
        """backend: the table's column names, in order."""
        return [row[1] for row in self.conn.execute("PRAGMA table_info(%s)" % _q(table))]

    def _begin_schema(self):
        """backend: a transaction no other laptop's schema change runs beside (a write
        lock at once, so two laptops opening a new database do not both create it)."""
        self.conn.execute("BEGIN IMMEDIATE")

    def version(self):
        if not self.has_table("schema_version"):
            return 0
        row = self.conn.execute("SELECT version FROM schema_version").fetchone()
        return 0 if row is None else row[0]

    def _migrate(self):
        self._begin_schema()
        try:
            found = version = self.version()
            if version > SCHEMA_VERSION:
                raise DatabaseError(
                    "the database %s is from a newer host_sync (schema %d; this one knows %d):"
                    " update host_sync" % (self.path, version, SCHEMA_VERSION)
                )
            for step_version, step in MIGRATIONS:
                if version < step_version:
                    step(self)
                    version = step_version
            if version != found:
                self.conn.execute("DELETE FROM schema_version")
                self.conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            self._add_field_columns()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def _add_field_columns(self):
        # Columns follow record.FIELDS: a field added to a record type becomes a column.
        for rtype, _number in record_types():
            have = set(self.columns(table_name(rtype)))
            for name in record_columns(rtype):
                if name not in have:
                    self.conn.execute(
                        "ALTER TABLE %s ADD COLUMN %s %s"
                        % (
                            _q(table_name(rtype)),
                            _q(name),
                            self.sql_type(column_type(rtype, name)),
                        )
                    )

    # --- devices -------------------------------------------------------------------------------

    def device_seen(self, info, address=None, now_s=None):
        """Insert or update a device from its Device Information (a dict: device_id,
        manufacturer, model, firmware, ruleset)."""
        now_s = int(time.time()) if now_s is None else now_s
        self.conn.execute(
            "INSERT INTO devices (device_id, address, manufacturer, model, firmware, ruleset,"
            " first_seen_s) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id) DO UPDATE SET"
            " address = COALESCE(excluded.address, devices.address),"
            " manufacturer = excluded.manufacturer, model = excluded.model,"
            " firmware = excluded.firmware, ruleset = excluded.ruleset",
            (
                info["device_id"],
                address,
                info.get("manufacturer"),
                info.get("model"),
                info.get("firmware"),
                info.get("ruleset"),
                now_s,
            ),
        )

    def devices(self):
        cursor = self.conn.execute(
            "SELECT device_id, address, model, firmware, ruleset, last_sync_s FROM devices"
            " ORDER BY COALESCE(last_sync_s, first_seen_s) DESC"
        )
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def highest_seq(self, device_id):
        """The highest seq held for a device (0: none): a pull resumes after it."""
        row = self.conn.execute(
            "SELECT MAX(seq) FROM records WHERE device_id = ?", (device_id,)
        ).fetchone()
        return row[0] or 0

    def raw_records(self, device_id=None):
        """Every stored record as (device_id, seq, raw bytes), in (device_id, seq) order; one
        device's only when device_id is given. What exports and reports read: they decode
        with core.record themselves, so any backend serves them with this plain SELECT."""
        sql = "SELECT device_id, seq, raw FROM records"
        args = ()
        if device_id is not None:
            sql += " WHERE device_id = ?"
            args = (device_id,)
        for row in self.conn.execute(sql + " ORDER BY device_id, seq", args):
            yield row[0], row[1], bytes(row[2])

    def count(self, device_id, rtype=None):
        if rtype is None:
            sql, args = "SELECT COUNT(*) FROM records WHERE device_id = ?", (device_id,)
        else:
            sql = "SELECT COUNT(*) FROM records WHERE device_id = ? AND type = ?"
            args = (device_id, rtype)
        return self.conn.execute(sql, args).fetchone()[0]

    # --- ingest --------------------------------------------------------------------------------

    def _build_inserts(self):
        inserts = {}
        for rtype, _number in record_types():
            columns = ("device_id", "seq") + record_columns(rtype)
            inserts[rtype] = (
                "INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (device_id, seq) DO NOTHING"
                % (
                    _q(table_name(rtype)),
                    ", ".join(_q(c) for c in columns),
                    ", ".join("?" for _ in columns),
                ),
                record_columns(rtype),
                _json_fields(rtype),
            )
        return inserts

    def ingest(self, device_id, raws, received_s=None, last_sync=True):
        """Stores raw records (bytes, each one whole record, CRC-checked by the caller or
        here) in ONE transaction; returns (new, already held, undecodable). Records already
        held are left as they are. Raises DatabaseError if the transaction fails (nothing of
        it is kept then)."""
        received_s = int(time.time()) if received_s is None else received_s
        rows, typed, bad = self.rows(device_id, raws, received_s)
        new = self.write(device_id, rows, typed, received_s if last_sync else None)
        return new, len(rows) - new, bad

    def rows(self, device_id, raws, received_s):
        """Decodes raw records into the rows of `records` and of each type's table:
        (records rows, {type: rows}, undecodable count)."""
        rows = []
        typed = {}
        bad = 0
        inserts = self._inserts
        for raw in raws:
            raw = bytes(raw)
            try:
                decoded = record.decode(raw)
            except record.RecordError as error:
                if record.check(raw, 0, len(raw)) != len(raw):
                    raise DatabaseError(
                        "a record that is not whole reached the database"
                    ) from None
                rtype, seq, boot, uptime_ms, wall_s = _header(raw)
                rows.append(
                    (device_id, seq, rtype, boot, uptime_ms, wall_s, raw, received_s, str(error))
                )
                bad += 1
                continue
            rtype = decoded["type"]
            seq = decoded["seq"]
            rows.append(
                (
                    device_id,
                    seq,
                    rtype,
                    decoded["boot"],
                    decoded["uptime_ms"],
                    decoded["wall_s"],
                    raw,
                    received_s,
                    None,
                )
            )
            _sql, columns, json_fields = inserts[rtype]
            values = [device_id, seq]
            for name in columns:
                value = decoded.get(name)
                if name in json_fields and value is not None:
                    value = _json(value)
                values.append(value)
            typed.setdefault(rtype, []).append(values)
        return rows, typed, bad

    def write(self, device_id, rows, typed, last_sync_s=None):
        """Inserts decoded rows in ONE transaction, idempotent on (device_id, seq); the
        device's last sync time with them. Returns how many records were new."""
        conn = self.conn
        try:
            conn.execute("BEGIN")
            new = self._insert_rows(rows, typed)
            if last_sync_s is not None:
                conn.execute(
                    "UPDATE devices SET last_sync_s = ? WHERE device_id = ?",
                    (last_sync_s, device_id),
                )
            conn.execute("COMMIT")
        except self.errors as error:
            with contextlib.suppress(*self.errors):  # the connection may be gone
                conn.execute("ROLLBACK")
            raise DatabaseError(
                "cannot write to the database %s: %s" % (self.path, _one_line(error))
            ) from None
        return new

    def _insert_rows(self, rows, typed):
        """backend: the rows of `records` and of the type tables, inside the transaction;
        how many records were new."""
        new = self.conn.executemany(
            "INSERT INTO records (%s) VALUES (%s) ON CONFLICT (device_id, seq) DO NOTHING"
            % (", ".join(_q(c) for c in RECORD_COLUMN_NAMES), ", ".join("?" * 9)),
            rows,
        ).rowcount
        for rtype, values in typed.items():
            self.conn.executemany(self._inserts[rtype][0], values)
        return new

    def mark_synced(self, device_id, now_s=None):
        self.conn.execute(
            "UPDATE devices SET last_sync_s = ? WHERE device_id = ?",
            (int(time.time()) if now_s is None else now_s, device_id),
        )


def _schema_v1(db):
    conn = db.conn
    integer = db.sql_type("INTEGER")
    conn.execute("CREATE TABLE schema_version (version %s NOT NULL)" % integer)
    conn.execute(
        "CREATE TABLE devices (device_id TEXT PRIMARY KEY, address TEXT, manufacturer TEXT,"
        " model TEXT, firmware TEXT, ruleset TEXT, first_seen_s %s NOT NULL,"
        " last_sync_s %s)" % (integer, integer)
    )
    conn.execute(
        "CREATE TABLE records (device_id TEXT NOT NULL REFERENCES devices (device_id),"
        " seq %s NOT NULL, %s, PRIMARY KEY (device_id, seq))"
        % (
            integer,
            ", ".join(
                ("%s %s %s" % (_q(name), db.sql_type(kind), constraint)).strip()
                for name, kind, constraint in _RECORD_COLUMNS
            ),
        )
    )
    for rtype, _number in record_types():
        # The field columns are added by _add_field_columns (from record.FIELDS).
        conn.execute(
            "CREATE TABLE %s (device_id TEXT NOT NULL, seq %s NOT NULL,"
            " PRIMARY KEY (device_id, seq),"
            " FOREIGN KEY (device_id, seq) REFERENCES records (device_id, seq))"
            % (_q(table_name(rtype)), integer)
        )


# (version, step): each step brings a database from the version before it to this one.
MIGRATIONS = ((1, _schema_v1),)

"""The laptop's database on both backends, SQLite (a file) and a clinic's shared PostgreSQL
server (tests/pgserver.py starts a real one): the same columns, the same idempotent ingest,
also when laptops write at once; the schema version and its migration path; one line for
what cannot be opened. Two laptops pulling two virtual units over USB at once into one
server: every record once (host_sync/db.py, host_sync/pg.py)."""

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest
from test_host_sync import DEVICE_ID, SAMPLES, raw
from usb_rig import cli, held, stored, usb_unit

from core import record
from host_sync import db as dbm
from host_sync import export, pg, visits
from host_sync.transport import EXIT_DATABASE
from simulator import clinic


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """Where a database is: an SQLite file, or a fresh database on the PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "algodose.db")
    return request.getfixturevalue("postgresql_url")


def opened(target):
    db = dbm.open_database(target)
    db.device_seen({"device_id": DEVICE_ID, "model": "m", "firmware": "f", "ruleset": "r"})
    return db


def every_type(first_seq=1):
    return [raw(rtype, seq) for seq, (rtype, _n) in enumerate(dbm.record_types(), first_seq)]


def test_columns_are_the_record_fields_on_each_backend(target):
    db = opened(target)
    for rtype, number in dbm.record_types():
        columns = db.columns(dbm.table_name(rtype))
        assert columns == ["device_id", "seq", *record.FIELDS[number]] + list(
            dbm.DECODE_EXTRAS.get(rtype, ())
        )
    assert db.columns("records") == list(dbm.RECORD_COLUMN_NAMES)
    assert db.version() == dbm.SCHEMA_VERSION == 1


def test_postgresql_types_hold_a_u32_seq_and_a_gauge_exactly(postgresql_url):
    db = opened(postgresql_url)
    top = 0xFFFFFFFE  # the store's last seq: beyond PostgreSQL's INTEGER, as uptime_ms
    buf = bytearray(record.MAX_BYTES)
    fields = SAMPLES["dose"]
    n = record.encode(buf, 0, record.TYPE_DOSE, top, 1, 0xFFFFFFFF, 0xFFFFFFFF, fields)
    assert db.ingest(DEVICE_ID, [bytes(buf[:n])]) == (1, 0, 0)
    assert db.highest_seq(DEVICE_ID) == top
    row = db.conn.execute("SELECT uptime_ms, wall_s FROM records").fetchone()
    assert tuple(row) == (0xFFFFFFFF, 0xFFFFFFFF)
    kinds = dict(
        db.conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'dose_records'"
        ).fetchall()
    )
    assert (kinds["seq"], kinds["gauge_mm"], kinds["adjuncts"]) == (
        "bigint",
        "double precision",
        "text",
    )
    assert db.conn.execute("SELECT gauge_mm FROM dose_records").fetchone() == (0.16,)


def test_ingest_is_idempotent_and_gives_the_raw_bytes_back(target):
    db = opened(target)
    raws = every_type()
    assert db.ingest(DEVICE_ID, raws, received_s=5) == (8, 0, 0)
    assert db.ingest(DEVICE_ID, raws[2:] + [raw("trial", 9)], received_s=6) == (1, 6, 0)
    assert db.count(DEVICE_ID) == 9 and db.highest_seq(DEVICE_ID) == 9
    assert db.count(DEVICE_ID, "trial") == 2
    assert [r for _d, _s, r in db.raw_records(DEVICE_ID)] == raws + [raw("trial", 9)]
    row = db.conn.execute(
        'SELECT site, side, trial, "end", flags, ppt_kpa_x10 FROM trial_records WHERE seq = 2'
    ).fetchone()
    assert tuple(row) == ("infraspinatus", "L", 2, "stop", 5, 3125)
    row = db.conn.execute("SELECT conditions, last_dose, qst_z_x100 FROM session_records")
    assert tuple(row.fetchone()) == ('["fibromyalgia"]', "[1,6,0,1]", -160)
    assert db.devices()[0]["last_sync_s"] == 6


def test_raw_records_come_in_device_then_seq_order(target):
    db = opened(target)
    db.device_seen({"device_id": "0000AAAA0000"})
    db.ingest(DEVICE_ID, [raw("trial", 5), raw("trial", 2)])
    db.ingest("0000AAAA0000", [raw("event", 9), raw("event", 1)])
    assert [(d, s) for d, s, _r in db.raw_records()] == [
        ("0000AAAA0000", 1),
        ("0000AAAA0000", 9),
        (DEVICE_ID, 2),
        (DEVICE_ID, 5),
    ]
    assert [s for _d, s, _r in db.raw_records(DEVICE_ID)] == [2, 5]


# -- the schema version and its migration path ------------------------------------------------


def with_version_2(monkeypatch, step):
    monkeypatch.setattr(dbm, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(dbm, "MIGRATIONS", dbm.MIGRATIONS + ((2, step),))


def test_a_version_1_database_migrates_to_version_2_once(target, monkeypatch):
    db = opened(target)
    db.ingest(DEVICE_ID, every_type())
    db.close()
    runs = []

    def add_notes(db):  # what a version 2 might add: a table of the clinician's notes
        runs.append(db.version())
        db.conn.execute(
            "CREATE TABLE notes (device_id TEXT NOT NULL, seq %s NOT NULL, note TEXT)"
            % db.sql_type("INTEGER")
        )

    with_version_2(monkeypatch, add_notes)
    db = dbm.open_database(target)
    assert runs == [1] and db.version() == 2
    assert db.columns("notes") == ["device_id", "seq", "note"]
    assert db.count(DEVICE_ID) == 8  # the records stay
    db.close()
    db = dbm.open_database(target)  # opened again: nothing to do
    assert runs == [1] and db.version() == 2


def test_a_migration_that_fails_leaves_the_database_as_it_was(target, monkeypatch):
    opened(target).close()

    def broken(db):
        db.conn.execute("CREATE TABLE half_done (x TEXT)")
        db.conn.execute("SELECT no_such_column FROM records")

    with_version_2(monkeypatch, broken)
    with pytest.raises(dbm.DatabaseError, match="cannot open the database") as error:
        dbm.open_database(target)
    assert "\n" not in str(error.value)
    monkeypatch.undo()
    db = dbm.open_database(target)
    assert db.version() == 1 and not db.has_table("half_done")


def test_a_database_from_a_newer_host_sync_is_refused_with_one_line(target):
    db = opened(target)
    db.conn.execute("UPDATE schema_version SET version = 99")
    db.close()
    with pytest.raises(dbm.DatabaseError) as error:
        dbm.open_database(target)
    assert "newer host_sync (schema 99; this one knows 1): update host_sync" in str(error.value)
    assert "\n" not in str(error.value)


# -- laptops at once ----------------------------------------------------------------------------


def at_once(*jobs):
    """Runs the jobs in threads started together; re-raises the first error."""
    errors = []
    ready = threading.Barrier(len(jobs))

    def run(job):
        try:
            ready.wait(timeout=30)
            job()
        except BaseException as e:  # handed to the test below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        raise errors[0]


def test_laptops_opening_a_new_database_at_once_create_it_once(target):
    versions = []

    def laptop():
        db = dbm.open_database(target)
        versions.append(db.version())
        db.close()

    at_once(*[laptop] * 4)
    assert versions == [1] * 4


def test_laptops_ingesting_the_same_records_at_once_store_each_once(target):
    opened(target).close()
    trials = [raw("trial", seq) for seq in range(1, 1201)]
    news = []

    def laptop(part):
        db = dbm.open_database(target)
        for at in range(0, len(part), 100):  # as a pull commits: batch after batch
            news.append(db.ingest(DEVICE_ID, part[at : at + 100])[0])
        db.close()

    at_once(lambda: laptop(trials[:800]), lambda: laptop(trials[400:]))
    db = dbm.open_database(target)
    assert sum(news) == 1200 and db.count(DEVICE_ID) == 1200
    assert [r for _d, _s, r in db.raw_records()] == trials


# -- one line for what cannot be opened ----------------------------------------------------------


def test_a_server_that_is_not_there_is_one_line_without_the_password():
    from pgserver import free_port

    url = "postgresql://clinic:s3cret@127.0.0.1:%d/algodose?connect_timeout=2" % free_port()
    with pytest.raises(dbm.DatabaseError) as error:
        dbm.open_database(url)
    text = str(error.value)
    assert text.startswith("cannot open the database postgresql://clinic@127.0.0.1:")
    assert "s3cret" not in text and "\n" not in text


@pytest.mark.parametrize(
    "url, shown",
    [
        ("postgresql://u:pw@host/db", "postgresql://u@host/db"),
        ("postgresql://u@host:5433/db", "postgresql://u@host:5433/db"),
        ("postgres://u:p%40ss@host/db?sslmode=require", "postgres://u@host/db?sslmode=require"),
        (
            "postgresql://host/db?password=pw&sslmode=require",
            "postgresql://host/db?sslmode=require",
        ),
        (
            "postgresql://host/db?sslmode=require&password=pw",
            "postgresql://host/db?sslmode=require",
        ),
    ],
)
def test_messages_name_the_server_without_the_password(url, shown):
    assert pg.display_url(url) == shown


def test_the_cli_says_it_cannot_reach_the_server_and_exits_6(tmp_path):
    from pgserver import free_port

    url = "postgresql://clinic:s3cret@127.0.0.1:%d/algodose?connect_timeout=2" % free_port()
    proc = cli("pull", "--serial", str(tmp_path / "ttyACM0"), "--db", url)
    assert proc.returncode == EXIT_DATABASE
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: cannot open the database postgresql://clinic@")
    assert "s3cret" not in proc.stderr


def test_the_url_can_come_from_the_environment(postgresql_url, tmp_path, monkeypatch):
    from host_sync import cli

    monkeypatch.setenv(cli.DB_VARIABLE, postgresql_url)
    args = cli._parser().parse_args(["pull", "--serial", "x"])
    db = cli._open_db(args)
    assert isinstance(db, pg.PostgresDatabase) and db.version() == 1
    args = cli._parser().parse_args(["pull", "--db", str(tmp_path / "here.db")])
    assert type(cli._open_db(args)) is dbm.Database  # --db wins


# -- two laptops, two units, one server -------------------------------------------------------


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")
def test_two_laptops_pull_two_units_at_once_into_one_server(postgresql_url, tmp_path):
    ids = ("0A0B0C0D0E01", "0A0B0C0D0E02")
    units = [usb_unit(tmp_path / i, device_id=i, records=2500) for i in ids]
    with units[0], units[1]:
        for round_ in ("first", "second"):  # the second finds nothing new on either
            laptops = [
                subprocess.Popen(
                    [sys.executable, "-m", "host_sync", "pull", "--serial", unit.port],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=dict(os.environ, ALGODOSE_DB=postgresql_url),
                )
                for unit in units
            ]
            said = [laptop.communicate(timeout=120) for laptop in laptops]
            assert [laptop.returncode for laptop in laptops] == [0, 0], said
            if round_ == "first":
                assert [out.split("\n")[0] for out, _err in said] == [
                    "%s: 2502 records received, 2502 new" % i for i in ids
                ]
            else:
                assert [out.split("\n")[0] for out, _err in said] == [
                    "%s: nothing new" % i for i in ids
                ]
    db = dbm.open_database(postgresql_url)
    for device_id, unit in zip(ids, units, strict=True):
        on_unit, acked = stored(unit)
        assert held(db, device_id) == on_unit  # every record once, none lost
        assert acked == max(on_unit)
    assert db.count(ids[0]) + db.count(ids[1]) == len(list(db.raw_records())) == 5004


def test_a_role_that_may_only_read_opens_the_database_and_cannot_write(postgresql_url):
    db = opened(postgresql_url)
    db.ingest(DEVICE_ID, every_type())
    name = postgresql_url.rsplit("/", 1)[1]
    db.conn.execute("CREATE ROLE reader LOGIN")
    db.conn.execute('GRANT CONNECT ON DATABASE "%s" TO reader' % name)
    db.conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader")
    db.close()
    reader = dbm.open_database(postgresql_url.replace("//algodose@", "//reader@"))
    assert reader.version() == 1 and len(list(reader.raw_records())) == 8
    with pytest.raises(dbm.DatabaseError, match="cannot write.*permission denied"):
        reader.ingest(DEVICE_ID, [raw("trial", 99)])


# -- exports and reports read a shared server as they read a file ------------------------------


def test_exports_and_reports_run_on_the_server_as_on_a_file(postgresql_url, tmp_path):
    sqlite_path = str(tmp_path / "clinic.db")
    clinic.build(dbm.Database(sqlite_path))  # real visits on the simulated unit
    moved = export.write_json(visits.load(dbm.Database(sqlite_path)), str(tmp_path / "m.json"))
    server = dbm.open_database(postgresql_url)
    assert export.ingest_json(server, moved) == len(moved["records"]) > 0
    outputs = {}
    for name, where in (("file", sqlite_path), ("server", postgresql_url)):
        for fmt in ("json", "fhir"):
            out = tmp_path / ("%s.%s.json" % (name, fmt))
            proc = cli("export", "--format", fmt, "--db", where, "--out", str(out))
            assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
            document = json.loads(out.read_text())
            document.pop("generated_s", None)
            document.pop("timestamp", None)
            outputs[name, fmt] = document
        report = cli("report", "--patient", "P-0042", "--db", where, "--out", str(tmp_path / name))
        assert (report.returncode, report.stderr) == (0, ""), report.stderr
    assert outputs["server", "json"] == outputs["file", "json"]
    assert outputs["server", "fhir"] == outputs["file", "fhir"]
    assert sorted(p.name for p in (tmp_path / "server").iterdir()) == sorted(
        p.name for p in (tmp_path / "file").iterdir()
    )

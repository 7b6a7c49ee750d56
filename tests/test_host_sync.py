"""host_sync on the laptop: the database (columns from core.record.FIELDS, idempotent
ingest, schema version), the patient CSV's refusals, and the CLI as a clinician runs it (its
own process, on the simulator's air through simulator.ble.host_runner; one clear line and
an exit code for every error a user can cause)."""

import asyncio
import os
import sqlite3
import subprocess
import sys

import pytest
from sync_rig import DEVICE_ID, Device

from core import case, dosage, protocol, record
from host_sync import db as dbm
from host_sync import patients
from host_sync.transport import EXIT_DATABASE, EXIT_NO_ADAPTER, EXIT_NOT_PAIRED, EXIT_USAGE
from simulator.ble.rig import Rig

WALL_S = 1796083200
RECOMMENDATION = record.fields(
    record.TYPE_RECOMMENDATION,
    dosage.recommend(
        case.parse_case({"age": 30, "region": "lower_limb", "recent_exercise": True})
    ),
)
SAMPLES = {
    "session": (
        "P-0042", 52, "F", ["fibromyalgia"], ["chronic"], ["pregnancy_first_trimester"],
        ["pregnancy_first_trimester"], "shoulder", -160, None, 4, "tolerated", [1, 6, 0, 1],
    ),
    "trial": ("infraspinatus", "L", 2, "stop", 5, 3125, 3300, 498, 6240),
    "site": ("infraspinatus", "R", "local", 3, 2, 1, None, 3050, 87, None, 163, "high"),
    "recommendation": RECOMMENDATION,
    "response": ("flare", 40),
    "curve": (12, 0, 100, [0, 50, 101, 65535]),
    "event": (record.EV_TIME_SET, 0, 0, WALL_S),
    "dose": (4, 0.16, 6, "superficial", "basic", ["e-stim"]),
}  # fmt: skip


def raw(rtype, seq, wall_s=WALL_S):
    buf = bytearray(record.MAX_BYTES)
    number = record.TYPE_NAMES.index(rtype)
    n = record.encode(buf, 0, number, seq, 1, 1000 * seq, wall_s, tuple(SAMPLES[rtype]))
    return bytes(buf[:n])


def opened(tmp_path):
    db = dbm.Database(str(tmp_path / "algodose.db"))
    db.device_seen({"device_id": DEVICE_ID, "model": "m", "firmware": "f", "ruleset": "r"})
    return db


# -- the database ----------------------------------------------------------------------------


def test_columns_are_the_record_fields(tmp_path):
    db = opened(tmp_path)
    for rtype, number in dbm.record_types():
        columns = db.columns(dbm.table_name(rtype))
        assert columns[:2] == ["device_id", "seq"]
        assert tuple(columns[2:]) == record.FIELDS[number] + dbm.DECODE_EXTRAS.get(rtype, ())
    assert db.version() == dbm.SCHEMA_VERSION


def test_every_decoded_value_fits_its_column_type(tmp_path):
    # A field added to a record with a value that is not an int needs its type named in
    # host_sync.db.COLUMN_TYPES: this fails until it is.
    for rtype, _number in dbm.record_types():
        decoded = record.decode(raw(rtype, 1))
        for name in dbm.record_columns(rtype):
            value = decoded[name]
            kind = dbm.column_type(rtype, name)
            key = rtype + "." + name
            if value is None:
                continue
            if isinstance(value, (list, tuple)):
                assert key in dbm.LIST_FIELDS, key
            elif isinstance(value, str):
                assert kind == "TEXT" and key not in dbm.LIST_FIELDS, key
            elif isinstance(value, float):
                assert kind == "REAL", key
            else:
                assert type(value) is int and kind == "INTEGER", key


def test_a_new_field_becomes_a_column_when_the_database_opens(tmp_path, monkeypatch):
    opened(tmp_path).close()
    monkeypatch.setitem(dbm.DECODE_EXTRAS, "trial", ("hand",))
    db = dbm.Database(str(tmp_path / "algodose.db"))
    assert db.columns("trial_records")[-1] == "hand"


def test_ingest_is_idempotent_and_keeps_raw_bytes(tmp_path):
    db = opened(tmp_path)
    raws = [raw(rtype, seq) for seq, (rtype, _n) in enumerate(dbm.record_types(), start=1)]
    assert db.ingest(DEVICE_ID, raws, received_s=5) == (8, 0, 0)
    assert db.ingest(DEVICE_ID, raws[2:] + [raw("trial", 9)], received_s=6) == (1, 6, 0)
    assert db.count(DEVICE_ID) == 9 and db.highest_seq(DEVICE_ID) == 9
    stored = db.conn.execute("SELECT raw FROM records ORDER BY seq").fetchall()
    assert [r[0] for r in stored] == raws + [raw("trial", 9)]
    row = db.conn.execute(
        'SELECT site, side, trial, "end", flags, ppt_kpa_x10 FROM trial_records WHERE seq = 2'
    ).fetchone()
    assert row == ("infraspinatus", "L", 2, "stop", 5, 3125)
    row = db.conn.execute(
        "SELECT conditions, last_dose, qst_z_x100, qst_category FROM session_records"
    ).fetchone()
    assert row == ('["fibromyalgia"]', "[1,6,0,1]", -160, None)
    gauge, rules, ruleset = db.conn.execute(
        "SELECT gauge_mm, rules, ruleset FROM recommendation_records"
    ).fetchone()
    assert isinstance(gauge, float) and ruleset == dosage.RULESET and rules.startswith("[")
    assert db.conn.execute("SELECT wall_s FROM records WHERE seq = 1").fetchone() == (WALL_S,)


def test_a_record_that_does_not_decode_is_kept_raw(tmp_path):
    db = opened(tmp_path)
    good = bytearray(raw("trial", 3))
    good[13 + 4] = 200  # the site byte: no such site; the CRC is made to hold again
    good[-4:] = (__import__("binascii").crc32(bytes(good[:-4]))).to_bytes(4, "little")
    assert record.check(good, 0, len(good)) == len(good)
    assert db.ingest(DEVICE_ID, [bytes(good)]) == (1, 0, 1)
    row = db.conn.execute("SELECT type, seq, decode_error FROM records").fetchone()
    assert row[:2] == ("trial", 3) and "site" in row[2]
    assert db.count(DEVICE_ID, "trial") == 1
    assert db.conn.execute("SELECT COUNT(*) FROM trial_records").fetchone() == (0,)


def test_a_newer_or_unopenable_database_is_one_line(tmp_path):
    path = tmp_path / "new.db"
    opened(tmp_path).close()
    conn = sqlite3.connect(str(tmp_path / "algodose.db"))
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(dbm.DatabaseError, match="newer host_sync"):
        dbm.Database(str(tmp_path / "algodose.db"))
    os.mkdir(path)
    with pytest.raises(dbm.DatabaseError, match="cannot open"):
        dbm.Database(str(path))


# -- the patient CSV -------------------------------------------------------------------------

GOOD_CSV = (
    "code,age,sex,conditions,flags,contraindications,sessions,last_gauge_mm,last_needles,"
    "last_depth,last_manipulation,last_adjuncts\n"
    "P-0001,42,F,fibromyalgia,chronic,,3,0.16,6,superficial,basic,\n"
    "K7,70,M,diabetes;cancer,,bleeding_disorder,0,,,,,e-stim\n"
)


def test_a_good_patient_file():
    got, refused = patients.read_csv(GOOD_CSV.encode())
    assert refused == []
    assert got[0] == {
        "code": "P-0001", "age": 42, "sex": "F", "conditions": ("fibromyalgia",),
        "flags": ("chronic",), "contraindications": (), "last_adjuncts": (), "sessions": 3,
        "last_dose": (0, 6, 0, 0),
    }  # fmt: skip
    assert got[1]["conditions"] == ("diabetes", "cancer") and got[1]["last_dose"] is None
    msg = protocol.patient_list(got, WALL_S)
    assert protocol.parse_patient_list(msg)[1][1]["contraindications"] == ("bleeding_disorder",)


@pytest.mark.parametrize(
    ("row", "says"),
    [
        ("SMITH1,40,F", "row 2, column code: 'SMITH1' looks like a name"),
        ("JO-HN,40,F", "row 2, column code: 'JO-HN' is not a patient code"),
        ("P-1984,40,F", "row 2, column code: 'P-1984' holds what looks like a year"),
        ("P-7,1980-04-12,F", "row 2, column age: '1980-04-12' looks like a date"),
        ("P-7,12.04.1980,F", "row 2, column age: '12.04.1980' looks like a date"),
        ("P-7,40,19800412", "row 2, column sex: '19800412' looks like a date"),
        ("P-7,121,F", "row 2, column age: '121': a whole number from 0 to 120"),
        ("P-7,40,X", "row 2, column sex: 'X': one of F, M, U"),
        ("P-7,40,F,gout", "row 2, column conditions: 'gout': one of"),
        ("P-7,40,F,,x", "row 2: 5 cells, the header has 4"),
    ],
)
def test_refused_rows_name_the_row_and_the_column(row, says):
    got, refused = patients.read_csv(("code,age,sex,conditions\n%s\nP-8,50,M,\n" % row).encode())
    assert [p["code"] for p in got] == ["P-8"]
    assert len(refused) == 1 and refused[0].startswith(says)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"code,age,name\nP-1,4,Ann\n", "column 'name' is not one the device takes"),
        (b"code,age,birth_date\n", "column 'birth_date' is not one"),
        (b"code,sex\nP-1,F\n", "the header has no 'age' column"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"", "empty"),
    ],
)
def test_a_file_that_is_not_a_patient_list(data, says):
    with pytest.raises(patients.PatientFileError, match=says):
        patients.read_csv(data)


# -- the CLI, as a clinician runs it ---------------------------------------------------------


def cli(*args, stdin=b"", env_extra=None, timeout=60):
    env = dict(os.environ)
    env.update(env_extra or {})
    proc = subprocess.run(
        [sys.executable, "-m", "host_sync", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=env,
    )
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_no_adapter_is_one_line(tmp_path):
    # This machine has no Bluetooth service: bleak's own backend finds no adapter.
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=" + str(tmp_path / "no-bus")}
    code, out, err = cli("scan", "--timeout", "0.5", env_extra=env)
    assert code == EXIT_NO_ADAPTER, err
    assert err.startswith("error: no Bluetooth adapter") and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path):
    (tmp_path / "dir.db").mkdir()
    code, _out, err = cli("pull", "--db", str(tmp_path / "dir.db"))
    assert code == EXIT_DATABASE
    assert err.startswith("error: cannot open the database") and len(err.splitlines()) == 1


def test_a_bad_patient_file_is_refused_before_any_radio(tmp_path):
    path = tmp_path / "patients.csv"
    path.write_text("code,age\nSMITH,40\nP-2,1990-01-01\n")
    code, out, err = cli("patients", "push", str(path), "--db", str(tmp_path / "x.db"))
    assert code == EXIT_USAGE
    assert out.splitlines() == [
        "refused: row 2, column code: 'SMITH' looks like a name: use a pseudonymous code",
        "refused: row 3, column age: '1990-01-01' looks like a date (a birth date?): not sent",
    ]
    assert err == "error: 2 row(s) refused: fix them and push again (nothing was sent)\n"


async def host(spec, keys, *args, passkey_from=None):
    """python -m simulator.ble.host_runner ... -m host_sync ARGS, as its own process; the
    passkey is typed on stdin when the unit shows it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *["-m", "simulator.ble.host_runner", "--hci", spec, "--keys", keys],
        *["-m", "host_sync", *args],
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    if passkey_from is not None:
        passkey = await passkey_from()
        proc.stdin.write(b"%06d\n" % passkey)
        await proc.stdin.drain()
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


def test_the_cli_pairs_pulls_and_sets_up_the_unit(tmp_path):
    db = str(tmp_path / "laptop.db")
    keys = str(tmp_path / "bonds.json")
    csv_path = tmp_path / "patients.csv"
    csv_path.write_text(GOOD_CSV)

    async def main():
        rig = Rig()
        try:
            device = await Device(rig, "cpython", tmp_path).start()
            await device.command("add 12")
            spec = await rig.serve_central()
            quick = ("--timeout", "0.5")  # nothing known yet: a whole scan
            code, out, err = await host(spec, keys, "pull", "--db", db, *quick)
            assert code == EXIT_NOT_PAIRED and "not paired" in err and len(err.splitlines()) == 1
            code, out, err = await host(spec, keys, "pair", "--db", db)
            assert code == EXIT_NOT_PAIRED and "pairing window is closed" in err

            await device.command("pair 60")
            code, out, err = await host(
                spec, keys, "pair", "--db", db, passkey_from=device.shown_passkey
            )
            assert code == 0, out + err
            assert out.splitlines()[-1].endswith(
                "paired with %s (%s)" % (DEVICE_ID, device.address)
            )

            code, out, err = await host(spec, keys, "pull", "--db", db)
            assert code == 0, out + err
            assert out.splitlines() == [
                "%s: 13 records received, 13 new" % DEVICE_ID,
                "the unit may now free records up to 13",
            ]
            code, out, err = await host(spec, keys, "pull", "--db", db)
            assert out.splitlines()[0] == "%s: nothing new" % DEVICE_ID

            code, out, err = await host(spec, keys, "set-time", "--db", db)
            assert code == 0 and out.startswith("clock set to ")
            assert await device.expect("time ")
            code, out, err = await host(spec, keys, "patients", "push", str(csv_path), "--db", db)
            assert code == 0 and out == "the unit has the list: 2 patients\n", out + err
            code, out, err = await host(spec, keys, "status", "--db", db)
            assert code == 0
            lines = dict(line.split(":", 1) for line in out.splitlines())
            assert lines["records"].strip() == "13 stored, 0 not yet synced"
            assert lines["dosage rules"].strip() == dosage.RULESET
            code, out, err = await host(spec, keys, "scan", "--timeout", "0.5")
            assert out.split() == [device.address, "AD-" + DEVICE_ID[-4:]]

            await device.stop()  # out of range
            code, out, err = await host(spec, keys, "pull", "--db", db, "--timeout", "0.5")
            assert code == 4 and err.startswith("error: no AlgoDose unit") and "\n" == err[-1]
        finally:
            await rig.close()

    asyncio.run(main())
    rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM trial_records").fetchone()
    assert rows == (12,)

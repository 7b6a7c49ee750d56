"""python -m host_sync scan | pair | pull | status | set-time | patients push FILE | export |
report | deploy

Every command takes --db PATH-or-URL (default: $ALGODOSE_DB, else algodose.db in the user's
data directory; a postgresql:// URL is a clinic's shared server) and --device
ADDRESS-or-NAME (default: the unit this laptop paired with, or the only one in range).
`pull --serial PORT` pulls over the unit's USB cable instead of Bluetooth. `deploy` is
host_sync.deploy's own command (its options: `deploy --help`). Errors a user can cause print
one line and exit with a code (host_sync.transport): 1 link dropped or refused (what
arrived is kept), 2 bad arguments or input file, 3 no Bluetooth adapter, 4 no device found,
5 not paired or pairing refused, 6 database.
"""

import argparse
import asyncio
import os
import sys
import time

from core import protocol
from host_sync import transport as t
from host_sync.ble import BleTransport, find, scan
from host_sync.db import DatabaseError, default_path, open_database
from host_sync.patients import PatientFileError, read_csv
from host_sync.pull import pull
from host_sync.usb import ANSWER_TIMEOUT_S as USB_ANSWER_TIMEOUT_S
from host_sync.usb import UsbTransport

DB_VARIABLE = "ALGODOSE_DB"  # a clinic's laptops name their shared server once
SCAN_S = 5.0


def _parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="PATH",
        help="the database: a file, or a clinic's postgresql://USER@HOST/DBNAME"
        " (default: $%s, else a file in your data directory)" % DB_VARIABLE,
    )
    common.add_argument(
        "--device", metavar="ADDRESS", help="the unit's address or name (default: the paired one)"
    )
    common.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="how long to scan (default 5 s), or to wait for a unit's answer over USB"
        " (default 10 s)",
    )
    parser = argparse.ArgumentParser(
        prog="python -m host_sync", description="Sync AlgoDose units with this laptop."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("scan", parents=[common], help="list the AlgoDose units in range")
    sub.add_parser("pair", parents=[common], help="pair with a unit (passkey on its screen)")
    pull_parser = sub.add_parser("pull", parents=[common], help="bring the unit's new records in")
    pull_parser.add_argument(
        "--serial",
        metavar="PORT",
        help="over the unit's USB cable, on this serial port (e.g. /dev/ttyACM0, COM3)",
    )
    sub.add_parser("status", parents=[common], help="show the unit's status and versions")
    sub.add_parser("set-time", parents=[common], help="set the unit's clock to this laptop's")
    patients = sub.add_parser("patients", help="the patient list on the unit")
    patients_sub = patients.add_subparsers(dest="action", required=True, metavar="ACTION")
    push = patients_sub.add_parser(
        "push", parents=[common], help="send a CSV of pseudonymous codes and factors"
    )
    push.add_argument("file", metavar="FILE")
    _export_parsers(sub)
    # Listed here for --help; main() hands everything after the word to host_sync.deploy.
    sub.add_parser("deploy", help="put this laptop's firmware on a unit over USB", add_help=False)
    return parser


def _db_target(args):
    """--db, else $ALGODOSE_DB, else the file in the user's data directory."""
    return args.db or os.environ.get(DB_VARIABLE) or default_path()


def _open_db(args):
    return open_database(_db_target(args))


def _say(text):
    print(text, flush=True)


async def _connect(args, db=None):
    """The unit on --serial's USB port; else the unit named by --device, or the one this
    laptop paired with (the database knows its address), or the only one in range."""
    if getattr(args, "serial", None):
        timeout_s = USB_ANSWER_TIMEOUT_S if args.timeout is None else args.timeout
        return await UsbTransport(args.serial, timeout_s).connect()
    if db is None:
        db = _open_db(args)
    known = [d["address"] for d in db.devices()]
    device = await find(args.device, known, _scan_s(args))
    return await BleTransport(device).connect()


def _scan_s(args):
    return SCAN_S if args.timeout is None else args.timeout


async def cmd_scan(args):
    found = await scan(_scan_s(args))
    if not found:
        raise t.NoDevice("no AlgoDose unit in range: is it on and near?")
    for address, name in found:
        _say("%s  %s" % (address, name))
    return t.EXIT_OK


async def cmd_pair(args):
    db = _open_db(args)
    link = await _connect(args, db)
    try:
        info = await link.device_info()
        if await link.is_paired():
            _say("already paired with %s (%s)" % (info["device_id"], link.address))
        else:
            status = await link.status()
            if not status["pairing_open"]:
                raise t.NotPaired(
                    "the unit's pairing window is closed: open it on the unit"
                    " (Settings > Pair laptop), then run pair again"
                )
            _say("Pairing with %s: type the passkey the unit shows." % info["device_id"])
            await link.pair()
            if not await link.is_paired():
                raise t.NotPaired("pairing did not complete: try again")
            _say("paired with %s (%s)" % (info["device_id"], link.address))
        db.device_seen(info, link.address)
    finally:
        await link.close()
    return t.EXIT_OK


async def cmd_pull(args):
    db = _open_db(args)
    link = await _connect(args, db)
    progress = _Progress()
    try:
        result = await pull(link, db, progress.update)
    finally:
        progress.stop()
        await link.close()
    for warning in result.warnings:
        _say("warning: " + warning)
    if not result.received:
        _say("%s: nothing new" % result.device_id)
    else:
        _say(
            "%s: %d records received, %d new%s"
            % (
                result.device_id,
                result.received,
                result.new,
                ", %d kept undecoded" % result.undecodable if result.undecodable else "",
            )
        )
    if result.acked_through:
        _say("the unit may now free records up to %d" % result.acked_through)
    if getattr(link, "app_stopped", False):
        _say("the unit's app was stopped for the transfer: switch the unit off and on again")
    return t.EXIT_OK


async def cmd_status(args):
    db = _open_db(args)
    link = await _connect(args, db)
    try:
        info = await link.device_info()
        status = await link.status()
        db.device_seen(info, link.address)
    finally:
        await link.close()
    free = "unknown" if status["free_kb"] is None else "%d KB" % status["free_kb"]
    battery = "unknown" if status["battery_pct"] is None else "%d%%" % status["battery_pct"]
    lines = [
        ("unit", "%s (%s, %s)" % (info["device_id"], info["model"], info["manufacturer"])),
        ("address", str(link.address)),
        ("firmware", info["firmware"]),
        ("dosage rules", info["ruleset"]),
        ("records", "%d stored, %d not yet synced" % (status["records"], status["unacked"])),
        ("last stored", "%d (synced up to %d)" % (status["stored_seq"], status["acked_seq"])),
        ("free space", free),
        ("battery", battery),
        ("clock", "set" if status["clock_valid"] else "NOT set: run set-time"),
        ("pairing window", "open" if status["pairing_open"] else "closed"),
        ("storage", "FULL: pull now" if status["storage_full"] else "ok"),
        ("visit", "in progress" if status["visit_open"] else "none"),
    ]
    for name, value in lines:
        _say("%-15s %s" % (name + ":", value))
    return t.EXIT_OK


async def cmd_set_time(args):
    link = await _connect(args)
    try:
        now = int(time.time())
        await link.set_time(now)
    finally:
        await link.close()
    _say("clock set to %s UTC" % time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)))
    return t.EXIT_OK


async def cmd_patients_push(args):
    try:
        with open(args.file, "rb") as f:
            data = f.read(2 << 20)
    except OSError as error:
        raise PatientFileError("cannot read %s: %s" % (args.file, error.strerror)) from None
    patients, refusals = read_csv(data)
    for line in refusals:
        _say("refused: " + line)
    if refusals:
        raise PatientFileError(
            "%d row(s) refused: fix them and push again (nothing was sent)" % len(refusals)
        )
    try:
        message = protocol.patient_list(patients, int(time.time()))
    except ValueError as error:
        raise PatientFileError(str(error)) from None
    link = await _connect(args)
    try:
        result, _time, count = await link.push_patients(message)
    finally:
        await link.close()
    if result != protocol.PATIENTS_ACCEPTED:
        raise t.SyncError("the unit refused the patient list: push it again")
    _say("the unit has the list: %d patients" % count)
    return t.EXIT_OK


COMMANDS = {
    "scan": cmd_scan,
    "pair": cmd_pair,
    "pull": cmd_pull,
    "status": cmd_status,
    "set-time": cmd_set_time,
}


# --- export and report (issue 12): the database out, for a spreadsheet, a program, a FHIR
# server or the patient's file. No unit is needed: they read the laptop's database only.


class _ExportUsage(t.SyncError):
    exit_code = t.EXIT_USAGE


def _export_parsers(sub):
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db",
        metavar="PATH",
        help="the database: a file or a postgresql:// URL (default: $%s, else a file in"
        " your data directory)" % DB_VARIABLE,
    )
    export = sub.add_parser(
        "export", parents=[db], help="write the records as CSV, JSON or a FHIR R4 bundle"
    )
    export.add_argument("--format", required=True, choices=("csv", "json", "fhir"))
    export.add_argument(
        "--out", required=True, metavar="PATH", help="csv: a directory; else a file"
    )
    export.add_argument("--patient", metavar="CODE", help="one patient's visits only")
    export.add_argument(
        "--since", metavar="DATE", help="visits from this day on (YYYY-MM-DD, this laptop's time)"
    )
    export.add_argument(
        "--unit", default="kPa", help="csv: pressures also in this unit (kgf/cm2, N, lbf)"
    )
    export.add_argument("--fhir-base", metavar="URL", help="fhir: the base of the code systems")
    report = sub.add_parser(
        "report", parents=[db], help="charts and an HTML page of one patient's visits"
    )
    report.add_argument("--patient", required=True, metavar="CODE")
    report.add_argument("--out", required=True, metavar="DIR")


def _patient_code(text):
    from core import record

    if text is None:
        return None
    code = text.strip().upper()
    try:
        return record.check_code(code)
    except record.RecordError:
        raise _ExportUsage(
            "--patient: a patient code (A-Z, 0-9 and -, with a digit), got %r" % text
        ) from None


def _since_s(text):
    import datetime

    if text is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise _ExportUsage("--since: a date as YYYY-MM-DD, got %r" % text) from None
    return int(moment.astimezone().timestamp())  # a naive date is this laptop's time


def _existing_db(args):
    path = _db_target(args)
    if "://" not in path and not os.path.exists(path):
        raise _ExportUsage("no database at %s: pull from a unit first, or give --db" % path)
    return _open_db(args)


def _load(args, patient, since_s):
    from host_sync import visits

    data = visits.load(_existing_db(args), patient, since_s)
    if patient is not None and not data["visits"]:
        raise _ExportUsage("no visits of patient %s in the database" % patient)
    return data


def _say_times(data):
    from host_sync import visits

    counts = visits.time_counts(data)
    _say(
        "times: %d from the unit's clock, %d repaired (clock set later in the same boot),"
        " %d unknown (clock never set in that boot)"
        % (counts[visits.TIME_DEVICE], counts[visits.TIME_REPAIRED], counts[visits.TIME_UNKNOWN])
    )
    if data["undecodable"]:
        _say(
            "warning: %d record(s) could not be decoded; they are kept raw in the database"
            " and in a JSON export" % len(data["undecodable"])
        )


async def cmd_export(args):
    from host_sync import export, fhir

    patient = _patient_code(args.patient)
    since_s = _since_s(args.since)
    try:
        export.check_unit(args.unit)
        data = _load(args, patient, since_s)
        if args.format == "csv":
            counts = export.write_csv(data, args.out, args.unit)
            _say("wrote %s: %s" % (args.out, ", ".join("%s %d rows" % c for c in counts.items())))
        elif args.format == "json":
            document = export.write_json(data, args.out, patient, since_s)
            _say("wrote %s: %d visits, %d records" % (args.out, len(document["visits"]),
                                                        len(document["records"])))  # fmt: skip
        else:
            document, skipped = fhir.bundle(data, args.fhir_base or fhir.DEFAULT_SYSTEM_BASE)
            export.write_document(document, args.out)
            _say("wrote %s: a FHIR R4 transaction bundle of %d resources"
                 % (args.out, len(document["entry"])))  # fmt: skip
            if skipped:
                _say("warning: %d visit(s) without their session start were left out" % skipped)
    except export.ExportError as error:
        raise _ExportUsage(str(error)) from None
    _say_times(data)
    return t.EXIT_OK


async def cmd_report(args):
    from host_sync import report

    patient = _patient_code(args.patient)
    data = _load(args, patient, None)
    try:
        paths = report.build(data, patient, args.out)
    except report.ReportError as error:
        raise _ExportUsage(str(error)) from None
    _say("wrote %d files to %s; open %s" % (len(paths), args.out, paths[-1]))
    return t.EXIT_OK


COMMANDS["export"] = cmd_export
COMMANDS["report"] = cmd_report


class _Progress:
    """A rich progress bar on a terminal; nothing when the output is not one."""

    def __init__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        console = Console(stderr=True)
        self._bar = Progress(
            TextColumn("records"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=not console.is_terminal,
            transient=True,
        )
        self._task = None

    def update(self, done, total):
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task("pull", total=total)
        self._bar.update(self._task, completed=done, total=max(total, done))

    def stop(self):
        if self._task is not None:
            self._bar.stop()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["deploy"]:
        from host_sync import deploy

        return deploy.main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "patients":
        command = cmd_patients_push
    else:
        command = COMMANDS[args.command]
    try:
        return asyncio.run(command(args))
    except t.SyncError as error:
        print("error: %s" % error, file=sys.stderr)
        return error.exit_code
    except DatabaseError as error:
        print("error: %s" % error, file=sys.stderr)
        return t.EXIT_DATABASE
    except PatientFileError as error:
        print("error: %s" % error, file=sys.stderr)
        return t.EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: what was committed is kept", file=sys.stderr)
        return 130

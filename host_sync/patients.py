"""The clinic's patient list for the device: a CSV of pseudonymous codes and dosage factors.

Columns (a header row; only `code` and `age` are required; lists are `;`-separated names):

    code,age,sex,conditions,flags,contraindications,sessions,
    last_gauge_mm,last_needles,last_depth,last_manipulation,last_adjuncts

Nothing that identifies a person may leave the laptop: a column the device does not take is
refused (a `name` or `birth_date` column among them), and so is every row with a value that
looks like a name or a date, or a code the device's record rules refuse (core.record:
A-Z, 0-9 and `-`, at least one digit). The checks are conservative by design: a code such as
`SMITH1` (a run of four letters) or `PT-1984` (a year) is refused, say which row and which
column, and the clinic chooses another code. One line per refused row.
"""

import csv
import io
import re

from core import protocol, record, vocab

# The patient list's own fields (core.protocol), the last dose as four readable columns.
_DOSE_COLUMNS = ("last_gauge_mm", "last_needles", "last_depth", "last_manipulation")
COLUMNS = tuple(f for f in protocol.PATIENT_FIELDS if f != "last_dose") + _DOSE_COLUMNS
_LIST_COLUMNS = {
    "conditions": vocab.CONDITIONS,
    "flags": vocab.FLAGS,
    "contraindications": vocab.CONTRAINDICATIONS,
    "last_adjuncts": vocab.ADJUNCTS,
}
_DATE = re.compile(
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}"
    r"|(?<!\d)(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)"
    r"|(?<!\d)(0[1-9]|[12]\d|3[01])(0[1-9]|1[0-2])(19|20)\d{2}(?!\d)"
)
_YEAR = re.compile(r"(?<!\d)(19|20)\d{2}(?!\d)")
_WORD = re.compile(r"[A-Za-z]{4,}")
MAX_BYTES = 1 << 20


class PatientFileError(Exception):
    """The file as a whole cannot be read: one line."""


def read_csv(data):
    """(patients, refusals) from the bytes of a CSV file. refusals: one line per refused row
    ("row 3, column code: ..."). Raises PatientFileError for a file that is not a CSV of
    patients at all."""
    if len(data) > MAX_BYTES:
        raise PatientFileError("the patient file is over 1 MB: that is not a patient list")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PatientFileError(
            "the patient file is not UTF-8 text (byte %d): save it as CSV UTF-8" % error.start
        ) from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise PatientFileError("the patient file is not a CSV file: %s" % error) from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise PatientFileError("the patient file is empty: it needs a header row and patients")
    header = [cell.strip().lower() for cell in rows[0]]
    for name in header:
        if name not in COLUMNS:
            raise PatientFileError(
                "column %r is not one the device takes (%s): remove it; names and birth"
                " dates never leave this laptop" % (name, ", ".join(COLUMNS))
            )
    if len(set(header)) != len(header):
        raise PatientFileError("a column appears twice in the header")
    for required in ("code", "age"):
        if required not in header:
            raise PatientFileError("the header has no %r column" % required)
    patients, refusals, seen = [], [], set()
    for number, row in enumerate(rows[1:], start=2):
        if len(row) > len(header):
            refusals.append(
                "row %d: %d cells, the header has %d" % (number, len(row), len(header))
            )
            continue
        row = row + [""] * (len(header) - len(row))  # a spreadsheet drops trailing empties
        cells = dict(zip(header, (c.strip() for c in row), strict=True))
        try:
            patient = _patient(cells)
        except _Refused as refused:
            refusals.append("row %d, column %s: %s" % (number, refused.column, refused))
            continue
        if patient["code"] in seen:
            refusals.append("row %d, column code: %s appears twice" % (number, patient["code"]))
            continue
        seen.add(patient["code"])
        patients.append(patient)
    return patients, refusals


class _Refused(ValueError):
    def __init__(self, column, message):
        super().__init__(message)
        self.column = column


def _patient(cells):
    for column, value in cells.items():
        if _DATE.search(value):
            raise _Refused(column, "%r looks like a date (a birth date?): not sent" % value)
    code = cells["code"].upper()
    if _WORD.search(code):
        raise _Refused("code", "%r looks like a name: use a pseudonymous code" % cells["code"])
    if _YEAR.search(code):
        raise _Refused("code", "%r holds what looks like a year of birth" % cells["code"])
    try:
        record.check_code(code)
    except record.RecordError:
        raise _Refused(
            "code", "%r is not a patient code (A-Z, 0-9, -, with a digit)" % cells["code"]
        ) from None
    patient = {"code": code, "age": _int(cells, "age", 0, 120, required=True)}
    sex = cells.get("sex", "").upper() or "U"
    if sex not in vocab.SEXES:
        raise _Refused("sex", "%r: one of %s" % (cells["sex"], ", ".join(vocab.SEXES)))
    patient["sex"] = sex
    for column, names in _LIST_COLUMNS.items():
        patient[column] = _names(cells, column, names)
    patient["sessions"] = _int(cells, "sessions", 0, 1000) or 0
    patient["last_dose"] = _dose(cells)
    try:
        protocol.patient_list([patient])  # the device's own rules for an entry
    except ValueError as error:
        raise _Refused("code", str(error)) from None
    return patient


def _int(cells, column, low, high, required=False):
    text = cells.get(column, "")
    if not text:
        if required:
            raise _Refused(column, "missing")
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        raise _Refused(column, "%r: a whole number from %d to %d" % (text, low, high))
    return int(text)


def _names(cells, column, names):
    text = cells.get(column, "")
    out = []
    for part in text.replace(",", ";").split(";"):
        name = part.strip().lower().replace(" ", "_")
        if not name:
            continue
        if name not in names:
            raise _Refused(column, "%r: one of %s" % (part.strip(), ", ".join(names)))
        out.append(name)
    return tuple(out)


def _dose(cells):
    given = [cells.get(c, "") for c in _DOSE_COLUMNS]
    if not any(given):
        return None
    if not all(given):
        raise _Refused(
            "last_gauge_mm", "the last dose needs all four: gauge, needles, depth, manipulation"
        )
    gauge, needles, depth, manipulation = given
    try:
        gauge_x100 = round(float(gauge) * 100)
    except ValueError:
        gauge_x100 = -1
    if gauge_x100 not in vocab.GAUGES_MM_X100:
        mm = ", ".join("%.2f" % (g / 100) for g in vocab.GAUGES_MM_X100)
        raise _Refused("last_gauge_mm", "%r: one of %s" % (gauge, mm))
    count = _int(cells, "last_needles", vocab.NEEDLES_MIN, vocab.NEEDLES_MAX)
    if depth.lower() not in vocab.DEPTHS:
        raise _Refused("last_depth", "%r: one of %s" % (depth, ", ".join(vocab.DEPTHS)))
    if manipulation.lower() not in vocab.MANIPULATIONS:
        raise _Refused(
            "last_manipulation",
            "%r: one of %s" % (manipulation, ", ".join(vocab.MANIPULATIONS)),
        )
    return (
        vocab.GAUGES_MM_X100.index(gauge_x100),
        count,
        vocab.DEPTHS.index(depth.lower()),
        vocab.MANIPULATIONS.index(manipulation.lower()),
    )

# QST z-scores for pressure pain thresholds (DESIGN 3), DFNS style: thresholds are compared in
# log10 units and the sign is flipped, so a POSITIVE z means a LOWER threshold than the
# reference: gain of function, a sensitised patient. The reference table is data (a JSON file
# the device loads; the laptop can replace it): one row per site and sex, each citing its
# source and saying whether it was published in log units or converted here from an
# arithmetic mean and SD. No row fits: no z-score (never an invented norm); the patient's own
# side-to-side and local-to-remote ratios still stand.
# A site whose threshold is only known as a lower bound (trials censored at the safety
# ceiling) gets a z bound instead: z <= z_max, "at least this robust".
# A row may give the typical age of its reference group (age_typical) when it has no age band:
# the result then notes a patient far from it; no age correction is ever invented.
# Floats only here (log10); results are rounded to 0.01 (z_x100) so single-precision boards
# print what the unix port prints. `fround` is applied after every float step: identity on
# the device, float32 emulation in the tests.
import json
import math

from micropython import const

from core.scale import format_x100
from core.vocab import AGE_MAX_YEARS, QST_HIGH_Z_X100, QST_LOW_Z_X100, QST_Z_LIMIT, qst_category

_ABNORMAL_Z_X100 = const(196)  # |z| > 1.96: outside the DFNS 95 % range
_SIDE_DIFF_PCT_X10 = const(350)  # side-to-side difference over 35 % (Pfau et al. 2014)
_AGE_FAR_YEARS = const(20)  # a patient over 20 years from a row's typical age gets a note
_BASES = ("log", "converted")
_UNITS = ("kPa", "kgf/cm2")
_ROW_SEXES = ("F", "M", "any")
_KPA_PER_UNIT = (1.0, 98.0665)
_LN10 = 2.302585092994046


class QstError(ValueError):
    pass


def _keep(x):
    return x


def lognormal_log10(mean, sd, fround=_keep):
    """Log10 mean and SD of a lognormal with arithmetic mean `mean` and SD `sd` (same unit):
    s2 = ln(1 + sd^2 / mean^2), mu = ln(mean) - s2 / 2, both then divided by ln 10."""
    ratio = fround(sd / mean)
    var_ln = fround(math.log(fround(1.0 + fround(ratio * ratio))))
    mu_ln = fround(fround(math.log(mean)) - fround(var_ln / 2))
    return fround(mu_ln / _LN10), fround(fround(math.sqrt(var_ln)) / _LN10)


def _number(where, value, positive=True):
    kind = type(value)
    if kind is not int and kind is not float:
        raise QstError("%s: a number (got %s)" % (where, type(value).__name__))
    if positive and not value > 0:
        raise QstError("%s: above 0 (got %s)" % (where, value))
    return float(value)


def _text(where, value):
    if type(value) is not str or not value:
        raise QstError(where + ": text")
    return value


def _age(where, value):
    if value is not None and (type(value) is not int or not 0 <= value <= AGE_MAX_YEARS):
        raise QstError(where + ": null or whole years 0-%d" % AGE_MAX_YEARS)
    return value


def parse_reference(data, fround=_keep):
    """Validates a reference table (already decoded JSON); converted rows get their log10
    mean and SD computed here. Returns {"version": str, "rows": [row, ...]}."""
    if type(data) is not dict or type(data.get("rows")) is not list:
        raise QstError('reference: an object with "version" and a "rows" list')
    version = _text("reference.version", data.get("version"))
    rows = []
    ids = []
    for index, raw in enumerate(data["rows"]):
        where = "reference.rows[%d]" % index
        if type(raw) is not dict:
            raise QstError(where + ": an object")
        row = {
            "id": _text(where + ".id", raw.get("id")),
            "site": _text(where + ".site", raw.get("site")),
            "sex": raw.get("sex"),
            "age_min": _age(where + ".age_min", raw.get("age_min")),
            "age_max": _age(where + ".age_max", raw.get("age_max")),
            "age_typical": _age(where + ".age_typical", raw.get("age_typical")),
            "basis": raw.get("basis"),
            "source": _text(where + ".source", raw.get("source")),
        }
        if row["id"] in ids:
            raise QstError(where + ".id: %s appears twice" % row["id"])
        ids.append(row["id"])
        if row["sex"] not in _ROW_SEXES:
            raise QstError(where + ".sex: one of " + ", ".join(_ROW_SEXES))
        if row["basis"] == "log":
            row["mean_log10"] = _number(where + ".mean_log10", raw.get("mean_log10"), False)
            row["sd_log10"] = _number(where + ".sd_log10", raw.get("sd_log10"))
        elif row["basis"] == "converted":
            unit = raw.get("unit")
            if unit not in _UNITS:
                raise QstError(where + ".unit: one of " + ", ".join(_UNITS))
            scale = _KPA_PER_UNIT[_UNITS.index(unit)]
            mean = fround(_number(where + ".mean", raw.get("mean")) * scale)
            sd = fround(_number(where + ".sd", raw.get("sd")) * scale)
            row["mean_log10"], row["sd_log10"] = lognormal_log10(mean, sd, fround)
        else:
            raise QstError(where + ".basis: one of " + ", ".join(_BASES))
        rows.append(row)
    return {"version": version, "rows": rows}


def find_reference():
    """The path of the table the firmware ships (data/qst_reference.json), wherever the
    firmware is on the module path: a ROMFS image, mip's /lib, the filesystem's root, or a
    source tree. OSError if it is nowhere."""
    import os
    import sys

    for root in sys.path:
        path = (root + "/" if root else "") + "data/qst_reference.json"
        try:
            os.stat(path)
            return path
        except OSError:
            pass
    raise OSError("data/qst_reference.json is not on the module path")


def load_reference(source, fround=_keep):
    """The table from a JSON file: a path, or an open file (anything with read())."""
    if type(source) is str:
        with open(source) as handle:
            data = json.load(handle)
    else:
        data = json.load(source)
    return parse_reference(data, fround)


def find_row(table, site, sex, age):
    """The row for this site, sex (F / M / U) and age: a row of the patient's own sex first,
    then a sexes-pooled one. An age band applies only to a known age inside it."""
    best = None
    for row in table["rows"]:
        if row["site"] != site:
            continue
        if row["age_min"] is not None and (age is None or age < row["age_min"]):
            continue
        if row["age_max"] is not None and (age is None or age > row["age_max"]):
            continue
        if row["sex"] == sex:
            return row
        if row["sex"] == "any" and best is None:
            best = row
    return best


def z_x100(ppt_kpa_x10, row, fround=_keep):
    """z x 100, rounded half away from zero; positive = lower threshold than the reference."""
    log_kpa = fround(fround(math.log10(ppt_kpa_x10)) - 1.0)
    z = fround(fround(row["mean_log10"] - log_kpa) / row["sd_log10"])
    scaled = fround(z * 100)
    return int(scaled + 0.5) if scaled >= 0 else -int(0.5 - scaled)


def age_note(row, age):
    """A note when the patient is far from the typical age of a row's reference group (or
    the age is unknown), e.g. "reference age about 30; patient 70"; None otherwise."""
    typical = row["age_typical"]
    if typical is None:
        return None
    if age is None:
        return "reference age about %d; patient age not recorded" % typical
    if abs(age - typical) > _AGE_FAR_YEARS:
        return "reference age about %d; patient %d" % (typical, age)
    return None


def score(
    table,
    site,
    sex,
    age,
    ppt_kpa_x10,
    high_x100=QST_HIGH_Z_X100,
    low_x100=QST_LOW_Z_X100,
    ppt_min_kpa_x10=None,
):
    """The QST result of one site value (None: the site had no value). ppt_min_kpa_x10: the
    site's lower bound when trials were censored at the ceiling (and ppt_kpa_x10 is None):
    the result then gives z_max, the z at that bound, since the true z is at most that; the
    category and abnormal are given only where the bound settles them."""
    bounded = ppt_kpa_x10 is None and ppt_min_kpa_x10 is not None and ppt_min_kpa_x10 > 0
    if not bounded and (ppt_kpa_x10 is None or ppt_kpa_x10 <= 0):
        return _no_score("no site value")
    row = find_row(table, site, sex, age)
    if row is None:
        return _no_score("no reference row for %s, sex %s, age %s" % (site, sex, age))
    note = age_note(row, age)
    if bounded:
        zmax = z_x100(ppt_min_kpa_x10, row)
        return _result(
            None,
            zmax,
            "low" if zmax <= low_x100 else None,  # z <= zmax: robust for certain
            True if zmax < -_ABNORMAL_Z_X100 else None,
            row,
            note,
            "censored at the ceiling: z is at most " + format_x100(zmax),
        )
    zx100 = z_x100(ppt_kpa_x10, row)
    return _result(
        zx100,
        None,
        qst_category(zx100, high_x100, low_x100),
        abs(zx100) > _ABNORMAL_Z_X100,
        row,
        note,
        None,
    )


def _result(zx100, zmax_x100, category_, abnormal, row, note, reason):
    return {
        "z": None if zx100 is None else zx100 / 100,
        "z_x100": zx100,
        "z_max": None if zmax_x100 is None else zmax_x100 / 100,
        "z_max_x100": zmax_x100,
        "category": category_,
        "abnormal": abnormal,
        "ref": None if row is None else row["id"],
        "basis": None if row is None else row["basis"],
        "age_note": note,
        "reason": reason,
    }


def _no_score(reason):
    return _result(None, None, None, None, None, None, reason)


def side_to_side(ppt_a_kpa_x10, ppt_b_kpa_x10, limit_pct_x10=_SIDE_DIFF_PCT_X10):
    """Difference of two sides as a percentage of the lower one (x 10), flagged over limit."""
    if not ppt_a_kpa_x10 or not ppt_b_kpa_x10:
        return None
    low = min(ppt_a_kpa_x10, ppt_b_kpa_x10)
    diff = (abs(ppt_a_kpa_x10 - ppt_b_kpa_x10) * 1000 + low // 2) // low
    return {"diff_pct_x10": diff, "flag": diff > limit_pct_x10}


def local_to_remote(
    local_kpa_x10, remote_kpa_x10, local_z_x100, remote_z_x100, high_x100=QST_HIGH_Z_X100
):
    """Local PPT as a percentage of the remote reference site's (x 10; None without both
    values), and widespread sensitisation: the local site is sensitised and the remote site
    is too (None: unknown). The z's may be upper bounds (decisive_z)."""
    ratio = None
    if local_kpa_x10 and remote_kpa_x10:
        ratio = (local_kpa_x10 * 1000 + remote_kpa_x10 // 2) // remote_kpa_x10
    widespread = None
    if local_z_x100 is not None and local_z_x100 < high_x100:
        widespread = False  # nothing local to spread
    elif local_z_x100 is not None and remote_z_x100 is not None:
        widespread = remote_z_x100 >= high_x100
    if ratio is None and widespread is None:
        return None
    return {"ratio_pct_x10": ratio, "widespread": widespread}


def decisive_z(result, high_x100=QST_HIGH_Z_X100):
    """The z (x 100) that can decide "sensitised or not": the z itself, or for a censored
    site its bound z_max when that is below the cut-off (the true z is lower still); None
    when unknown."""
    if result["z_x100"] is not None:
        return result["z_x100"]
    zmax = result.get("z_max_x100")
    if zmax is not None and zmax < high_x100:
        return zmax
    return None


def case_qst(zx100, censored=False):
    """The `qst` field of a dosage case (core.case), or None when there is no z. censored:
    the z is a censored site's bound, which the dosage rules never count as "low"."""
    if zx100 is None:
        return None
    zx100 = max(-QST_Z_LIMIT * 100, min(QST_Z_LIMIT * 100, zx100))
    if censored:
        return {"z": zx100 / 100, "censored": True}
    return {"z": zx100 / 100}


def compare(sites):
    """The patient's own comparisons, with or without z-scores. sites: (name, side, role,
    PPT kPa x 10 or None, score()) per site; role "local" (to be needled) or "remote" (the
    reference site). Left/right pairs of a site give side_to_side; local vs remote gives
    local_to_remote with widespread sensitisation; dosage_qst is the local z for core.case.
    A censored local site passes its bound z_max to the dosage rules, marked censored: the
    rules never treat it as "low" (not pressing stop is no proof of robustness)."""
    pairs = []
    roles = {}
    for name, side, role, value, result in sites:
        if role is not None:
            label = name if side is None else name + " " + side
            roles[role] = (label, value, decisive_z(result), result)
        for other, other_side, _role, other_value, _result in sites:
            if side == "L" and other_side == "R" and other == name:
                pair = {"site": name, "diff_pct_x10": None, "flag": None}
                pair.update(side_to_side(value, other_value) or {})
                pairs.append(pair)
    out = {"side_to_side": pairs, "local_to_remote": None, "dosage_qst": None}
    local = roles.get("local")
    remote = roles.get("remote")
    if local is not None:
        result = local[3]
        zx100 = result["z_x100"]
        if zx100 is not None:
            out["dosage_qst"] = case_qst(zx100)
        else:
            out["dosage_qst"] = case_qst(result.get("z_max_x100"), censored=True)
    if local is not None and remote is not None:
        found = {"local": local[0], "remote": remote[0], "ratio_pct_x10": None, "widespread": None}
        found.update(local_to_remote(local[1], remote[1], local[2], remote[2]) or {})
        out["local_to_remote"] = found
    return out

# QST z-scores for pressure pain thresholds (DESIGN 3), DFNS style: thresholds are compared in
# log10 units and the sign is flipped, so a POSITIVE z means a LOWER threshold than the
# reference: gain of function, a sensitised patient. The reference table is data (a JSON file
# the device loads; the laptop can replace it): one row per site and sex, each citing its
# source and saying whether it was published in log units or converted here from an
# arithmetic mean and SD. No row fits: no z-score (never an invented norm); the patient's own
# side-to-side and local-to-remote ratios still stand.
# Floats only here (log10); results are rounded to 0.01 (z_x100) so single-precision boards
# print what the unix port prints. `fround` is applied after every float step: identity on
# the device, float32 emulation in the tests.
import json
import math

from micropython import const

HIGH_Z_X100 = const(100)  # z >= 1.0: sensitised ("high"), as the dosage rules use it
LOW_Z_X100 = const(-100)  # z <= -1.0: robust ("low")
_ABNORMAL_Z_X100 = const(196)  # |z| > 1.96: outside the DFNS 95 % range
_SIDE_DIFF_PCT_X10 = const(350)  # side-to-side difference over 35 % (Pfau et al. 2014)
_CASE_Z_LIMIT_X100 = const(1000)  # core.case takes |z| <= 10
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
    if value is not None and (type(value) is not int or not 0 <= value <= 120):
        raise QstError(where + ": null or whole years 0-120")
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


def category(zx100, high_x100=HIGH_Z_X100, low_x100=LOW_Z_X100):
    if zx100 >= high_x100:
        return "high"
    if zx100 <= low_x100:
        return "low"
    return "normal"


def score(table, site, sex, age, ppt_kpa_x10, high_x100=HIGH_Z_X100, low_x100=LOW_Z_X100):
    """The QST result of one site value (None: the site had no value)."""
    if ppt_kpa_x10 is None or ppt_kpa_x10 <= 0:
        return _no_score("no site value")
    row = find_row(table, site, sex, age)
    if row is None:
        return _no_score("no reference row for %s, sex %s, age %s" % (site, sex, age))
    zx100 = z_x100(ppt_kpa_x10, row)
    return {
        "z": zx100 / 100,
        "z_x100": zx100,
        "category": category(zx100, high_x100, low_x100),
        "abnormal": abs(zx100) > _ABNORMAL_Z_X100,
        "ref": row["id"],
        "basis": row["basis"],
        "reason": None,
    }


def _no_score(reason):
    return {
        "z": None,
        "z_x100": None,
        "category": None,
        "abnormal": None,
        "ref": None,
        "basis": None,
        "reason": reason,
    }


def side_to_side(ppt_a_kpa_x10, ppt_b_kpa_x10, limit_pct_x10=_SIDE_DIFF_PCT_X10):
    """Difference of two sides as a percentage of the lower one (x 10), flagged over limit."""
    if not ppt_a_kpa_x10 or not ppt_b_kpa_x10:
        return None
    low = min(ppt_a_kpa_x10, ppt_b_kpa_x10)
    diff = (abs(ppt_a_kpa_x10 - ppt_b_kpa_x10) * 1000 + low // 2) // low
    return {"diff_pct_x10": diff, "flag": diff > limit_pct_x10}


def local_to_remote(
    local_kpa_x10, remote_kpa_x10, local_z_x100, remote_z_x100, high_x100=HIGH_Z_X100
):
    """Local PPT as a percentage of the remote reference site's (x 10), and widespread
    sensitisation: the local site is sensitised and the remote site is too (None: unknown)."""
    if not local_kpa_x10 or not remote_kpa_x10:
        return None
    ratio = (local_kpa_x10 * 1000 + remote_kpa_x10 // 2) // remote_kpa_x10
    widespread = None
    if local_z_x100 is not None and local_z_x100 < high_x100:
        widespread = False  # nothing local to spread
    elif local_z_x100 is not None and remote_z_x100 is not None:
        widespread = remote_z_x100 >= high_x100
    return {"ratio_pct_x10": ratio, "widespread": widespread}


def case_qst(zx100):
    """The `qst` field of a dosage case (core.case), or None when there is no z."""
    if zx100 is None:
        return None
    zx100 = max(-_CASE_Z_LIMIT_X100, min(_CASE_Z_LIMIT_X100, zx100))
    return {"z": zx100 / 100}


def compare(sites):
    """The patient's own comparisons, with or without z-scores. sites: (name, side, role,
    PPT kPa x 10 or None, score()) per site; role "local" (to be needled) or "remote" (the
    reference site). Left/right pairs of a site give side_to_side; local vs remote gives
    local_to_remote with widespread sensitisation; dosage_qst is the local z for core.case."""
    pairs = []
    roles = {}
    for name, side, role, value, result in sites:
        if role is not None:
            roles[role] = (name if side is None else name + " " + side, value, result["z_x100"])
        for other, other_side, _role, other_value, _result in sites:
            if side == "L" and other_side == "R" and other == name:
                pair = {"site": name, "diff_pct_x10": None, "flag": None}
                pair.update(side_to_side(value, other_value) or {})
                pairs.append(pair)
    out = {"side_to_side": pairs, "local_to_remote": None, "dosage_qst": None}
    local = roles.get("local")
    remote = roles.get("remote")
    if local is not None:
        out["dosage_qst"] = case_qst(local[2])
    if local is not None and remote is not None:
        found = {"local": local[0], "remote": remote[0], "ratio_pct_x10": None, "widespread": None}
        found.update(local_to_remote(local[1], remote[1], local[2], remote[2]) or {})
        out["local_to_remote"] = found
    return out

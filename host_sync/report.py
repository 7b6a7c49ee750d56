"""One patient's report: a PNG per chart and one self-contained HTML page (docs/export.md,
"Report"; how to read it: docs/clinician-guide.md).

Charts (matplotlib, Agg: files only, no window):

- ppt_by_site.png: the PPT per site over the visits, with the reference group's 95 % band
  (mean +- 1.96 SD in log space, as kPa) where the reference table has a row for the site
  and the patient's sex and age;
- z_scores.png: the z-scores over the visits with the +-1.96 band and the category cut-offs;
- side_to_side.png: left and right of each site measured on both sides, per visit, with the
  difference and the 35 % flag;
- traces_last_visit.png: the pressure curves of the last visit's trials against the 50 kPa/s
  target line;
- dose_history.png: the dose recommended and the dose given at each visit, and the response
  the patient reported at the visit after.

The HTML page embeds the PNGs as data: URIs; it has no script and no link out, so it opens
the same on a laptop without a network and can be attached to a record.
"""

import base64
import datetime
import html
import io
import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import core
from core import qst
from core.vocab import (
    DEPTHS,
    GAUGES_MM_X100,
    MANIPULATIONS,
    QST_HIGH_Z_X100,
    QST_LOW_Z_X100,
)
from host_sync import export as export_mod

TARGET_KPA_S = 50  # DFNS ramp rate (core.ppt's default target)
Z_BAND = 1.96
_DPI = 100
_SIDE_LIMIT_PCT = 35
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
REFERENCE_PATH = Path(core.__file__).resolve().parent.parent / "data" / "qst_reference.json"


class ReportError(Exception):
    """A user's mistake (no such patient, a directory that cannot be written): one line."""


def reference_table(path=REFERENCE_PATH):
    """The QST reference table the firmware ships, or None where it is not installed."""
    try:
        return qst.load_reference(str(path))
    except (OSError, ValueError):
        return None


def band_kpa(table, site, sex, age):
    """(low, high) kPa of the reference group's 95 % for a site, or None without a row."""
    if table is None:
        return None
    row = qst.find_row(table, site, sex, age)
    if row is None:
        return None
    # mean_log10 is log10 of kPa (core.qst.z_x100 compares log10(kPa x 10) - 1 with it).
    low = 10 ** (row["mean_log10"] - Z_BAND * row["sd_log10"])
    high = 10 ** (row["mean_log10"] + Z_BAND * row["sd_log10"])
    return low, high, row["id"]


# --- the charts ------------------------------------------------------------------------------


def _figure(width, height):
    figure = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(figure)
    return figure


def _labels(history, tz):
    out = []
    for number, visit in enumerate(history, 1):
        if visit["time_s"] is None:
            out.append("%d\ntime unknown" % number)
        else:
            moment = datetime.datetime.fromtimestamp(visit["time_s"], datetime.UTC)
            day = moment.astimezone(tz).strftime("%Y-%m-%d")
            out.append(
                "%d\n%s%s" % (number, day, "*" if visit["time_source"] == "repaired" else "")
            )
    return out


def _site_keys(history):
    keys = []
    for visit in history:
        for site in visit["sites"]:
            key = (site["site"], site["side"])
            if key not in keys:
                keys.append(key)
    return keys


def _label(key):
    site, side = key
    return site.replace("_", " ") + ("" if side is None else " " + side)


def _site_of(visit, key):
    for site in visit["sites"]:
        if (site["site"], site["side"]) == key:
            return site
    return None


def _series(history, key, value, bound, scale):
    """A site's values over the visits, and its censored bounds apart: (xs, ys, bound xs,
    bound ys); scale: 10 for x10 fields, 100 for x100."""
    xs, ys, bound_xs, bound_ys = [], [], [], []
    for x, visit in enumerate(history):
        site = _site_of(visit, key)
        if site is None:
            continue
        if site[value] is not None:
            xs.append(x)
            ys.append(site[value] / scale)
        elif site[bound] is not None:
            bound_xs.append(x)
            bound_ys.append(site[bound] / scale)
    return xs, ys, bound_xs, bound_ys


def _visit_axis(axes, labels):
    axes.set_xticks(range(len(labels)))
    axes.set_xticklabels(labels, fontsize=8)
    axes.set_xlim(-0.5, len(labels) - 0.5)
    axes.grid(axis="y", alpha=0.3)


def chart_ppt(history, labels, table, sex, age):
    keys = _site_keys(history)
    columns = min(3, max(1, len(keys)))
    rows = (len(keys) + columns - 1) // columns
    figure = _figure(4.2 * columns, 3.2 * rows + 0.4)
    figure.suptitle("Pressure pain threshold per site (kPa)", fontsize=11)
    for index, key in enumerate(keys):
        axes = figure.add_subplot(rows, columns, index + 1)
        band = band_kpa(table, key[0], sex, age)
        if band is not None:
            axes.axhspan(
                band[0],
                band[1],
                color="#9ecae1",
                alpha=0.35,
                label="reference 95 %% (%s)" % band[2],
            )
        xs, ys, bound_xs, bound_ys = _series(history, key, "ppt_kpa_x10", "ppt_min_kpa_x10", 10)
        axes.plot(xs, ys, "o-", color=_COLOURS[0], label="PPT")
        if bound_xs:
            axes.plot(
                bound_xs,
                bound_ys,
                "^",
                color=_COLOURS[1],
                markersize=9,
                label="at least (ceiling reached)",
            )
        axes.set_title(
            _label(key) + ("" if band is not None else " (no reference row)"), fontsize=9
        )
        axes.set_ylabel("kPa", fontsize=8)
        axes.set_ylim(bottom=0)
        _visit_axis(axes, labels)
        axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure


def chart_z(history, labels):
    keys = [k for k in _site_keys(history) if any(_has_z(_site_of(v, k)) for v in history)]
    if not keys:
        return None
    figure = _figure(7.5, 4.2)
    axes = figure.add_subplot(1, 1, 1)
    axes.axhspan(-Z_BAND, Z_BAND, color="#d9d9d9", alpha=0.5, label="reference 95 % (+-1.96)")
    for z_x100, colour, words in (
        (QST_HIGH_Z_X100, "#d62728", "sensitised at or above"),
        (QST_LOW_Z_X100, "#2ca02c", "robust at or below"),
    ):
        z = z_x100 / 100
        axes.axhline(z, color=colour, linestyle="--", linewidth=1, label="%s %.2f" % (words, z))
    for index, key in enumerate(keys):
        colour = _COLOURS[index % len(_COLOURS)]
        xs, ys, bound_xs, bound_ys = _series(history, key, "z_x100", "z_max_x100", 100)
        axes.plot(xs, ys, "o-", color=colour, label=_label(key))
        if bound_xs:
            axes.plot(
                bound_xs,
                bound_ys,
                "v",
                color=colour,
                markersize=9,
                label=_label(key) + ": at most (ceiling)",
            )
    axes.set_title(
        "QST z-scores (positive: lower threshold than the reference, sensitised)", fontsize=10
    )
    axes.set_ylabel("z")
    _visit_axis(axes, labels)
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.tight_layout()
    return figure


def _has_z(site):
    return site is not None and (site["z_x100"] is not None or site["z_max_x100"] is not None)


def chart_side_to_side(history, labels):
    sites = []
    for visit in history:
        for pair in (visit["comparison"] or {}).get("side_to_side", ()):
            if pair["site"] not in sites:
                sites.append(pair["site"])
    if not sites:
        return None
    figure = _figure(max(5.0, 1.6 * len(history) + 2) * len(sites) ** 0.5 + 1, 3.8)
    for index, name in enumerate(sites):
        axes = figure.add_subplot(1, len(sites), index + 1)
        for offset, side, colour in ((-0.18, "L", _COLOURS[0]), (0.18, "R", _COLOURS[1])):
            xs, ys = [], []
            for x, visit in enumerate(history):
                site = _site_of(visit, (name, side))
                if site is not None and site["ppt_kpa_x10"] is not None:
                    xs.append(x + offset)
                    ys.append(site["ppt_kpa_x10"] / 10)
            axes.bar(xs, ys, width=0.34, color=colour, label="left" if side == "L" else "right")
        top = axes.get_ylim()[1]
        for x, visit in enumerate(history):
            for pair in (visit["comparison"] or {}).get("side_to_side", ()):
                if pair["site"] == name and pair["diff_pct_x10"] is not None:
                    flagged = pair["flag"]
                    text = "%.1f %%" % (pair["diff_pct_x10"] / 10)
                    if flagged:
                        text += " > %d %%" % _SIDE_LIMIT_PCT
                    colour = "#d62728" if flagged else "black"
                    axes.text(x, top * 1.02, text, ha="center", fontsize=8, color=colour)
        axes.set_ylim(0, top * 1.15)
        axes.set_title("%s: left and right (kPa)" % name.replace("_", " "), fontsize=9)
        _visit_axis(axes, labels)
        axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure


def chart_traces(visit, label):
    trials = [t for t in visit["trials"] if t["curves"]]
    if not trials:
        return None
    keys = []
    for trial in trials:
        key = (trial["site"], trial["side"])
        if key not in keys:
            keys.append(key)
    figure = _figure(4.2 * len(keys), 3.6)
    figure.suptitle(
        "Pressure traces, visit %s (dashed: %d kPa/s from the onset)"
        % (label.replace("\n", " "), TARGET_KPA_S),
        fontsize=10,
    )
    for index, key in enumerate(keys):
        axes = figure.add_subplot(1, len(keys), index + 1)
        longest = 0.0
        onset_kpa = None
        for number, trial in enumerate(t for t in trials if (t["site"], t["side"]) == key):
            samples = []
            for curve in trial["curves"]:
                samples.extend(curve["samples_kpa_x10"])
            interval_s = trial["curves"][0]["interval_ms"] / 1000
            times = [i * interval_s for i in range(len(samples))]
            longest = max(longest, times[-1])
            onset_kpa = samples[0] / 10 if onset_kpa is None else onset_kpa
            style = ":" if trial["excluded"] or not trial["valid"] else "-"
            axes.plot(
                times,
                [s / 10 for s in samples],
                style,
                color=_COLOURS[number % len(_COLOURS)],
                label="trial %d%s" % (trial["trial"], _trial_note(trial)),
            )
        axes.plot(
            [0, longest],
            [onset_kpa, onset_kpa + TARGET_KPA_S * longest],
            "--",
            color="gray",
            linewidth=1,
            label="%d kPa/s" % TARGET_KPA_S,
        )
        axes.set_title(_label(key), fontsize=9)
        axes.set_xlabel("s from the onset", fontsize=8)
        axes.set_ylabel("kPa", fontsize=8)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    return figure


def _trial_note(trial):
    if trial["excluded"]:
        return " (discarded)"
    if trial["flag_names"]:
        return " (" + ", ".join(trial["flag_names"]) + ")"
    return ""


def _rungs(dose):
    """(gauge mm, needles, depth rung, manipulation rung) of a dose; None: no needling."""
    if dose is None or dose["needles"] is None:
        return None
    return (
        dose["gauge_mm"],
        dose["needles"],
        DEPTHS.index(dose["depth"]),
        MANIPULATIONS.index(dose["manipulation"]),
    )


def chart_doses(history, labels):
    if not any(v["recommendation"] or v["dose"] for v in history):
        return None
    figure = _figure(max(6.0, 1.3 * len(history) + 3), 7.0)
    rows = (
        ("gauge (mm)", [g / 100 for g in GAUGES_MM_X100], None),
        ("needles", None, None),
        ("depth", list(range(len(DEPTHS))), list(DEPTHS)),
        ("manipulation", list(range(len(MANIPULATIONS))), list(MANIPULATIONS)),
    )
    figure.suptitle(
        "Doses: recommended (open) and given (filled); response at the next visit", fontsize=10
    )
    for row, (name, ticks, ticklabels) in enumerate(rows):
        axes = figure.add_subplot(len(rows), 1, row + 1)
        for x, visit in enumerate(history):
            recommended = _rungs(visit["recommendation"])
            given = _rungs(visit["dose"])
            if recommended is not None:
                axes.plot(
                    [x - 0.08],
                    [recommended[row]],
                    "o",
                    markerfacecolor="white",
                    markeredgecolor=_COLOURS[0],
                    markersize=9,
                )
            if given is not None:
                axes.plot([x + 0.08], [given[row]], "o", color=_COLOURS[1], markersize=7)
            if row == 0:
                axes.text(
                    x,
                    1.05,
                    _dose_caption(visit),
                    transform=axes.get_xaxis_transform(),
                    ha="center",
                    fontsize=7,
                )
        if ticks is not None:
            axes.set_yticks(ticks)
            if ticklabels is not None:
                axes.set_yticklabels(ticklabels, fontsize=7)
            axes.set_ylim(min(ticks) - 0.5 * _step(ticks), max(ticks) + 0.5 * _step(ticks))
        else:
            axes.set_ylim(4, 11)
        axes.set_ylabel(name, fontsize=8)
        _visit_axis(axes, labels if row == len(rows) - 1 else [""] * len(labels))
    figure.tight_layout()
    return figure


def _step(ticks):
    return (max(ticks) - min(ticks)) / max(1, len(ticks) - 1)


def _dose_caption(visit):
    rec = visit["recommendation"]
    parts = []
    if rec is not None and rec["needles"] is None:
        parts.append(rec["status"] + ": no dose")
    elif visit["dose"] is not None and visit["dose"]["needles"] is None:
        parts.append("no needling")
    if visit["outcome"] is not None:
        parts.append("then: " + visit["outcome"]["response"])
    return "\n".join(parts)


# --- the report ------------------------------------------------------------------------------

CHARTS = (
    (
        "ppt_by_site.png",
        "Pressure pain threshold per site",
        "Each point is a site's value at a visit: the mean of its valid trials. The blue band is "
        "the reference group's 95 % range (mean +- 1.96 SD on the log scale) for the patient's "
        "sex and age, where the reference table has a row for the site. A triangle is a site "
        "the patient never stopped: the threshold is at least the safety ceiling.",
    ),
    (
        "z_scores.png",
        "QST z-scores",
        "z compares the site with the reference group on the log scale; a positive z is a lower "
        "threshold than the reference (sensitised). Grey: the reference group's 95 % (+-1.96). "
        "Dashed: the dosage rules' default cut-offs (high: sensitised; low: robust; a clinic "
        "may have tuned them on its units). A downward triangle is an upper bound (the "
        "ceiling was reached).",
    ),
    (
        "side_to_side.png",
        "Side to side",
        "Left and right of each site measured on both sides; above the bars the difference as "
        "a percentage of the lower side, in red when over 35 % (Pfau et al. 2014).",
    ),
    (
        "traces_last_visit.png",
        "Pressure traces of the last visit",
        "Each line is a trial's pressure from the onset (10 kPa) to its end, as the unit stored "
        "it; the dashed line rises at the 50 kPa/s target from the onset pressure. Dotted: a "
        "trial with a quality flag or one the clinician discarded.",
    ),
    (
        "dose_history.png",
        "Dose history",
        "Open circles: the dose the unit recommended; filled: the dose given (it may be lower). "
        "Above each visit: no dose (contraindicated) or no needling, and the response the "
        "patient reported at the following visit.",
    ),
)


def build(data, patient, out_dir, tz=None, table=None, now_s=None):
    """Writes the report of one patient (data: host_sync.visits.load(db, patient=code)) into
    out_dir: the PNGs and report.html. Returns the paths written."""
    history = [v for v in data["visits"] if v["code"] == patient]
    if not history:
        raise ReportError("no visits of patient %s in the database" % patient)
    table = reference_table() if table is None else table
    latest = history[-1]["session"] or {}
    sex, age = latest.get("sex", "U"), latest.get("age")
    labels = _labels(history, tz)
    figures = {
        "ppt_by_site.png": chart_ppt(history, labels, table, sex, age),
        "z_scores.png": chart_z(history, labels),
        "side_to_side.png": chart_side_to_side(history, labels),
        "traces_last_visit.png": chart_traces(history[-1], labels[-1]),
        "dose_history.png": chart_doses(history, labels),
    }
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as error:
        raise ReportError("cannot make the directory %s: %s" % (out_dir, error.strerror)) from None
    paths = []
    images = {}
    for name, figure in figures.items():
        if figure is None:
            continue
        path = os.path.join(out_dir, name)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        png = buffer.getvalue()
        try:
            with open(path, "wb") as handle:
                handle.write(png)
        except OSError as error:
            raise ReportError("cannot write %s: %s" % (path, error.strerror)) from None
        images[name] = base64.b64encode(png).decode("ascii")
        paths.append(path)
    page = render_html(patient, history, labels, images, table, tz, now_s)
    path = os.path.join(out_dir, "report.html")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    paths.append(path)
    return paths


def _esc(value):
    return html.escape("" if value is None else str(value))


def _dose_text(dose):
    if dose is None:
        return ""
    if dose["needles"] is None:
        return "no needling"
    text = "%.2f mm, %d needles, %s, %s" % (
        dose["gauge_mm"],
        dose["needles"],
        dose["depth"],
        dose["manipulation"],
    )
    if dose["adjuncts"]:
        text += ", + " + ", ".join(dose["adjuncts"])
    return text


def _sites_text(visit):
    parts = []
    for site in visit["sites"]:
        if site["ppt_kpa_x10"] is not None:
            value = "%.1f kPa" % (site["ppt_kpa_x10"] / 10)
        elif site["ppt_min_kpa_x10"] is not None:
            value = "at least %.1f kPa" % (site["ppt_min_kpa_x10"] / 10)
        else:
            value = "no value"
        if site["z_x100"] is not None:
            value += ", z %.2f" % (site["z_x100"] / 100)
        parts.append("%s: %s" % (_label((site["site"], site["side"])), value))
    return "; ".join(parts)


_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 70em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.5em; text-align: left; vertical-align: top; }
th { background: #eee; }
.notice { border: 2px solid #c00; padding: 0.6em; background: #fff4f4; }
figure { margin: 1.5em 0; }
img { max-width: 100%; }
figcaption { font-size: 0.9em; color: #444; max-width: 60em; }
"""


def render_html(patient, history, labels, images, table, tz, now_s):
    made = export_mod.when(
        now_s if now_s is not None else int(datetime.datetime.now().timestamp()), tz
    )
    rows = []
    for label, visit in zip(labels, history, strict=True):
        rec = visit["recommendation"]
        rows.append(
            "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
            "</tr>"
            % (
                _esc(label.replace("\n", " ")),
                _esc(visit["device_id"]),
                _esc(_sites_text(visit)),
                _esc(
                    ""
                    if rec is None
                    else rec["status"] + (": " + _dose_text(rec) if rec["needles"] else "")
                ),
                _esc(_dose_text(visit["dose"]) or visit["ended"]),
                _esc("" if visit["response"] is None else visit["response"]["response"]),
                _esc("" if visit["outcome"] is None else visit["outcome"]["response"]),
            )
        )
    repaired = sum(1 for v in history if v["time_source"] == "repaired")
    unknown = sum(1 for v in history if v["time_source"] == "unknown")
    notes = []
    if repaired:
        notes.append(
            "* %d visit(s) were measured before the unit's clock was set; their times "
            "were repaired from the clock setting later, before the unit was switched off."
            % repaired
        )
    if unknown:
        notes.append(
            "%d visit(s) have no known time (the unit's clock was never set in that "
            "session); they are placed after the visit before them on the same unit." % unknown
        )
    notes.append("Reference table: %s." % (_esc(table["version"]) if table else "not installed"))
    figures = []
    for name, title, caption in CHARTS:
        if name in images:
            figures.append(
                '<figure><h2>%s</h2><img alt="%s" src="data:image/png;base64,%s">'
                "<figcaption>%s</figcaption></figure>"
                % (_esc(title), _esc(title), images[name], _esc(caption))
            )
        else:
            figures.append("<h2>%s</h2><p>Nothing to show for this patient.</p>" % _esc(title))
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            "<title>AlgoDose report %s</title>" % _esc(patient),
            "<style>%s</style></head><body>" % _STYLE,
            "<h1>AlgoDose report: patient %s</h1>" % _esc(patient),
            "<p>Made %s from %d visit(s).</p>" % (_esc(made), len(history)),
            '<p class="notice">AlgoDose is not a validated medical device. Its recommendations '
            "support a clinician's judgement and never replace it: check every dose against "
            "the patient in front of you.</p>",
            "<h2>Visits</h2><table><tr><th>visit</th><th>unit</th><th>sites</th>"
            "<th>recommended</th><th>given</th><th>response to the visit before</th>"
            "<th>response at the next visit</th></tr>",
            "\n".join(rows),
            "</table>",
            "\n".join("<p>%s</p>" % _esc(n) for n in notes),
            "\n".join(figures),
            "</body></html>",
            "",
        ]
    )

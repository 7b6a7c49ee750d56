# The bedside screens (DESIGN 1): each a function that draws one screen of the 128x64 OLED
# from plain data (the dicts core.visit, core.dosage and core.qst produce, ints, strings)
# onto any FrameBuffer or core.draw.Canvas, and returns the Canvas: its rows() are the text
# view (8 rows of 21 characters) the tests and the simulator's narrative read, its `pages`
# how many pages a long screen has. The navigation state machine (which screen, cursor,
# page, button events) lives elsewhere and calls these.
#
# Rules every screen keeps: nothing drawn past the edge (Canvas.overflow stays False); a
# page breaks only between sentences (core.draw.paginate); every screen but home (the root)
# ends with the back hint; pressure is shown with its unit, in the clinic's unit.
from micropython import const

from core import draw, font
from core.draw import BODY_ROWS, COLUMNS, Canvas, body_y, fit, pair
from core.scale import UNITS, convert_x100, format_x100
from core.vocab import CONDITIONS, CONTRAINDICATIONS, FLAGS

BACK = "hold:back"  # long press = back, on every screen but home
NEW_CODE = "+ new code"
CODE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"  # pseudonymous codes only (core.record)
DEL = font.LEFT  # code entry: the choices after CODE_CHARS
DONE = font.CHECK
# The one contraindication that is a caution and never overridden (core.case keeps the same
# rule): the screen shows no override row for it.
CAUTION_ONLY = ("pregnancy_first_trimester",)
# Responses offered, in order; None = not known (the dose is then held).
RESPONSE_CHOICES = ("none", "tolerated", "flare", None)
_RESPONSE_LABELS = ("No change", "Tolerated", "Flare-up", "Not known")
_STATUS_TITLES = {"ok": "Dose OK", "caution": "CAUTION", "contraindicated": "CONTRAINDICATED"}
_CATEGORY_WORDS = {"high": "sensitised", "normal": "normal", "low": "robust"}
_LABELS = {
    "crohns": "Crohn's",
    "chronic": "chronic problem",
    "pregnancy_first_trimester": "1st trimester",
}
# Decimals shown per unit (core.scale.UNITS order): live pressure, and a site's value.
_LIVE_DECIMALS = (0, 2, 1, 1)
_RESULT_DECIMALS = (1, 2, 1, 2)
_DIGITS_H = const(26)  # live pressure: 26 px seven-segment digits ...
_DIGITS_SMALL_H = const(20)  # ... or 20 px beside a long unit name
_CUE_W = const(21)  # the cue's arrow: 21 wide, 11 tall
_PASSKEY_H = const(24)
_ERRORS = {
    "sensor": (
        "SENSOR FAULT",
        "Lift the probe and check its cable. The trial will be repeated; finished trials"
        " are saved.",
    ),
    "storage_full": (
        "STORAGE FULL",
        "Sync with the laptop to free space. No new visit until then; nothing stored is lost.",
    ),
    "clock": (
        "CLOCK NOT SET",
        "Sync with the laptop to set the clock. Readings are kept with the time since start.",
    ),
    "calibration": (
        "CALIBRATE FIRST",
        "Calibration needed. Open Settings, Calibrate, with the known mass at hand.",
    ),
    "storage": (
        "STORAGE ERROR",
        "Readings are held in memory and saving is retried. Keep the unit on; if this stays,"
        " sync and have it checked.",
    ),
}
ERRORS = tuple(_ERRORS)
_PAIR_WAIT = "Open. On the laptop run: host_sync pair. The passkey to type shows here."


def label(name):
    """A vocabulary name as the screen says it: "chronic_fatigue" -> "chronic fatigue"."""
    return _LABELS.get(name) or name.replace("_", " ")


def _canvas(target):
    canvas = target if isinstance(target, Canvas) else Canvas(target)
    canvas.clear()
    return canvas


def _keys(keys):
    return pair(keys, BACK) if keys else " " * (COLUMNS - len(BACK)) + BACK


def _counter(number, total):
    return "%d/%d" % (number, total) if total > 1 else ""


def fixed(value_x100, decimals):
    """A value x 100 as text with 0-2 decimals, rounded half away from zero: 24537 -> "245.4"."""
    if decimals != 0 and decimals != 1:
        return format_x100(value_x100)  # all the decimals there are: nothing to round
    sign = "-" if value_x100 < 0 else ""
    value_x100 = abs(value_x100)
    if decimals == 0:
        return "%s%d" % (sign, (value_x100 + 50) // 100)
    tenths = (value_x100 + 5) // 10
    return "%s%d.%d" % (sign, tenths // 10, tenths % 10)


def pressure(kpa_x10, unit="kPa", live=False):
    """Pressure in the clinic's unit without the unit: "245.3"; live values are coarser."""
    index = UNITS.index(unit)
    return fixed(
        convert_x100(kpa_x10, unit), (_LIVE_DECIMALS if live else _RESULT_DECIMALS)[index]
    )


def _paged(canvas, title, blocks, page, keys, top_rows=0, right=None, top=None, data=None):
    """Header, the page'th page of blocks, footer. On the first page top(canvas, data) draws
    the top top_rows body rows and the blocks start under them. right: the header's right
    text on a one-page screen (else the page counter)."""
    pages = draw.paginate(blocks, BODY_ROWS, BODY_ROWS - top_rows)
    page = max(0, min(page, len(pages) - 1))
    if page == 0 and top is not None:
        top(canvas, data)
    canvas.page = page
    canvas.pages = len(pages)
    if right is None or len(pages) > 1:
        right = _counter(page + 1, len(pages))
    canvas.header(title, right)
    canvas.body(pages[page], top_rows if page == 0 else 0)
    canvas.footer(_keys(keys))
    return canvas


def _title(canvas, title):
    canvas.text(0, body_y(0), fit(title, COLUMNS // 2), 2)


def _items(texts, first_prefix, prefix="  "):
    out = []
    for text in texts:
        out.extend(draw.blocks(text, first_prefix, prefix))
    return out


def _headed(heading, block_list):
    """The heading glued to the first block, so it never ends a page alone."""
    if block_list:
        block_list[0] = [heading] + block_list[0]
    return block_list


# -- home and patients ---------------------------------------------------------------------


def home(
    target,
    patient=None,
    site=None,
    records_unsynced=0,
    storage_used_pct=0,
    battery_pct=None,
    clock_set=True,
    link=None,
    keys="ok:visit " + font.UP + font.DOWN + ":menu",
):
    """The root screen. patient: the chosen code or None; site: the site name or None;
    link: None, "syncing" or "pairing" (a window open for a laptop)."""
    c = _canvas(target)
    c.header("AlgoDose", "" if battery_pct is None else "bat %d%%" % battery_pct)
    if patient:
        c.text(0, body_y(0), patient, 2 if len(patient) <= 10 else 1)
    else:
        c.text(0, body_y(0), "No patient chosen")
    c.text(0, body_y(2), pair("Site", label(site) if site else "-"))
    synced = "all synced" if not records_unsynced else "%d to sync" % records_unsynced
    c.text(0, body_y(3), pair("Store %d%%" % storage_used_pct, synced))
    c.text(0, body_y(4), "Clock set" if clock_set else "Clock NOT set: sync")
    if link:
        c.lit_row(body_y(5), "Syncing..." if link == "syncing" else "Pairing open", True)
    c.footer(keys)  # home is the root: nothing to go back to
    return c


def menu(target, title, items, cursor=0, keys="ok:pick"):
    """A list to pick from: items (strings), cursor lit."""
    c = _canvas(target)
    c.header(title, _counter(cursor + 1, len(items)))
    c.menu(items, cursor)
    c.footer(_keys(keys))
    return c


PLAN_SIDES = ("R", "L", "R+L", "L+R")  # local side: one, or both with the first needled


def site_plan(target, local, side, remote, remote_side, cursor=0, editing=0, keys=None):
    """The sites to measure: local (the one to be needled) on side (PLAN_SIDES: "R+L" both,
    the first one needled), and the remote reference site (None: none) on remote_side.
    cursor: 0 local, 1 remote, 2 start; editing: 1 the cursor's site, 2 its side."""
    c = _canvas(target)
    c.header("Site plan", "%d/3" % (cursor + 1))
    arrows = font.UP + font.DOWN
    rows = (("Needle site", side, local), ("Reference", remote_side, remote))
    for i in range(2):
        title, row_side, site = rows[i]
        mark = arrows if editing == 2 and cursor == i else ""
        c.text(0, body_y(2 * i), pair(title, "side " + mark + row_side if site else ""))
        name = label(site) if site else "none"
        if editing == 1 and cursor == i:
            name = arrows + name
        c.lit_row(body_y(2 * i + 1), name, cursor == i)
    c.lit_row(body_y(4), "Start measuring " + font.RIGHT, cursor == 2)
    if keys is None:
        keys = arrows + " ok:set" if editing else ("ok:start" if cursor == 2 else "ok:change")
    c.footer(_keys(keys))
    return c


def patient_select(target, codes, cursor=0, keys="ok:pick"):
    """The codes the laptop pushed, then "+ new code"; cursor indexes that list."""
    c = _canvas(target)
    items = list(codes) + [NEW_CODE]
    c.header("Patient", _counter(cursor + 1, len(items)))
    first = 0
    if not codes:
        c.text(0, body_y(0), "No list from laptop")
        first = 1
    c.menu(items, cursor, first, BODY_ROWS - first)
    c.footer(_keys(keys))
    return c


def _code_max_chars():
    # Imported when a code is entered, not with the screens: core.record takes 18 KB of heap
    # as .mpy, and the screens alone must load in a board-sized heap.
    from core.record import CODE_MAX_CHARS

    return CODE_MAX_CHARS


def code_problem(code):
    """Why code cannot be a patient code yet (one line), or None: A-Z 0-9 - only, at least one
    digit, at most core.record.CODE_MAX_CHARS (the record refuses anything else)."""
    max_chars = _code_max_chars()
    if not code:
        return "Add characters"
    if len(code) > max_chars:
        return "At most %d chars" % max_chars
    digit = False
    for ch in code:
        if "0" <= ch <= "9":
            digit = True
        elif ch not in CODE_CHARS:
            return "Only A-Z 0-9 -"
    return None if digit else "Needs a digit"


def code_entry(target, code, choice, message=None, keys=font.UP + font.DOWN + " ok:add"):
    """A new pseudonymous code: code so far, and choice, the character up/down offer now (one
    of CODE_CHARS, DEL or DONE), lit after it."""
    c = _canvas(target)
    c.header("New code", "%d/%d" % (len(code), _code_max_chars()))
    shown = code[-9:] if len(code) > 9 else code  # 2x: 10 cells, the choice takes one
    x = c.text(0, body_y(0), shown, 2) if shown else 0
    y = body_y(0)
    c.fill_rect(x, y - 1, 12, 16)
    c.text(x + 1, y, choice, 2, True)
    c.text(0, body_y(2), fit(message or code_problem(code) or "Ready to save", COLUMNS))
    c.text(0, body_y(3), "Letters A-Z 0-9 -")
    c.text(0, body_y(4), DEL + " deletes  " + DONE + " saves")
    c.footer(_keys(keys))
    return c


def checklist_item(name, ticked):
    return (font.TICKED if ticked else font.BOX) + " " + label(name)


def factors(target, age, sex, ticked, cursor=0, editing=False, keys="ok:change"):
    """The dosage inputs as toggles: age, sex, then every condition and flag (ticked: the
    names ticked), then Continue. cursor indexes that list (factor_names()); editing: the age
    is being changed with up/down."""
    c = _canvas(target)
    shown = "-" if age is None else "%d y" % age
    if editing:
        shown = font.UP + font.DOWN + " " + shown
    items = [pair("Age", shown, 20), pair("Sex", sex or "-", 20)]
    for name in CONDITIONS + FLAGS:
        items.append(checklist_item(name, name in ticked))
    items.append("Continue " + font.RIGHT)
    c.header("Patient factors", _counter(cursor + 1, len(items)))
    c.menu(items, cursor)
    c.footer(_keys(keys))
    return c


def factor_names():
    """What each row of factors() is: "age", "sex", a condition or flag, then "continue"."""
    return ("age", "sex") + CONDITIONS + FLAGS + ("continue",)


def contraindication_rows(present):
    """The rows of contraindications(): (name, "item") per contraindication, (name,
    "override") under each present one that can be overridden, then (None, "continue")."""
    rows = []
    for name in CONTRAINDICATIONS:
        rows.append((name, "item"))
        if name in present and name not in CAUTION_ONLY:
            rows.append((name, "override"))
    rows.append((None, "continue"))
    return rows


def contraindications(target, present, overrides, cursor=0, keys="ok:change"):
    """Each contraindication as a toggle; under each present one its override (recorded as
    the clinician's decision). The first row says what the ticks mean for the dose."""
    c = _canvas(target)
    rows = contraindication_rows(present)
    items = []
    for name, kind in rows:
        if kind == "item":
            items.append(checklist_item(name, name in present))
        elif kind == "override":
            items.append("  override: " + ("YES" if name in overrides else "no"))
        else:
            items.append("Continue " + font.RIGHT)
    blocked = 0
    for name in present:
        if name not in CAUTION_ONLY and name not in overrides:
            blocked += 1
    if blocked:
        state = "NO NEEDLING: %d open" % blocked
    elif present:
        state = "Minimal dose only"
    else:
        state = "None ticked"
    c.header("Contraindications", _counter(cursor + 1, len(items)))
    c.text(0, body_y(0), state)
    c.menu(items, cursor, 1, BODY_ROWS - 1)
    c.footer(_keys(keys))
    return c


# -- measuring -----------------------------------------------------------------------------


def _site_title(site, side):
    if not site:
        return "Measure"
    name = label(site)
    return name[0].upper() + name[1:] + (" " + side if side else "")


def measurement(
    target,
    kpa_x10,
    phase="ramp",
    cue=0,
    trial=1,
    trials_per_site=3,
    site=None,
    side=None,
    saved=False,
    ceiling_kpa_x10=10000,
    unit="kPa",
    message=None,
    page=0,
    keys="",
):
    """The live trial. phase: core.visit's state name ("zero", "armed", "ramp" or "sensor");
    cue: core.ppt's CUE_*; trial: the trial now measured (1-based); saved: the last finished
    trial is on flash; message: a line to show instead of the digits (not while ramping)."""
    # Imported here, not with the screens: the screens alone must load in a board-sized heap
    # (tests/test_runtimes.py); the app has core.ppt loaded anyway.
    from core.ppt import CUE_FASTER, CUE_ON_TARGET, CUE_SLOWER

    c = _canvas(target)
    if phase == "zero" or phase == "sensor" or (message and phase != "ramp"):
        if phase == "zero":
            title, text = "Zeroing", "Hold the probe still, in the air."
        elif phase == "sensor":
            title, text = "SENSOR", message or _ERRORS["sensor"][1]
        else:
            title, text = "Note", message
        counter = "%d/%d" % (trial, trials_per_site)
        blocks = draw.blocks(text)
        return _paged(c, _site_title(site, side), blocks, page, keys, 2, counter, _title, title)
    c.header(_site_title(site, side), "%d/%d" % (trial, trials_per_site))
    value = pressure(kpa_x10, unit, True)
    y = body_y(0) + 1
    height = _DIGITS_H
    width = draw.value_width(value, unit, height)
    if width > draw.WIDTH - _CUE_W - 2:
        height = _DIGITS_SMALL_H  # a long unit (kgf/cm2): smaller digits, same bottom line
        width = draw.value_width(value, unit, height)
    c.value(draw.WIDTH - width, y + _DIGITS_H - height, value, unit, height)
    if phase == "ramp" and cue == CUE_FASTER:
        c.triangle(0, y + 3, _CUE_W // 2 + 1, True)
        word = "FASTER"
    elif phase == "ramp" and cue == CUE_SLOWER:
        c.triangle(0, y + 3, _CUE_W // 2 + 1, False)
        word = "SLOWER"
    elif phase == "ramp" and cue == CUE_ON_TARGET:
        c.text(2, y + 4, font.CHECK, 2)
        word = "on target"
    elif phase == "ramp":
        word = "pressing"
    else:
        word = ("saved " + font.CHECK) if saved else "ready"
    row = body_y(4)
    c.text(0, row, word)
    c.right(row, "trial %d/%d" % (trial, trials_per_site))
    c.bar(0, body_y(5) + 1, draw.WIDTH, 6, kpa_x10, ceiling_kpa_x10)
    c.footer(_keys(keys))
    return c


def _side_pair(comparison, site):
    """The left/right comparison of site in core.qst.compare's result, or None."""
    if comparison:
        for found in comparison.get("side_to_side") or ():
            if found["site"] == site:
                return found
    return None


def _site_top(c, result):
    y = body_y(0)
    unit = result["unit"]
    if result.get("ppt_kpa_x10") is not None:
        c.value(0, y, pressure(result["ppt_kpa_x10"], unit), unit)
    elif result.get("ppt_min_kpa_x10") is not None:
        c.value(0, y, ">" + pressure(result["ppt_min_kpa_x10"], unit), unit)
    else:
        c.text(0, y, "No value", 2)
    cv = result.get("cv_pct_x10")
    valid = "%d/%d valid" % (result.get("n_valid", 0), result.get("n_trials", 0))
    c.text(0, body_y(2), pair("CV -" if cv is None else "CV %s%%" % fixed(cv * 10, 1), valid))


def site_result(target, result, comparison=None, unit="kPa", page=0, keys="ok:next"):
    """One site's value. result: the site summary as core.visit keeps it (core.ppt's
    site_summary plus site, side, role and qst: core.qst.score's result or None);
    comparison: core.qst.compare's result once known (asymmetry and widespread flags)."""
    blocks = []
    qst = result.get("qst") or {}
    z = qst.get("z_x100")
    if z is not None:
        shown = "z %s%s" % ("+" if z > 0 else "", fixed(z, 2))
        category = qst.get("category")
        word = _CATEGORY_WORDS[category] if category in _CATEGORY_WORDS else "-"
        blocks.append([pair(shown, word)])
    elif qst.get("z_max_x100") is not None:
        bound = "robust" if qst.get("category") == "low" else "open"
        blocks.append([pair("z <= " + fixed(qst["z_max_x100"], 2), bound)])
    if qst.get("abnormal"):
        blocks += draw.blocks("Outside the healthy 95% range.")
    for text in (result.get("reason"), qst.get("reason"), qst.get("age_note")):
        if text:
            blocks += draw.blocks(text)
    side = _side_pair(comparison, result.get("site"))
    if side and side.get("diff_pct_x10") is not None:
        flag = "over 35%: asymmetry" if side["flag"] else "within 35%"
        diff = fixed(side["diff_pct_x10"] * 10, 1)
        blocks += draw.blocks("Left/right differ by %s%%, %s." % (diff, flag))
    remote = (comparison or {}).get("local_to_remote")
    if remote and result.get("role") == "local":
        words = {True: "WIDESPREAD sensitisation.", False: "Not widespread."}
        blocks += draw.blocks(words.get(remote.get("widespread"), "Widespread: unknown."))
    shown = dict(result)
    shown["unit"] = unit
    title = _site_title(result.get("site"), result.get("side"))
    return _paged(_canvas(target), title, blocks, page, keys, 3, None, _site_top, shown)


# -- the dose ------------------------------------------------------------------------------


def gauge_text(gauge_mm):
    gauge_x100 = int(gauge_mm * 100 + 0.5)
    return "%d.%02d" % (gauge_x100 // 100, gauge_x100 % 100)


def _dose_top(c, result):
    y = body_y(0)
    if result.get("needles") is None:
        c.text(0, y, "NO DOSE", 2)
        return
    c.value(0, y, gauge_text(result["gauge_mm"]), "mm")
    c.right(y, "%d" % result["needles"], 2)
    c.text(0, body_y(2), pair("gauge", "needles"))
    c.text(0, body_y(3), pair("Depth", result["depth"]))
    c.text(0, body_y(4), pair("Technique", label(result["manipulation"])))


def recommendation(target, result, page=0, keys="ok:dose"):
    """A core.dosage result over pages: the dose (gauge and needle count large), adjuncts and
    frequency, overrides, warnings, the reasons in plain words, and last the rule ids and the
    ruleset. The status heads every page."""
    blocks = []
    top = 2
    if result.get("needles") is not None:
        top = 5
        for name in result.get("adjuncts") or ():
            blocks.append(["+ " + label(name)])
        weekly = result.get("sessions_per_week")
        if weekly:
            blocks.append(["%d-%d sessions a week" % (weekly[0], weekly[1])])
    overrides = result.get("overrides") or ()
    if overrides:
        names = ", ".join([label(name) for name in overrides])
        blocks += draw.blocks("Override recorded: " + names + ".")
    blocks += _headed("Warnings:", _items(result.get("warnings") or (), "! "))
    reasons = [reason["text"] for reason in result.get("reasons") or ()]
    blocks += _headed("Why:", _items(reasons, "- "))
    rules = result.get("rules") or ()
    blocks.append(["Rules " + result.get("ruleset", "?")] + draw.wrap(" ".join(rules)))
    title = _STATUS_TITLES.get(result.get("status"), "?")
    return _paged(_canvas(target), title, blocks, page, keys, top, None, _dose_top, result)


DOSE_ROWS = ("confirm", "gauge_mm", "needles", "depth", "manipulation")


def dose_rows(recommended):
    """What each row of dose_given() is: "confirm", the four dimensions, one per recommended
    adjunct ("adjunct:e-stim"), then "none" (no needling today)."""
    if recommended.get("needles") is None:
        return ("none",)
    adjuncts = ["adjunct:" + name for name in recommended.get("adjuncts") or ()]
    return DOSE_ROWS + tuple(adjuncts) + ("none",)


def dose_given(target, dose, recommended, cursor=0, editing=False, keys="ok:change"):
    """The dose actually given: the recommended one to confirm, or any dimension lowered
    (dose: gauge_mm, needles, depth, manipulation, adjuncts as chosen now); editing: the
    cursor's value is being changed with up/down."""
    c = _canvas(target)
    rows = dose_rows(recommended)
    items = []
    lowered = False
    for row in rows:
        if row == "confirm":
            items.append("Confirm this dose " + font.RIGHT)
        elif row == "none":
            items.append("No needling today")
        elif row.startswith("adjunct:"):
            name = row[8:]
            ticked = name in (dose.get("adjuncts") or ())
            lowered = lowered or not ticked
            items.append(checklist_item(name, ticked))
        else:
            value = dose.get(row)
            lowered = lowered or value != recommended.get(row)
            if row == "gauge_mm":
                shown = gauge_text(value) + " mm"
            else:
                shown = label(value) if type(value) is str else "%d" % value
            if editing and rows[cursor] == row:
                shown = font.UP + font.DOWN + " " + shown
            items.append(
                pair(
                    {"gauge_mm": "Gauge", "needles": "Needles", "depth": "Depth"}.get(
                        row, "Technique"
                    ),
                    shown,
                    20,
                )
            )
    c.header("Dose given", "lowered" if lowered else "as shown")
    c.menu(items, cursor)
    c.footer(_keys(keys))
    return c


def response(target, cursor=0, last_dose=None, keys="ok:pick"):
    """How the patient responded to the last session: RESPONSE_CHOICES, cursor indexing them;
    last_dose (gauge_mm, needles, ...) is shown as a reminder when known."""
    c = _canvas(target)
    c.header("Last session")
    c.text(0, body_y(0), "How did it go?")
    first = 1
    if last_dose and last_dose.get("needles") is not None:
        shown = "Last: %s mm x %d" % (gauge_text(last_dose["gauge_mm"]), last_dose["needles"])
        c.text(0, body_y(1), shown)
        first = 2
    c.menu(_RESPONSE_LABELS, cursor, first, BODY_ROWS - first)
    c.footer(_keys(keys))
    return c


def aftercare(target, lines, page=0, keys="ok:done"):
    """The after-care advice (a recommendation's aftercare lines), one item per line."""
    return _paged(_canvas(target), "After-care", _items(lines, "- "), page, keys)


# -- the link to the laptop ----------------------------------------------------------------


def pairing(target, passkey, seconds_left=None, keys=""):
    """The pairing window: the 6-digit passkey the laptop asks for, large; passkey None: the
    window is open and no laptop has asked yet (what to do on the laptop)."""
    c = _canvas(target)
    c.header("Pairing", "" if seconds_left is None else "%d s" % seconds_left)
    if passkey is None:
        c.body(draw.wrap(_PAIR_WAIT))
        c.footer(_keys(keys))
        return c
    c.text(0, body_y(0), "Type on the laptop:")
    digits = "%06d" % passkey
    width = draw.digits_width(digits, _PASSKEY_H)
    c.digits((draw.WIDTH - width) // 2, body_y(1) + 4, digits, _PASSKEY_H)
    c.footer(_keys(keys))
    return c


def sync(target, sent, total, keys=""):
    """Records sent to the laptop so far, of total."""
    c = _canvas(target)
    c.header("Syncing", "%d%%" % (100 * sent // total) if total else "")
    c.text(0, body_y(0), "Records sent" if total else "Nothing to send")
    text = "%d/%d" % (sent, total)
    c.text(0, body_y(1), text, 2 if len(text) <= 10 else 1)
    c.bar(0, body_y(3) + 1, draw.WIDTH, 7, sent, total)
    c.text(0, body_y(5), "Keep near the laptop")
    c.footer(_keys(keys))
    return c


# -- errors, settings, calibration ---------------------------------------------------------


def error(target, kind, message=None, page=0, keys="ok:retry"):
    """One of ERRORS: sensor, storage_full, clock, calibration, storage; message: the detail
    the firmware gave, shown after what to do."""
    title, text = _ERRORS[kind]
    blocks = draw.blocks(text)
    if message:
        blocks += draw.blocks(message)
    return _paged(_canvas(target), title, blocks, page, keys)


_HALTED = (  # one page (tests/test_ui.py): there is no key to turn one
    "It crashed at each start and stopped. Stored data is kept. If it stops again, sync by"
    " USB and get service."
)


def halted(target):
    """The unit stopped restarting after a crash at every start (main.py): no key does
    anything now, so the footer says the one thing that does."""
    c = _canvas(target)
    c.header("UNIT FAULT", "")
    c.body(draw.paginate(draw.blocks(_HALTED), BODY_ROWS, BODY_ROWS)[0])
    c.footer("switch off, then on")
    return c


def notice(target, title, text, page=0, keys="ok"):
    """Any message (core.visit's message, say) in sentences over pages."""
    return _paged(_canvas(target), title, draw.blocks(text), page, keys)


SETTINGS_ROWS = (
    "unit",
    "target_kpa_s_x10",
    "tolerance_pct",
    "ceiling_kpa_x10",
    "trials_per_site",
    "aftercare_ice",
    "calibrate",
    "clock",
)


def settings(target, values, cursor=0, editing=False, keys="ok:change"):
    """The clinic settings (SETTINGS_ROWS; values: core.settings names, unit as the index
    into core.scale.UNITS, plus cal_id, clock_set and cal_mass_g, the calibration mass shown
    while it is chosen: editing the calibrate row). Rate and ceiling in the clinic unit; the
    ice line as after-care says it (core.vocab.AFTERCARE_ICE)."""
    c = _canvas(target)
    unit = UNITS[values.get("unit", 0)]
    rate = values.get("target_kpa_s_x10", 500)
    cal_id = values.get("cal_id", 0)
    if editing and SETTINGS_ROWS[cursor] == "calibrate":
        calibrate = "%d g" % values.get("cal_mass_g", 2000)
    else:
        calibrate = ("#%d " % cal_id if cal_id else "never ") + font.RIGHT
    shown = (
        unit,
        pressure(rate, unit) + " " + unit + "/s",
        "%d%%" % values.get("tolerance_pct", 20),
        pressure(values.get("ceiling_kpa_x10", 10000), unit, True) + " " + unit,
        "%d" % values.get("trials_per_site", 3),
        "allow" if values.get("aftercare_ice") else "avoid",
        calibrate,
        "set" if values.get("clock_set") else "NOT set",
    )
    names = ("Units", "Rate", "Tolerance", "Ceiling", "Trials/site", "Ice", "Calibrate", "Clock")
    items = []
    for i in range(len(names)):
        value = shown[i]
        if editing and i == cursor:
            value = font.UP + font.DOWN + " " + value
        items.append(pair(names[i], value, 20))
    c.header("Settings", _counter(cursor + 1, len(items)))
    c.menu(items, cursor)
    c.footer(_keys(keys))
    return c


CALIBRATION_STEPS = ("tare", "mass", "span", "done", "failed")


def calibration(target, step, mass_g=2000, message=None, counts_per_kg=None, page=0, keys=""):
    """The calibration wizard's steps (core.calibration's states): tare (hold still, probe in
    the air), mass (put the mass on), span (hold still), done (the span), failed (why)."""
    c = _canvas(target)
    index = CALIBRATION_STEPS.index(step)
    number = min(index + 1, 3)
    titles = ("Hold still", "Mass on", "Hold still", "Calibrated", "Failed")
    texts = (
        "Probe down, touching nothing: zeroing.",
        "Put the %d g mass on the probe: stand the unit on it, still." % mass_g,
        "Measuring the mass. Keep it still.",
        "Span %d counts per kg. Saved." % abs(counts_per_kg or 0),
        message or "Calibration failed. Try again.",
    )
    right = "%d/3" % number if index < 3 else None
    blocks = draw.blocks(texts[index])
    return _paged(c, "Calibrate", blocks, page, keys, 2, right, _title, titles[index])

# What the 128x64 OLED shows: pages of 8 rows of at most 16 characters (framebuf's 8x8
# font). Pure text, so the simulator can print it and the display task can draw it.
from micropython import const

COLUMNS = const(16)
ROWS = const(8)

_STATUS_LABELS = {"ok": "OK", "caution": "CAUTION", "contraindicated": "CONTRAIND."}


def wrap(text, first_prefix="", prefix=""):
    """Greedy word wrap to COLUMNS; a word longer than a row is cut."""
    lines = []
    line = first_prefix
    fresh = True  # the row holds only its prefix so far
    for word in text.split():
        while word:
            sep = "" if fresh else " "
            if len(line) + len(sep) + len(word) <= COLUMNS:
                line += sep + word
                fresh = False
                word = ""
            elif fresh:
                room = COLUMNS - len(line)
                lines.append(line + word[:room])
                word = word[room:]
                line = prefix
            else:
                lines.append(line)
                line = prefix
                fresh = True
    if not fresh:
        lines.append(line)
    return lines


def _pair(label, value):
    gap = COLUMNS - len(label) - len(value)
    if gap >= 1:
        return [label + " " * gap + value]
    return [label, " " * (COLUMNS - len(value)) + value]


def _dose_lines(result):
    if result["needles"] is None:
        return ["NO NEEDLING", "Contraindicated", "Clinician", "override needed"]
    gauge_x100 = int(result["gauge_mm"] * 100 + 0.5)
    lines = _pair("Gauge", "%d.%02d mm" % (gauge_x100 // 100, gauge_x100 % 100))
    lines += _pair("Needles", str(result["needles"]))
    lines += _pair("Depth", result["depth"])
    lines += _pair("Manip", result["manipulation"])
    for adjunct in result["adjuncts"]:
        lines.append("+ " + adjunct)
    low, high = result["sessions_per_week"]
    lines.append("%d-%d per week" % (low, high))
    return lines


def recommendation_pages(result):
    """Pages for one recommendation: dose, warnings, why (the reasons in words), after-care,
    rule ids."""
    sections = [_dose_lines(result)]
    if result["warnings"]:
        lines = []
        for text in result["warnings"]:
            lines += wrap(text, "! ", "  ")
        sections.append(lines)
    if result["reasons"]:
        lines = ["Why:"]
        for reason in result["reasons"]:
            lines += wrap(reason["text"], "", " ")
        sections.append(lines)
    if result["aftercare"]:
        lines = ["After-care:"]
        for text in result["aftercare"]:
            lines += wrap(text, "- ", "  ")
        sections.append(lines)
    sections.append(["Rules " + result["ruleset"]] + result["rules"])
    bodies = []
    for lines in sections:
        for start in range(0, len(lines), ROWS - 1):
            bodies.append(lines[start : start + ROWS - 1])
    label = _STATUS_LABELS[result["status"]]
    pages = []
    for number, body in enumerate(bodies):
        counter = "%d/%d" % (number + 1, len(bodies))
        header = label + " " * (COLUMNS - len(label) - len(counter)) + counter
        pages.append([header] + body + [""] * (ROWS - 1 - len(body)))
    return pages

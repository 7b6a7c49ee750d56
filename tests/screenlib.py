"""Screen data for the UI tests: hand-written results in the shapes core.dosage, core.ppt and
core.qst produce (including the recommendation's reasons and overrides), one example of every
screen, random requests for the both-runtime parity run, and helpers to read a drawn page.
"""

import framebuf

from core import draw, ui
from core.vocab import CONDITIONS, CONTRAINDICATIONS, FLAGS, STATUSES
from simulator.samples import (
    AFTERCARE,
    COMPARISON,
    GIVEN,
    NO_DOSE,
    RECOMMENDATION,
    SETTINGS,
    SITE,
    SITE_NO_VALUE,
)

# (name, screen function, args, kwargs): every screen at least once.
EXAMPLES = [
    (
        "home",
        "home",
        [],
        {
            "patient": "P-0042",
            "site": "upper_trapezius",
            "records_unsynced": 12,
            "storage_used_pct": 34,
            "battery_pct": 87,
            "clock_set": False,
            "link": "pairing",
        },
    ),
    ("home_empty", "home", [], {}),
    (
        "patient_select",
        "patient_select",
        [["P-0042", "P-0043", "KNEE-7", "A1", "B2", "C3", "D4"], 6],
        {},
    ),
    ("patient_select_empty", "patient_select", [[], 0], {}),
    ("code_entry", "code_entry", ["KNEE-", "7"], {}),
    ("code_entry_done", "code_entry", ["KNEE-7", ui.DONE], {}),
    ("factors", "factors", [42, "F", ["fibromyalgia", "chronic"], 5], {}),
    (
        "contraindications",
        "contraindications",
        [["needle_phobia", "pregnancy_first_trimester"], [], 1],
        {},
    ),
    (
        "contraindications_overridden",
        "contraindications",
        [["needle_phobia"], ["needle_phobia"], 0],
        {},
    ),
    ("measurement", "measurement", [2453, "ramp", 1, 2, 3, "upper_trapezius", "R"], {}),
    (
        "measurement_slower",
        "measurement",
        [7311, "ramp", 3, 1, 3, "thenar", "L"],
        {"unit": "kgf/cm2"},
    ),
    (
        "measurement_on_target",
        "measurement",
        [1200, "ramp", 2, 3, 3, "masseter", None],
        {"unit": "N"},
    ),
    ("measurement_saved", "measurement", [3, "armed", 0, 2, 3, "thenar", "L"], {"saved": True}),
    ("measurement_zero", "measurement", [0, "zero", 0, 1, 3, "thenar", "L"], {}),
    (
        "measurement_note",
        "measurement",
        [0, "armed", 0, 3, 3, "thenar", "L"],
        {"message": "Ceiling reached: remind the patient to press stop at the first pain"},
    ),
    ("site_result", "site_result", [SITE, COMPARISON], {}),
    ("site_result_page2", "site_result", [SITE, COMPARISON], {"page": 1}),
    ("site_result_no_value", "site_result", [SITE_NO_VALUE], {}),
    ("recommendation", "recommendation", [RECOMMENDATION], {}),
    ("recommendation_warnings", "recommendation", [RECOMMENDATION], {"page": 2}),
    ("recommendation_no_dose", "recommendation", [NO_DOSE], {}),
    ("dose_given", "dose_given", [GIVEN, RECOMMENDATION, 2, True], {}),
    ("response", "response", [1, {"gauge_mm": 0.25, "needles": 6, "depth": "intermediate"}], {}),
    ("aftercare", "aftercare", [AFTERCARE], {}),
    ("pairing", "pairing", [123456, 45], {}),
    ("pairing_open", "pairing", [None, 57], {}),
    ("menu", "menu", ["Menu", ["New visit", "Settings", "Pair a laptop"], 1], {}),
    ("site_plan", "site_plan", ["upper_trapezius", "R+L", "thenar", "R", 0, 0], {}),
    ("site_plan_side", "site_plan", ["cervical_paraspinal", "L", None, "R", 0, 2], {}),
    ("site_plan_start", "site_plan", ["masseter", "R", "forearm_extensors", "L", 2, 0], {}),
    ("factors_age", "factors", [42, "F", [], 0, True], {}),
    ("settings_mass", "settings", [SETTINGS, 6, True], {}),
    ("sync", "sync", [123, 456], {}),
    ("error_sensor", "error", ["sensor", "no data ready for 100 ms"], {}),
    ("error_storage_full", "error", ["storage_full"], {}),
    ("error_clock", "error", ["clock"], {}),
    ("error_calibration", "error", ["calibration"], {}),
    ("error_storage", "error", ["storage", "I/O error while flushing"], {}),
    ("notice", "notice", ["Visit ended", "Visit ended; every finished trial is saved"], {}),
    ("settings", "settings", [SETTINGS, 2], {}),
    ("calibration_tare", "calibration", ["tare"], {}),
    ("calibration_mass", "calibration", ["mass", 2000], {}),
    ("calibration_done", "calibration", ["done"], {"counts_per_kg": 215012}),
    (
        "calibration_failed",
        "calibration",
        ["failed"],
        {
            "message": "span: the mass moved the reading by 12 counts (need 1000): "
            "is it on the probe?"
        },
    ),
]


def new_fb():
    buf = bytearray(draw.WIDTH * draw.HEIGHT // 8)
    return buf, framebuf.FrameBuffer(buf, draw.WIDTH, draw.HEIGHT, framebuf.MONO_VLSB)


def draw_example(name, function, args, kwargs):
    buf, fb = new_fb()
    canvas = getattr(ui, function)(fb, *args, **kwargs)
    return bytes(buf), canvas


def every_page(function, *args, **kwargs):
    """[(buffer, canvas)] for every page of a paged screen."""
    out = []
    page = 0
    while True:
        buf, fb = new_fb()
        canvas = getattr(ui, function)(fb, *args, page=page, **kwargs)
        out.append((bytes(buf), canvas))
        page += 1
        if page >= canvas.pages:
            return out


def overlaps(canvas):
    """Pairs of texts drawn over each other (their glyph boxes intersect)."""
    found = []
    items = canvas.items
    for i in range(len(items)):
        x1, y1, w1, h1, t1 = items[i]
        for x2, y2, w2, h2, t2 in items[i + 1 :]:
            if x1 < x2 + w2 and x2 < x1 + w1 and y1 < y2 + h2 and y2 < y1 + h1:
                found.append((t1, t2))
    return found


def random_text(rng, words=(3, 40)):
    vocabulary = "the probe needle pneumothorax depth 0.16 mm: a sensitive patient e.g. NSAIDs"
    vocabulary = vocabulary.split() + ["24-48", "h", "fibromyalgia,", "capped", "x" * 25]
    count = rng.randint(*words)
    text = " ".join(rng.choice(vocabulary) for _ in range(count))
    return text[0].upper() + text[1:] + "."


def random_recommendation(rng):
    dose = rng.random() < 0.8
    result = {
        "status": rng.choice(STATUSES),
        "gauge_mm": rng.choice([0.16, 0.18, 0.2, 0.25, 0.3]) if dose else None,
        "needles": rng.randint(5, 10) if dose else None,
        "depth": rng.choice(["superficial", "intermediate", "deep"]) if dose else None,
        "manipulation": rng.choice(["basic", "rotation", "tenting", "pistoning"])
        if dose
        else None,
        "adjuncts": [a for a in ("microneedling", "e-stim") if dose and rng.random() < 0.3],
        "sessions_per_week": [1, 2] if dose else None,
        "warnings": [random_text(rng) for _ in range(rng.randint(0, 4))],
        "aftercare": AFTERCARE if dose else [],
        "reasons": [
            {"dimension": "gauge_mm", "rule": None, "text": random_text(rng, (2, 12))}
            for _ in range(rng.randint(0, 6))
        ],  # fmt: skip
        "overrides": [c for c in CONTRAINDICATIONS if rng.random() < 0.15],
        "rules": rng.sample(
            [
                "F-INFLAMMATION",
                "F-SENSITIVE",
                "Q-HIGH",
                "Q-HIGH-START",
                "CI-GATE",
                "F-CHRONIC-START",
                "S-THORAX",
                "P-TOLERATED",
            ],
            rng.randint(0, 8),
        ),  # fmt: skip
        "ruleset": "2026.11-r2",
    }
    return result


def random_site(rng):
    value = rng.choice([None, rng.randint(1, 20000)])
    qst = None
    if rng.random() < 0.7:
        z = rng.choice([None, rng.randint(-1000, 1000)])
        qst = {
            "z_x100": z,
            "z_max_x100": None if z is not None else rng.choice([None, rng.randint(-500, 100)]),
            "category": rng.choice(["high", "normal", "low", None]),
            "abnormal": rng.choice([True, False, None]),
            "age_note": rng.choice([None, "reference age about 30; patient 70"]),
            "reason": rng.choice([None, random_text(rng, (2, 30))]),
        }
    return {
        "site": rng.choice(
            ["thenar", "masseter", "upper_trapezius", "infraspinatus", "middle_deltoid"]
        ),
        "side": rng.choice(["L", "R", None]),
        "role": rng.choice(["local", "remote", None]),
        "n_trials": 3,
        "n_valid": rng.randint(0, 3),
        "ppt_kpa_x10": value,
        "ppt_min_kpa_x10": None if value else rng.choice([None, rng.randint(1, 20000)]),
        "cv_pct_x10": rng.choice([None, rng.randint(0, 2000)]),
        "reason": rng.choice([None, random_text(rng, (2, 60))]),
        "qst": qst,
    }


def random_requests(rng, count):
    """Screen requests (for the harness) over random data, every screen among them."""
    requests = []
    for _ in range(count):
        kind = rng.randrange(8)
        if kind == 0:
            result = random_recommendation(rng)
            requests.append(
                {
                    "screen": "recommendation",
                    "args": [result],
                    "kwargs": {"page": rng.randint(0, 9)},
                }
            )
        elif kind == 1:
            requests.append(
                {
                    "screen": "site_result",
                    "args": [random_site(rng), COMPARISON],
                    "kwargs": {
                        "page": rng.randint(0, 3),
                        "unit": rng.choice(["kPa", "kgf/cm2", "N", "lbf"]),
                    },
                }
            )
        elif kind == 2:
            requests.append(
                {
                    "screen": "measurement",
                    "args": [
                        rng.randint(-50, 20000),
                        rng.choice(["zero", "armed", "ramp", "sensor"]),
                        rng.randint(0, 3),
                        rng.randint(1, 6),
                        6,
                    ],
                    "kwargs": {
                        "unit": rng.choice(["kPa", "kgf/cm2", "N", "lbf"]),
                        "saved": rng.random() < 0.5,
                        "ceiling_kpa_x10": rng.choice([10000, 20000]),
                    },
                }
            )
        elif kind == 3:
            requests.append(
                {
                    "screen": "notice",
                    "args": ["Note", random_text(rng, (1, 80))],
                    "kwargs": {"page": rng.randint(0, 4)},
                }
            )
        elif kind == 4:
            ticked = [n for n in CONDITIONS + FLAGS if rng.random() < 0.3]
            requests.append(
                {
                    "screen": "factors",
                    "args": [
                        rng.randint(0, 120),
                        rng.choice("FMU"),
                        ticked,
                        rng.randint(0, len(ui.factor_names()) - 1),
                    ],
                }
            )
        elif kind == 5:
            present = [n for n in CONTRAINDICATIONS if rng.random() < 0.4]
            overrides = [n for n in present if rng.random() < 0.5]
            rows = ui.contraindication_rows(present)
            requests.append(
                {
                    "screen": "contraindications",
                    "args": [present, overrides, rng.randrange(len(rows))],
                }
            )
        elif kind == 6:
            codes = ["P-%04d" % rng.randint(0, 9999) for _ in range(rng.randint(0, 12))]
            requests.append(
                {"screen": "patient_select", "args": [codes, rng.randint(0, len(codes))]}
            )
        else:
            code = "".join(rng.choice(ui.CODE_CHARS) for _ in range(rng.randint(0, 16)))
            choice = rng.choice(ui.CODE_CHARS + ui.DEL + ui.DONE)
            requests.append({"screen": "code_entry", "args": [code, choice]})
    return requests


def body_rows(canvas, top_rows=0):
    """The body rows a paged screen shows (the text view without header, footer and the
    rows the first page draws above the text)."""
    rows = canvas.rows()[1 : 1 + draw.BODY_ROWS]
    return rows[top_rows:] if canvas.page == 0 else rows

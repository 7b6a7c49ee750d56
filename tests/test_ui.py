"""The bedside screens (core.ui): what each shows, with its own expected values, and the rules
every page keeps (nothing off screen, no text over text, no sentence split across pages, the
back hint), checked by hypothesis over recommendation results, site results and long texts."""

import json

import pytest
from casegen import random_case
from hypothesis import given, settings
from hypothesis import strategies as st
from screenlib import (
    COMPARISON,
    EXAMPLES,
    NO_DOSE,
    RECOMMENDATION,
    SITE,
    SITE_NO_VALUE,
    body_rows,
    draw_example,
    every_page,
    new_fb,
    overlaps,
    random_recommendation,
    random_site,
)

from core import dosage, draw, font, ui
from core.draw import CONTINUED
from core.ppt import CUE_FASTER, CUE_NONE, CUE_ON_TARGET, CUE_SLOWER
from simulator.harness.recommend import recommend_text


def text_of(canvas):
    return "\n".join(canvas.rows())


def page_texts(function, *args, **kwargs):
    return [
        " ".join(" ".join(c.rows()[1:7]).split())
        for _b, c in every_page(function, *args, **kwargs)
    ]


def check_page(canvas, root=False):
    """The rules of every page."""
    assert not canvas.overflow, canvas.rows()
    assert not overlaps(canvas), (overlaps(canvas), canvas.rows())
    assert 0 <= canvas.page < canvas.pages
    footer = canvas.rows()[-1]
    assert root or footer.endswith(ui.BACK), footer
    if canvas.pages > 1:
        assert canvas.rows()[0].endswith("%d/%d" % (canvas.page + 1, canvas.pages))


@pytest.mark.parametrize("example", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_every_screen_keeps_the_rules(example):
    _buf, canvas = draw_example(*example)
    check_page(canvas, root=example[1] == "home")


def test_home_is_the_root_and_says_what_ok_does():
    _buf, canvas = draw_example(*EXAMPLES[0])
    rows = canvas.rows()
    assert rows[0] == "AlgoDose      bat 87%"
    assert rows[1].startswith("P-0042")
    assert "Site  upper trapezius" in rows
    assert "Store 34%  12 to sync" in rows
    assert "Clock NOT set: sync" in rows
    assert "Pairing open" in rows
    assert rows[7].startswith("ok:visit")
    rows = ui.home(new_fb()[1]).rows()
    assert "No patient chosen" in rows and "Store 0%   all synced" in rows and "Clock set" in rows


# -- measuring -----------------------------------------------------------------------------


def measure(kpa_x10, phase="ramp", cue=CUE_NONE, **kwargs):
    kwargs.setdefault("site", "upper_trapezius")
    kwargs.setdefault("side", "R")
    buf, fb = new_fb()
    canvas = ui.measurement(fb, kpa_x10, phase, cue, 2, 3, **kwargs)
    check_page(canvas)
    return buf, canvas


@pytest.mark.parametrize(
    ("cue", "word"),
    [
        (CUE_FASTER, "FASTER"),
        (CUE_SLOWER, "SLOWER"),
        (CUE_ON_TARGET, "on target"),
        (CUE_NONE, "pressing"),
    ],
)
def test_measurement_shows_the_cue_the_trial_and_the_live_value_with_its_unit(cue, word):
    _buf, canvas = measure(2453, "ramp", cue)
    rows = canvas.rows()
    assert rows[0] == "Upper trapezius R 2/3"
    assert rows[1].endswith(" 245 kPa")
    assert rows[5] == word + " " * (21 - len(word) - 9) + "trial 2/3"


@pytest.mark.parametrize(
    ("kpa_x10", "unit", "shown"),
    [
        (2454, "kPa", "245"),  # 245.4 kPa: whole kPa while pressing
        (2455, "kPa", "246"),  # half away from zero
        (7311, "kgf/cm2", "7.46"),  # 731.1 / 98.0665 = 7.455
        (1200, "N", "12.0"),  # 10 kPa per N on 1 cm2
        (20000, "lbf", "45.0"),  # 2000 / 44.482 = 44.96
    ],
)
def test_live_pressure_in_the_clinic_unit(kpa_x10, unit, shown):
    _buf, canvas = measure(kpa_x10, unit=unit)
    assert " ".join(canvas.rows()[1:3]).split() == [shown, unit]  # smaller digits sit lower


def bar_fill(buf):
    """Lit pixels on the bar's middle row, inside its outline."""
    y = draw.body_y(5) + 1 + 3
    return sum((buf[(y >> 3) * 128 + x] >> (y & 7)) & 1 for x in range(2, 126))


def test_the_bar_fills_towards_the_ceiling_and_stops_there():
    assert bar_fill(measure(0)[0]) == 0
    assert bar_fill(measure(5000, ceiling_kpa_x10=10000)[0]) == 62  # half of 124
    assert bar_fill(measure(9999, ceiling_kpa_x10=10000)[0]) == 123
    assert bar_fill(measure(10000, ceiling_kpa_x10=10000)[0]) == 124
    over = measure(15000, ceiling_kpa_x10=10000)[0]
    assert bar_fill(over) == 124
    y = draw.body_y(5) + 1 + 3
    assert not (over[(y >> 3) * 128 + 126] >> (y & 7)) & 1  # the fill stops inside the outline


def test_between_trials_the_screen_says_saved_and_ready():
    rows = measure(3, "armed", saved=True)[1].rows()
    assert rows[5].startswith("saved " + font.CHECK)
    assert measure(3, "armed")[1].rows()[5].startswith("ready")


def test_zeroing_and_a_sensor_fault_say_what_to_do():
    rows = measure(0, "zero")[1].rows()
    assert rows[1].startswith("Zeroing") and "Hold the probe still," in rows
    text = text_of(measure(0, "sensor")[1])
    assert "SENSOR" in text and "check its cable" in text


def test_a_message_between_trials_replaces_the_digits():
    message = "Ceiling reached: remind the patient to press stop at the first pain"
    text = " ".join(" ".join(measure(0, "armed", message=message)[1].rows()[1:7]).split())
    assert "Note" in text and message in text


# -- results -------------------------------------------------------------------------------


def test_site_result_shows_value_cv_z_category_and_the_flags():
    pages = every_page("site_result", SITE, COMPARISON)
    first = pages[0][1].rows()
    assert first[0] == "Upper trapezius R 1/2"
    assert first[1] == "245.3 kPa"
    assert first[3] == "CV 8.2%     3/3 valid"
    assert first[4] == "z +1.23    sensitised"
    text = " ".join(" ".join(" ".join(c.rows()[1:7]) for _b, c in pages).split())
    assert "reference age about 30; patient 70" in text
    assert "Left/right differ by 41.2%, over 35%: asymmetry." in text
    assert "WIDESPREAD sensitisation." in text


def test_site_without_a_value_says_why():
    text = " ".join(page_texts("site_result", SITE_NO_VALUE))
    assert "No value" in text and "CV -" in text and "1/3 valid" in text
    assert "2 valid trials needed, 1 of 3 valid (1 rate out of tolerance, 1 sensor fault)" in text


def test_a_censored_site_shows_its_lower_bound_and_z_bound():
    site = dict(SITE, ppt_kpa_x10=None, ppt_min_kpa_x10=9506, cv_pct_x10=None)
    site["qst"] = dict(site["qst"], z_x100=None, z_max_x100=-152, category="low")
    rows = draw_example("x", "site_result", [site], {"unit": "kPa"})[1].rows()
    assert rows[1].startswith(">950.6") and rows[4] == "z <= -1.52     robust"


def test_recommendation_first_page_holds_the_dose_with_units():
    rows = draw_example("x", "recommendation", [RECOMMENDATION], {})[1].rows()
    assert rows[0].startswith("CAUTION")
    assert rows[1].split() == ["0.16", "mm", "6"] and rows[2] == ""
    assert rows[3] == "gauge         needles"
    assert rows[4] == "Depth     superficial"
    assert rows[5] == "Technique       basic"
    assert rows[6] == "+ e-stim"


def test_recommendation_pages_keep_the_order_reasons_before_rule_ids_last():
    texts = page_texts("recommendation", RECOMMENDATION)
    joined = " | ".join(texts)
    for warning in RECOMMENDATION["warnings"]:
        assert warning in joined
    for reason in RECOMMENDATION["reasons"]:
        assert reason["text"] in joined
    assert joined.index("Warnings:") < joined.index("Why:") < joined.index("Rules 2026.11-r2")
    assert "Rules 2026.11-r2 F-INFLAMMATION F-SENSITIVE" in texts[-1]
    assert texts[-1].endswith("S-THORAX")
    for _buf, canvas in every_page("recommendation", RECOMMENDATION):
        assert canvas.rows()[0].startswith("CAUTION")  # the status heads every page


def test_an_overridden_contraindication_is_shown_on_the_recommendation():
    result = dict(
        RECOMMENDATION, status="contraindicated", overrides=["needle_phobia", "lymphedema"]
    )
    joined = " | ".join(page_texts("recommendation", result))
    assert "Override recorded: needle phobia, lymphedema." in joined


def test_no_dose_shows_no_dose_values():
    texts = page_texts("recommendation", NO_DOSE)
    assert texts[0].startswith("NO DOSE")
    joined = " ".join(texts)
    assert "gauge" not in joined and "Depth" not in joined
    assert "No dose: needling needs a recorded clinician override" in joined


def test_rule_ids_fit_one_row():
    assert all(len(rule_id) <= ui.COLUMNS for rule_id, *_ in dosage.RULES)


# -- input screens -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        ("", "Add characters"),
        ("ABC-", "Needs a digit"),
        ("A1", None),
        ("0", None),
        ("A" * 15 + "1", None),  # 16: the most a record holds
        ("A" * 16 + "1", "At most 16 chars"),
        ("a1", "Only A-Z 0-9 -"),
        ("A 1", "Only A-Z 0-9 -"),
    ],
)
def test_code_problem_matches_what_a_record_accepts(code, problem):
    from core import record

    assert ui.code_problem(code) == problem
    accepted = True
    try:
        record._code(code)
    except ValueError:
        accepted = False
    assert accepted is (problem is None)


def test_code_entry_shows_the_code_the_choice_and_what_is_missing():
    rows = draw_example("x", "code_entry", ["KNEE-", "7"], {})[1].rows()
    assert rows[0] == "New code         5/16"
    assert rows[1].split() == ["KNEE-", "7"]
    assert rows[3] == "Needs a digit"
    rows = draw_example("x", "code_entry", ["AB" * 8, "1"], {})[1].rows()
    assert rows[1].split() == ["BABABABAB", "1"]  # the tail shows, the choice after it


def test_factors_list_every_dosage_input_with_its_state():
    names = ui.factor_names()
    assert len(names) == 2 + 5 + 5 + 1
    buf, fb = new_fb()
    seen = []
    for cursor in range(len(names)):
        canvas = ui.factors(fb, 70, "M", ["fibromyalgia", "recent_exercise"], cursor)
        check_page(canvas)
        seen += canvas.rows()[1:7]
    assert "Age             70 y" in [r.rstrip() for r in seen]
    assert font.TICKED + " fibromyalgia" in [r.rstrip(" " + font.DOWN + font.UP) for r in seen]
    assert font.BOX + " Crohn's" in [r.rstrip(" " + font.DOWN + font.UP) for r in seen]
    assert font.TICKED + " recent exercise" in [r.rstrip(" " + font.DOWN + font.UP) for r in seen]
    assert any(r.startswith("Continue") for r in seen)


def test_contraindications_offer_an_override_only_where_one_is_allowed():
    rows = ui.contraindication_rows(["needle_phobia", "pregnancy_first_trimester"])
    assert rows[:3] == [
        ("needle_phobia", "item"),
        ("needle_phobia", "override"),
        ("injection_reaction", "item"),
    ]
    assert ("pregnancy_first_trimester", "override") not in rows
    assert rows[-1] == (None, "continue") and len(rows) == 6 + 1 + 1


@pytest.mark.parametrize(
    ("present", "overrides", "state"),
    [
        ([], [], "None ticked"),
        (["needle_phobia", "lymphedema"], ["needle_phobia"], "NO NEEDLING: 1 open"),
        (["needle_phobia"], ["needle_phobia"], "Minimal dose only"),
        (["pregnancy_first_trimester"], [], "Minimal dose only"),
    ],
)
def test_contraindications_say_what_the_ticks_mean_for_the_dose(present, overrides, state):
    canvas = ui.contraindications(new_fb()[1], present, overrides, 0)
    check_page(canvas)
    assert canvas.rows()[1] == state


def test_dose_given_marks_a_lowered_dose_and_the_value_being_changed():
    rows = draw_example(
        "x", "dose_given", [dict(RECOMMENDATION, adjuncts=["e-stim"]), RECOMMENDATION, 0], {}
    )
    assert rows[1].rows()[0].endswith("as shown")
    lowered = dict(RECOMMENDATION, needles=5)
    canvas = ui.dose_given(new_fb()[1], lowered, RECOMMENDATION, 2, True)
    assert canvas.rows()[0].endswith("lowered")
    assert (
        canvas.rows()[3].startswith("Needles") and (font.UP + font.DOWN + " 5") in canvas.rows()[3]
    )
    assert ui.dose_rows(RECOMMENDATION) == (
        "confirm",
        "gauge_mm",
        "needles",
        "depth",
        "manipulation",
        "adjunct:e-stim",
        "none",
    )
    assert ui.dose_rows(NO_DOSE) == ("none",)


def test_response_choices_match_the_labels():
    rows = draw_example("x", "response", [0], {})[1].rows()
    assert rows[2:6] == ["No change", "Tolerated", "Flare-up", "Not known"]
    assert ui.RESPONSE_CHOICES == ("none", "tolerated", "flare", None)


def test_pairing_shows_six_digits_large_even_with_leading_zeros():
    rows = draw_example("x", "pairing", [42, 9], {})[1].rows()
    assert rows[0].endswith("9 s") and "000042" in rows[2]


@pytest.mark.parametrize(
    ("sent", "total", "pct"), [(0, 10, "0%"), (9, 10, "90%"), (10, 10, "100%")]
)
def test_sync_progress(sent, total, pct):
    rows = draw_example("x", "sync", [sent, total], {})[1].rows()
    assert rows[0].endswith(pct) and "%d/%d" % (sent, total) in rows[2]


def test_settings_show_values_in_the_clinic_unit():
    values = dict(
        json.loads(json.dumps({"unit": 2, "target_kpa_s_x10": 500, "ceiling_kpa_x10": 10000}))
    )
    texts = [r.rstrip(" " + font.DOWN) for r in ui.settings(new_fb()[1], values, 0).rows()]
    assert "Units              N" in texts
    assert "Rate         5.0 N/s" in texts
    assert "Ceiling      100.0 N" in texts


@pytest.mark.parametrize("kind", ui.ERRORS)
def test_every_error_says_what_to_do_and_keeps_the_detail(kind):
    pages = page_texts("error", kind, "detail from the firmware")
    assert pages and "detail from the firmware" in " ".join(pages)


def test_calibration_steps_count_one_to_three():
    for step, counter in (("tare", "1/3"), ("mass", "2/3"), ("span", "3/3")):
        assert draw_example("x", "calibration", [step], {})[1].rows()[0].endswith(counter)
    rows = draw_example("x", "calibration", ["done"], {"counts_per_kg": -215012})[1].rows()
    assert "Span 215012 counts" in " ".join(rows)


# -- the rules, over generated data --------------------------------------------------------


def check_all_pages(function, *args, **kwargs):
    pages = every_page(function, *args, **kwargs)
    for _buf, canvas in pages:
        check_page(canvas)
    return pages


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_dosage_results_keep_the_rules_and_lose_nothing(rng):
    code, line = recommend_text(json.dumps(random_case(rng)))
    assert code == 0
    result = json.loads(line)
    pages = check_all_pages("recommendation", result)
    joined = " ".join(" ".join(" ".join(c.rows()[1:7]).split()) for _b, c in pages)
    for rule in result["rules"]:
        assert rule in joined.split()
    for text in result["warnings"]:
        assert text in joined


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_generated_recommendations_and_sites_keep_the_rules(rng):
    check_all_pages("recommendation", random_recommendation(rng))
    check_all_pages(
        "site_result",
        random_site(rng),
        COMPARISON,
        unit=rng.choice(["kPa", "kgf/cm2", "N", "lbf"]),
    )


WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789,:-()%", min_size=1, max_size=12)
SENTENCE = st.lists(WORDS, min_size=1, max_size=40).map(lambda words: "A " + " ".join(words) + ".")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(SENTENCE, min_size=1, max_size=4).map(" ".join), min_size=0, max_size=6))
def test_no_sentence_is_split_across_pages_unless_longer_than_a_page(items):
    result = dict(RECOMMENDATION, warnings=items, reasons=[])
    pages = check_all_pages("recommendation", result)
    texts = []
    for _buf, canvas in pages:
        rows = body_rows(canvas, 5)
        texts.append((" ".join(" ".join(rows).split()), rows))
    for item in items:
        for number, sentence in enumerate(draw.sentences(item)):
            wrapped = draw.wrap(sentence, draw.COLUMNS, "! " if number == 0 else "  ", "  ")
            room = draw.BODY_ROWS - (1 if item is items[0] and number == 0 else 0)  # heading
            if len(wrapped) <= room:
                assert any(sentence in text for text, _rows in texts), sentence
            else:  # the one exception: it continues, with the mark, on the next page
                marked = [rows for _t, rows in texts if rows and rows[-1] == CONTINUED]
                assert marked, sentence


LONG_TEXT = st.lists(SENTENCE, min_size=1, max_size=8).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(LONG_TEXT, st.sampled_from(ui.ERRORS), st.lists(LONG_TEXT, max_size=5))
def test_long_messages_errors_and_aftercare_keep_the_rules_and_lose_nothing(text, kind, lines):
    for function, args in (
        ("notice", ("Note", text)),
        ("error", (kind, text)),
        ("aftercare", (lines,)),
    ):
        pages = check_all_pages(function, *args)
        joined = " ".join(" ".join(" ".join(c.rows()[1:7]).split()) for _b, c in pages)
        for sentence in draw.sentences(text) if function != "aftercare" else lines:
            for word in sentence.split():
                assert word in joined

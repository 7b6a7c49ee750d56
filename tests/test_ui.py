"""The OLED text: every page is 8 rows of at most 16 characters, and nothing is lost."""

import json

from casegen import random_case
from hypothesis import given, settings
from hypothesis import strategies as st

from core import dosage, ui
from simulator.harness.recommend import recommend_text


def pages_for(case):
    code, line = recommend_text(json.dumps(case))
    assert code == 0
    result = json.loads(line)
    return result, ui.recommendation_pages(result)


@settings(max_examples=200)
@given(st.randoms(use_true_random=False))
def test_every_page_fits_the_screen_and_says_everything(rng):
    result, pages = pages_for(random_case(rng))
    for page in pages:
        assert len(page) == ui.ROWS
        assert all(len(row) <= ui.COLUMNS for row in page)
    text = " ".join(" ".join(row.split()) for page in pages for row in page)
    unbroken = "".join(text.split())  # a word longer than a row is cut across rows
    for rule in result["rules"]:
        assert rule in text.split()
    for sentence in result["warnings"] + result["aftercare"]:
        assert all(word in unbroken for word in sentence.split())
    if result["needles"] is not None:
        assert "Needles" in pages[0][2] and str(result["needles"]) in pages[0][2]


def test_rule_ids_fit_one_row():
    assert all(len(rule_id) <= ui.COLUMNS for rule_id, *_ in dosage.RULES)


def test_wrap_cuts_only_words_longer_than_a_row():
    assert ui.wrap("depth capped at superficial", "! ", "  ") == [
        "! depth capped",
        "  at superficial",
    ]
    assert ui.wrap("x" * 20) == ["x" * 16, "x" * 4]


def test_contraindicated_page_shows_no_dose():
    result, pages = pages_for({"age": 30, "contraindications": ["bleeding_disorder"]})
    assert pages[0][0].startswith("CONTRAIND.")
    assert pages[0][1] == "NO NEEDLING"
    assert not any("Gauge" in row for page in pages for row in page)

"""core.draw and core.font: wrapping, sentences, pagination at its edges, the overflow check at
the screen's edge, large digits, and the font table against its drawing."""

import framebuf
import pytest

from core import draw, font
from core.draw import BODY_ROWS, CONTINUED, Canvas
from simulator import fontgen


def canvas():
    buf = bytearray(draw.WIDTH * draw.HEIGHT // 8)
    return buf, Canvas(framebuf.FrameBuffer(buf, draw.WIDTH, draw.HEIGHT, framebuf.MONO_VLSB))


def lit(buf, x, y):
    return (buf[(y >> 3) * draw.WIDTH + x] >> (y & 7)) & 1


# -- the font ------------------------------------------------------------------------------


def test_font_module_is_generated_from_the_drawing():
    assert font.GLYPHS == fontgen.table()
    assert fontgen.main(["--check"]) == 0


def test_every_printable_character_and_symbol_has_its_own_glyph():
    missing = fontgen.columns(fontgen.glyphs()["MISSING"])
    table = fontgen.table()
    for code in list(range(1, 8)) + list(range(33, 127)):
        assert table[code * 5 : code * 5 + 5] != missing, chr(code)
    assert table[32 * 5 : 33 * 5] == bytes(5)  # space is blank
    assert table[0:5] == table[127 * 5 : 128 * 5] == missing


def test_a_glyph_lands_where_the_drawing_says():
    buf, c = canvas()
    c.text(10, 9, "A")
    rows = fontgen.glyphs()["A"]
    for y in range(7):
        for x in range(5):
            assert lit(buf, 10 + x, 9 + y) == (rows[y][x] == "#")
    assert not any(lit(buf, 15, y) for y in range(64))  # the gap column stays dark


def test_double_size_doubles_every_pixel():
    buf, c = canvas()
    c.text(0, 0, "K", 2)
    rows = fontgen.glyphs()["K"]
    for y in range(14):
        for x in range(10):
            assert lit(buf, x, y) == (rows[y // 2][x // 2] == "#")


def test_inverse_text_is_dark_on_the_lit_background():
    buf, c = canvas()
    c.fill_rect(0, 0, 12, 8)
    c.text(0, 0, "T", 1, True)
    rows = fontgen.glyphs()["T"]
    for y in range(7):
        for x in range(5):
            assert lit(buf, x, y) == (rows[y][x] != "#")


def test_characters_beyond_the_font_draw_the_box():
    buf_a, a = canvas()
    buf_b, b = canvas()
    a.text(0, 0, "é€")
    b.text(0, 0, "\x00\x00")
    assert buf_a == buf_b and any(buf_a)


# -- the edge of the screen ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y", "over"),
    [(0, 0, False), (3, 57, False), (4, 57, True), (3, 58, True), (-1, 0, True), (0, -1, True)],
)
def test_a_full_row_fits_exactly_and_one_pixel_more_overflows(x, y, over):
    _, c = canvas()
    c.text(x, y, "x" * draw.COLUMNS)  # 21 glyphs: 125 px wide, 7 px tall
    assert c.overflow is over


def test_large_digits_report_their_width_and_overflow_at_the_edge():
    assert draw.digits_width("8", 26) == 17
    assert draw.digits_width("88", 26) == 17 + 4 + 17
    assert draw.digits_width("8.8", 26) == 17 + 4 + 8 + 17
    _, c = canvas()
    assert c.digits(128 - 38, 64 - 26, "88", 26) == 128 + 4
    assert not c.overflow
    c.digits(128 - 37, 0, "88", 26)
    assert c.overflow


def test_seven_segment_eight_lights_all_segments_and_one_only_the_right():
    buf, c = canvas()
    c.digits(0, 0, "8", 26)
    width, thick = 17, 4
    assert lit(buf, width // 2, 1) and lit(buf, width // 2, 12) and lit(buf, width // 2, 24)
    assert (
        lit(buf, 1, 6) and lit(buf, width - 2, 6) and lit(buf, 1, 20) and lit(buf, width - 2, 20)
    )
    buf, c = canvas()
    c.digits(0, 0, "1", 26)
    assert not lit(buf, width // 2, 1) and not lit(buf, 1, 6) and lit(buf, width - thick, 6)


def test_rows_place_each_text_at_its_row_and_column():
    _, c = canvas()
    c.text(0, 0, "top")
    c.text(6 * 18, 9, "end")
    c.text(12, 57, "foot")
    rows = c.rows()
    assert len(rows) == draw.ROWS
    assert rows[0] == "top" and rows[1] == " " * 18 + "end" and rows[7] == "  foot"


def test_menu_scrolls_to_the_cursor_and_marks_more_above_and_below():
    _, c = canvas()
    items = ["item %d" % i for i in range(10)]
    c.menu(items, 0)
    rows = c.rows()[1:7]
    assert rows[0].startswith("item 0") and rows[5].startswith("item 5")
    assert rows[5].endswith(font.DOWN) and not rows[0].endswith(font.UP)
    c.clear()
    c.menu(items, 6)  # one past the window: the window moves by one
    rows = c.rows()[1:7]
    assert rows[0].startswith("item 1") and rows[5].startswith("item 6")
    assert rows[0].endswith(font.UP) and rows[5].endswith(font.DOWN)
    c.clear()
    c.menu(items, 9)
    rows = c.rows()[1:7]
    assert rows[5].startswith("item 9") and not rows[5].endswith(font.DOWN)


def test_fit_and_pair_never_cut_a_value():
    assert draw.fit("abcdef", 6) == "abcdef"
    assert draw.fit("abcdefg", 6) == "abcde."
    assert draw.pair("Depth", "superficial") == "Depth" + " " * 5 + "superficial"
    assert draw.pair("Technique", "x" * 11) == "Technique " + "x" * 11  # 21: a gap of one
    assert draw.pair("Technique", "x" * 12) == "x" * 12  # 22: the value alone


# -- words into rows, rows into pages ------------------------------------------------------


def test_wrap_cuts_only_words_longer_than_a_row():
    assert draw.wrap("depth capped at superficial", 16, "! ", "  ") == [
        "! depth capped",
        "  at superficial",
    ]
    assert draw.wrap("x" * 25) == ["x" * 21, "x" * 4]
    assert draw.wrap("a " + "b" * 21) == ["a", "b" * 21]
    assert draw.wrap("") == []


def test_sentences_split_only_before_a_capital_or_a_digit():
    assert draw.sentences("Take care. Then go.") == ["Take care.", "Then go."]
    assert draw.sentences("Chronic, e.g. diabetes. 5 needles! Why? Now") == [
        "Chronic, e.g. diabetes.",
        "5 needles!",
        "Why?",
        "Now",
    ]
    assert draw.sentences("0.16 mm: a sensitive patient") == ["0.16 mm: a sensitive patient"]


def rows_of(count, tag="r"):
    return ["%s%d" % (tag, i) for i in range(count)]


def test_a_block_that_fills_the_rest_of_a_page_stays_on_it():
    pages = draw.paginate([rows_of(4, "a"), rows_of(2, "b")])
    assert pages == [rows_of(4, "a") + rows_of(2, "b")]


def test_a_block_one_row_too_long_for_the_rest_starts_the_next_page():
    pages = draw.paginate([rows_of(4, "a"), rows_of(3, "b")])
    assert pages == [rows_of(4, "a"), rows_of(3, "b")]


def test_a_block_as_long_as_a_page_is_not_cut():
    assert draw.paginate([rows_of(BODY_ROWS)]) == [rows_of(BODY_ROWS)]


def test_only_a_block_longer_than_a_page_continues_with_a_mark():
    block = rows_of(BODY_ROWS + 1)
    pages = draw.paginate([["x"], block])
    assert pages == [["x"], block[:5] + [CONTINUED], block[5:]]
    eleven = rows_of(11)
    assert draw.paginate([eleven]) == [eleven[:5] + [CONTINUED], eleven[5:]]
    twelve = rows_of(12)
    assert draw.paginate([twelve]) == [
        twelve[:5] + [CONTINUED],
        twelve[5:10] + [CONTINUED],
        twelve[10:],
    ]


def test_a_short_first_page_takes_what_fits_and_leaves_the_rest():
    assert draw.paginate([["a"], ["b"]], BODY_ROWS, 1) == [["a"], ["b"]]
    assert draw.paginate([["a", "a2"], ["b"]], BODY_ROWS, 1) == [[], ["a", "a2", "b"]]
    assert draw.paginate([], BODY_ROWS, 2) == [[]]


def test_blocks_give_each_sentence_its_rows_with_the_item_prefix_once():
    found = draw.blocks("First part here. Second one is longer than a row.", "! ", " ")
    assert found == [["! First part here."], [" Second one is longer", " than a row."]]

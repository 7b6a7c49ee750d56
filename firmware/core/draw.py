# Drawing on the 128x64 OLED, on any framebuf.FrameBuffer (the SSD1306 driver is one; the
# simulator uses a plain one): text in the firmware's own font (core.font; never
# FrameBuffer.text, whose built-in font the CPython shim cannot reproduce), large
# seven-segment digits, bars, arrows, the screen frame (header, body rows, footer) and a
# scrolling menu; word wrap and pagination that never split a sentence across pages.
#
# A Canvas wraps the FrameBuffer and keeps, beside the pixels, the text view of what it drew
# (rows(): 8 rows of 21 characters) and whether anything reached past the screen's edge
# (overflow), so tests and the simulator's narrative can read a screen as text.
#
# Glyphs are blitted, not plotted: the whole font is one 640x8 MONO_VLSB image; a glyph is
# cut from it by blitting the image at a negative offset into a 5x8 cell, and the cell is
# blitted onto the screen with its background as the colour key. Two C calls per glyph and
# no allocation: bench/bench_ui.py measures it against plotting glyphs with fill_rect.
import framebuf
from micropython import const

from core import font

WIDTH = const(128)
HEIGHT = const(64)
COLUMNS = const(21)  # text columns of CELL_W (6) pixels
ROWS = const(8)  # text rows of CELL_H (8) pixels
BODY_ROWS = const(6)  # rows between the header and the footer
_CELL_W = const(6)
_CELL_H = const(8)
_GLYPH_W = const(5)
_GLYPH_H = const(7)  # the 8th row of a cell is the gap between lines
_HEADER_H = const(8)
_BODY_Y = const(9)  # one dark row under the header bar
FOOTER_Y = const(57)
_MENU_COLUMNS = const(20)  # the last column holds the scroll marks
CONTINUED = "..."  # the last row of a page a long sentence continues from

_CODES = font.CODES  # bound once: text() checks every glyph against it
_font = bytearray(font.GLYPHS)  # framebuf wants a writable buffer
_FONT = framebuf.FrameBuffer(_font, _CODES * _GLYPH_W, 8, framebuf.MONO_VLSB)
_cell = bytearray(_GLYPH_W)
_CELL = framebuf.FrameBuffer(_cell, _GLYPH_W, 8, framebuf.MONO_VLSB)
_big = bytearray(4 * _GLYPH_W)  # a glyph at twice the size: 10x16
_BIG = framebuf.FrameBuffer(_big, 2 * _GLYPH_W, 16, framebuf.MONO_VLSB)
_inverse = bytearray(b"\x01\x00")  # palette: 0 -> 1, 1 -> 0
_INVERSE = framebuf.FrameBuffer(_inverse, 2, 1, framebuf.MONO_VLSB)
# 4 bits -> 8: every row of a glyph column twice, for the double size.
_DOUBLE = b"\x00\x03\x0c\x0f\x30\x33\x3c\x3f\xc0\xc3\xcc\xcf\xf0\xf3\xfc\xff"


def text_width(text, scale=1):
    """Pixels from the first lit column to the last of text at scale."""
    return (len(text) * _CELL_W - 1) * scale if text else 0


class Canvas:
    def __init__(self, fb):
        self.fb = fb
        self.items = []  # (x, y, w, h, text) of every text drawn, for rows() and the tests
        self.overflow = False  # something reached past the screen's edge
        self.page = 0
        self.pages = 1

    def clear(self):
        self.fb.fill(0)
        self.items.clear()
        self.overflow = False
        self.page = 0
        self.pages = 1

    def _room(self, x, y, w, h):
        if x < 0 or y < 0 or x + w > WIDTH or y + h > HEIGHT:
            self.overflow = True

    def _note(self, x, y, w, h, text):
        self.items.append((x, y, w, h, text))

    def text(self, x, y, text, scale=1, inverse=False):
        """Draws text with its top-left at x, y, at 1x or 2x; inverse draws dark glyphs (on a
        lit background the caller drew). Returns the x after the text."""
        width = text_width(text, scale)
        self._room(x, y, width, _GLYPH_H * scale)
        self._note(x, y, width, _GLYPH_H * scale, text)
        fb = self.fb
        cell = _CELL if scale == 1 else _BIG
        key = 1 if inverse else 0
        palette = _INVERSE if inverse else None
        step = _CELL_W * scale
        for i in range(len(text)):
            code = ord(text[i])
            if code >= _CODES:
                code = 0  # no glyph: the box
            _CELL.blit(_FONT, -code * _GLYPH_W, 0)
            if scale != 1:
                _double()
            fb.blit(cell, x, y, key, palette)
            x += step
        return x

    def right(self, y, text, scale=1, inverse=False):
        """Text ending at the screen's right edge."""
        return self.text(WIDTH - text_width(text, scale), y, text, scale, inverse)

    def digits(self, x, y, text, height):
        """Large seven-segment digits (0-9, '.', '-', ' '), readable at arm's length; returns
        the x after them."""
        width, thick = _digit_size(height)
        total = digits_width(text, height)
        self._room(x, y, total, height)
        self._note(x, y, total, height, text)
        fill = self.fb.fill_rect
        # The same for every digit: where the middle bar is, the bars' and strokes' lengths.
        mid = y + (height - thick) // 2
        bottom = y + height - thick
        inner = width - 2 * thick
        upper = mid - y - thick
        lower = bottom - mid - thick
        for i in range(len(text)):
            ch = text[i]
            if ch == ".":
                fill(x, bottom, thick, thick, 1)
                x += 2 * thick
                continue
            segments = _SEGMENTS.get(ch, 0)
            if segments & 1:  # top
                fill(x + thick, y, inner, thick, 1)
            if segments & 2:  # upper right
                fill(x + width - thick, y + thick, thick, upper, 1)
            if segments & 4:  # lower right
                fill(x + width - thick, mid + thick, thick, lower, 1)
            if segments & 8:  # bottom
                fill(x + thick, bottom, inner, thick, 1)
            if segments & 16:  # lower left
                fill(x, mid + thick, thick, lower, 1)
            if segments & 32:  # upper left
                fill(x, y + thick, thick, upper, 1)
            if segments & 64:  # middle
                fill(x + thick, mid, inner, thick, 1)
            x += width + thick
        return x

    def value(self, x, y, value, unit, height=0):
        """A value large with its unit small on the same bottom line: the value at 2x, or as
        seven-segment digits `height` tall; the text view gets one item, "value unit".
        Returns the x after the unit."""
        mark = len(self.items)
        if height:
            end = self.digits(x, y, value, height)
        else:
            height = 2 * _GLYPH_H
            end = self.text(x, y, value, 2)
        end = self.text(end, y + height - _GLYPH_H, unit)
        del self.items[mark:]
        self._note(x, y, end - x - 1, height, value + " " + unit)
        return end

    def fill_rect(self, x, y, w, h, colour=1):
        self._room(x, y, w, h)
        self.fb.fill_rect(x, y, w, h, colour)

    def rect(self, x, y, w, h, colour=1):
        self._room(x, y, w, h)
        self.fb.rect(x, y, w, h, colour)

    def bar(self, x, y, w, h, value, full):
        """An outlined bar w x h, filled in proportion to value / full (clamped)."""
        self.rect(x, y, w, h)
        inner = w - 4
        if full > 0 and value > 0:
            self.fb.fill_rect(x + 2, y + 2, inner * min(value, full) // full, h - 4, 1)

    def triangle(self, x, y, size, up):
        """A filled triangle size rows tall and 2 * size - 1 wide, pointing up or down."""
        self._room(x, y, 2 * size - 1, size)
        for i in range(size):
            row = i if up else size - 1 - i
            self.fb.fill_rect(x + size - 1 - row, y + i, 2 * row + 1, 1, 1)

    def rows(self):
        """The text view: ROWS strings of at most COLUMNS characters, each text drawn at its
        row and column (large text on its top row, one character per column)."""
        grid = [[" "] * COLUMNS for _ in range(ROWS)]
        for x, y, _w, _h, text in self.items:
            row = y // _CELL_H
            column = x // _CELL_W
            if 0 <= row < ROWS:
                line = grid[row]
                for i in range(len(text)):
                    if 0 <= column + i < COLUMNS:
                        line[column + i] = text[i]
        return ["".join(line).rstrip() for line in grid]

    # -- the frame every screen shares -----------------------------------------------------

    def header(self, title, right=""):
        """The title bar: title on the left, right (a page counter, a mark) on the right."""
        self.fb.fill_rect(0, 0, WIDTH, _HEADER_H, 1)
        room = COLUMNS - len(right) - 1 if right else COLUMNS
        self.text(0, 0, fit(title, room), 1, True)
        if right:
            self.right(0, right, 1, True)

    def footer(self, keys):
        """The key hints under a line, e.g. "ok:next   hold:back"."""
        self.fb.hline(0, FOOTER_Y - 1, WIDTH, 1)
        self.text(0, FOOTER_Y, keys)

    def body(self, rows, first=0):
        """Text rows in the body, from body row `first`."""
        for i in range(len(rows)):
            self.text(0, body_y(first + i), rows[i])

    def lit_row(self, y, text, lit, columns=COLUMNS):
        """A text row at y, cut to columns; lit: dark text on a lit row (a cursor, a state)."""
        if lit:
            self.fill_rect(0, y, WIDTH, _CELL_H)
        self.text(0, y, fit(text, columns), 1, lit)

    def menu(self, items, cursor, first=0, rows=BODY_ROWS):
        """A list in the body from row `first`, `rows` tall, the cursor's item lit, scrolled so
        the cursor shows; marks in the last column say there is more above or below."""
        top = 0 if cursor < rows else cursor - rows + 1
        for i in range(top, min(len(items), top + rows)):
            self.lit_row(body_y(first + i - top), items[i], i == cursor, _MENU_COLUMNS)
        x = _MENU_COLUMNS * _CELL_W
        if top > 0:
            self.text(x, body_y(first), font.UP)
        if top + rows < len(items):
            self.text(x, body_y(first + rows - 1), font.DOWN)


def _double():
    # _cell (5 columns of 8 rows) -> _big (10 columns of 16 rows): every pixel 2x2.
    for c in range(_GLYPH_W):
        column = _cell[c]
        low = _DOUBLE[column & 15]
        high = _DOUBLE[column >> 4]
        _big[2 * c] = low
        _big[2 * c + 1] = low
        _big[2 * _GLYPH_W + 2 * c] = high
        _big[2 * _GLYPH_W + 2 * c + 1] = high


# Segments lit per character: 1 top, 2 upper right, 4 lower right, 8 bottom, 16 lower left,
# 32 upper left, 64 middle.
_SEGMENTS = {
    "0": 63,
    "1": 6,
    "2": 91,
    "3": 79,
    "4": 102,
    "5": 109,
    "6": 125,
    "7": 7,
    "8": 127,
    "9": 111,
    "-": 64,
}


def _digit_size(height):
    # (digit width, stroke): strokes of about a seventh of the height read at arm's length.
    thick = max(2, (height + 3) // 7)
    return height // 2 + thick, thick


def digits_width(text, height):
    """Pixels the large digits of text take at height."""
    width, thick = _digit_size(height)
    total = 0
    for i in range(len(text)):
        total += 2 * thick if text[i] == "." else width + thick
    return total - thick if total else 0


def value_width(value, unit, height=0):
    """Pixels Canvas.value() takes."""
    if height:
        gap = _digit_size(height)[1]
        return digits_width(value, height) + gap + text_width(unit)
    return text_width(value, 2) + 2 + text_width(unit)


def body_y(row):
    return _BODY_Y + row * _CELL_H


def fit(text, columns):
    """text cut to columns characters, a cut one ending in "." so the cut shows."""
    if len(text) <= columns:
        return text
    return text[: columns - 1] + "."


def pair(label, value, columns=COLUMNS):
    """One row with label on the left and value on the right, or the value alone if both do
    not fit (a value is never cut)."""
    gap = columns - len(label) - len(value)
    if gap >= 1:
        return label + " " * gap + value
    return fit(value, columns)


# -- words into rows, rows into pages ------------------------------------------------------


def wrap(text, width=COLUMNS, first_prefix="", prefix=""):
    """Greedy word wrap to width; only a word longer than a row is cut."""
    lines = []
    lead = first_prefix  # what the row being filled starts with
    words = []  # its words so far
    size = len(lead)
    for word in text.split():
        while word:
            need = len(word) + (1 if words else 0)
            if size + need <= width:
                words.append(word)
                size += need
                word = ""
            elif words:
                lines.append(lead + " ".join(words))
                words.clear()
                lead = prefix
                size = len(lead)
            else:  # longer than a row: cut
                room = max(1, width - size)
                lines.append(lead + word[:room])
                word = word[room:]
                lead = prefix
                size = len(lead)
    if words:
        lines.append(lead + " ".join(words))
    return lines


def sentences(text):
    """text split after ". ", "! " or "? " where a capital or a digit follows (so "e.g. a"
    stays one sentence)."""
    found = []
    start = 0
    for i in range(1, len(text) - 1):
        if text[i] == " " and text[i - 1] in ".!?":
            nxt = text[i + 1]
            if "A" <= nxt <= "Z" or "0" <= nxt <= "9":
                found.append(text[start:i])
                start = i + 1
    found.append(text[start:])
    return found


def blocks(text, first_prefix="", prefix=""):
    """One block of rows per sentence of text; first_prefix starts the first row of the
    first sentence, prefix every other row (an item's bullet and its indent)."""
    out = []
    lead = first_prefix
    for sentence in sentences(text):
        rows = wrap(sentence, COLUMNS, lead, prefix)
        if rows:
            out.append(rows)
        lead = prefix
    return out


def paginate(block_list, rows_per_page=BODY_ROWS, first_rows=None):
    """Pages (lists of rows) from blocks (lists of rows that belong together: a sentence, a
    heading with its first item). The first page has first_rows rows (the screen drew
    something above them), every other rows_per_page. A page breaks only between blocks; a
    block longer than a page starts a page and each page it fills ends with a CONTINUED row.
    There is always at least one page."""
    room = rows_per_page if first_rows is None else first_rows
    pages = []
    page = []
    for block in block_list:
        if len(page) + len(block) <= room:
            page.extend(block)
            continue
        if page or room < rows_per_page:
            pages.append(page)
            page = []
            room = rows_per_page
        start = 0
        while len(block) - start > room:
            pages.append(block[start : start + room - 1] + [CONTINUED])
            start += room - 1
        page = block[start:]
    if page or not pages:
        pages.append(page)
    return pages

"""The firmware's 5x7 font: the drawing below is its source; `python -m simulator.fontgen`
writes firmware/core/font.py from it (tests/test_draw.py checks the two agree).

Every glyph was drawn for AlgoDose on a 5 x 7 grid (the classic character-LCD size, readable
at reading distance; the screens draw the values read at arm's length in large digits), so
the font carries the repository's own terms and no third-party licence. One glyph per
"== name" block: a printable ASCII character (space is "space"), or one of the symbols the
screens use, which take the control code points 1-7 (SYMBOLS). MISSING stands in for any
code point without a glyph.
"""

import sys

from simulator import FIRMWARE_DIR

FONT_PY = FIRMWARE_DIR / "core" / "font.py"
GLYPH_W = 5
GLYPH_H = 7
CODES = 128  # code points 0-127 in the table; anything above draws MISSING
SYMBOLS = ("UP", "DOWN", "LEFT", "RIGHT", "CHECK", "BOX", "TICKED")  # code points 1..7

DRAWING = r"""
== space
.....
.....
.....
.....
.....
.....
.....
== !
..#..
..#..
..#..
..#..
..#..
.....
..#..
== "
.#.#.
.#.#.
.#.#.
.....
.....
.....
.....
== #
.#.#.
.#.#.
#####
.#.#.
#####
.#.#.
.#.#.
== $
..#..
.####
#.#..
.###.
..#.#
####.
..#..
== %
##...
##..#
...#.
..#..
.#...
#..##
...##
== &
.##..
#..#.
#.#..
.#...
#.#.#
#..#.
.##.#
== '
..#..
..#..
.#...
.....
.....
.....
.....
== (
...#.
..#..
.#...
.#...
.#...
..#..
...#.
== )
.#...
..#..
...#.
...#.
...#.
..#..
.#...
== *
.....
..#..
#.#.#
.###.
#.#.#
..#..
.....
== +
.....
..#..
..#..
#####
..#..
..#..
.....
== ,
.....
.....
.....
.....
.##..
..#..
.#...
== -
.....
.....
.....
#####
.....
.....
.....
== .
.....
.....
.....
.....
.....
.##..
.##..
== /
.....
....#
...#.
..#..
.#...
#....
.....
== 0
.###.
#...#
#..##
#.#.#
##..#
#...#
.###.
== 1
..#..
.##..
..#..
..#..
..#..
..#..
.###.
== 2
.###.
#...#
....#
...#.
..#..
.#...
#####
== 3
#####
...#.
..#..
...#.
....#
#...#
.###.
== 4
...#.
..##.
.#.#.
#..#.
#####
...#.
...#.
== 5
#####
#....
####.
....#
....#
#...#
.###.
== 6
..##.
.#...
#....
####.
#...#
#...#
.###.
== 7
#####
....#
...#.
..#..
.#...
.#...
.#...
== 8
.###.
#...#
#...#
.###.
#...#
#...#
.###.
== 9
.###.
#...#
#...#
.####
....#
...#.
.##..
== :
.....
.##..
.##..
.....
.##..
.##..
.....
== ;
.....
.##..
.##..
.....
.##..
..#..
.#...
== <
...#.
..#..
.#...
#....
.#...
..#..
...#.
== =
.....
.....
#####
.....
#####
.....
.....
== >
.#...
..#..
...#.
....#
...#.
..#..
.#...
== ?
.###.
#...#
....#
...#.
..#..
.....
..#..
== @
.###.
#...#
....#
.##.#
#.#.#
#.#.#
.###.
== A
.###.
#...#
#...#
#####
#...#
#...#
#...#
== B
####.
#...#
#...#
####.
#...#
#...#
####.
== C
.###.
#...#
#....
#....
#....
#...#
.###.
== D
###..
#..#.
#...#
#...#
#...#
#..#.
###..
== E
#####
#....
#....
####.
#....
#....
#####
== F
#####
#....
#....
####.
#....
#....
#....
== G
.###.
#...#
#....
#.###
#...#
#...#
.####
== H
#...#
#...#
#...#
#####
#...#
#...#
#...#
== I
.###.
..#..
..#..
..#..
..#..
..#..
.###.
== J
..###
...#.
...#.
...#.
...#.
#..#.
.##..
== K
#...#
#..#.
#.#..
##...
#.#..
#..#.
#...#
== L
#....
#....
#....
#....
#....
#....
#####
== M
#...#
##.##
#.#.#
#.#.#
#...#
#...#
#...#
== N
#...#
#...#
##..#
#.#.#
#..##
#...#
#...#
== O
.###.
#...#
#...#
#...#
#...#
#...#
.###.
== P
####.
#...#
#...#
####.
#....
#....
#....
== Q
.###.
#...#
#...#
#...#
#.#.#
#..#.
.##.#
== R
####.
#...#
#...#
####.
#.#..
#..#.
#...#
== S
.####
#....
#....
.###.
....#
....#
####.
== T
#####
..#..
..#..
..#..
..#..
..#..
..#..
== U
#...#
#...#
#...#
#...#
#...#
#...#
.###.
== V
#...#
#...#
#...#
#...#
#...#
.#.#.
..#..
== W
#...#
#...#
#...#
#.#.#
#.#.#
#.#.#
.#.#.
== X
#...#
#...#
.#.#.
..#..
.#.#.
#...#
#...#
== Y
#...#
#...#
#...#
.#.#.
..#..
..#..
..#..
== Z
#####
....#
...#.
..#..
.#...
#....
#####
== [
.###.
.#...
.#...
.#...
.#...
.#...
.###.
== \
.....
#....
.#...
..#..
...#.
....#
.....
== ]
.###.
...#.
...#.
...#.
...#.
...#.
.###.
== ^
..#..
.#.#.
#...#
.....
.....
.....
.....
== _
.....
.....
.....
.....
.....
.....
#####
== `
.#...
..#..
...#.
.....
.....
.....
.....
== a
.....
.....
.###.
....#
.####
#...#
.####
== b
#....
#....
#.##.
##..#
#...#
#...#
####.
== c
.....
.....
.###.
#....
#....
#...#
.###.
== d
....#
....#
.##.#
#..##
#...#
#...#
.####
== e
.....
.....
.###.
#...#
#####
#....
.###.
== f
..##.
.#..#
.#...
###..
.#...
.#...
.#...
== g
.....
.....
.####
#...#
.####
....#
.###.
== h
#....
#....
#.##.
##..#
#...#
#...#
#...#
== i
..#..
.....
.##..
..#..
..#..
..#..
.###.
== j
...#.
.....
..##.
...#.
...#.
#..#.
.##..
== k
#....
#....
#..#.
#.#..
##...
#.#..
#..#.
== l
.##..
..#..
..#..
..#..
..#..
..#..
.###.
== m
.....
.....
##.#.
#.#.#
#.#.#
#...#
#...#
== n
.....
.....
#.##.
##..#
#...#
#...#
#...#
== o
.....
.....
.###.
#...#
#...#
#...#
.###.
== p
.....
.....
####.
#...#
####.
#....
#....
== q
.....
.....
.####
#...#
.####
....#
....#
== r
.....
.....
#.##.
##..#
#....
#....
#....
== s
.....
.....
.####
#....
.###.
....#
####.
== t
.#...
.#...
###..
.#...
.#...
.#..#
..##.
== u
.....
.....
#...#
#...#
#...#
#..##
.##.#
== v
.....
.....
#...#
#...#
#...#
.#.#.
..#..
== w
.....
.....
#...#
#...#
#.#.#
#.#.#
.#.#.
== x
.....
.....
#...#
.#.#.
..#..
.#.#.
#...#
== y
.....
.....
#...#
#...#
.####
....#
.###.
== z
.....
.....
#####
...#.
..#..
.#...
#####
== {
...#.
..#..
..#..
.#...
..#..
..#..
...#.
== |
..#..
..#..
..#..
..#..
..#..
..#..
..#..
== }
.#...
..#..
..#..
...#.
..#..
..#..
.#...
== ~
.....
.....
.#...
#.#.#
...#.
.....
.....
== UP
.....
.....
..#..
.###.
#####
.....
.....
== DOWN
.....
.....
#####
.###.
..#..
.....
.....
== LEFT
.....
..#..
.#...
#####
.#...
..#..
.....
== RIGHT
.....
..#..
...#.
#####
...#.
..#..
.....
== CHECK
.....
....#
...#.
#.#..
.#...
.....
.....
== BOX
.....
#####
#...#
#...#
#...#
#####
.....
== TICKED
.....
#####
#####
#####
#####
#####
.....
== MISSING
#####
#...#
#...#
#...#
#...#
#...#
#####
"""


def glyphs(drawing=DRAWING):
    """{name: 7 rows of 5 characters, '#' lit}, in drawing order."""
    found = {}
    lines = [line for line in drawing.strip("\n").split("\n")]
    for start in range(0, len(lines), GLYPH_H + 1):
        name = lines[start][3:]
        rows = lines[start + 1 : start + 1 + GLYPH_H]
        if not lines[start].startswith("== ") or name in found:
            raise ValueError("glyph header expected at line %d" % (start + 1))
        if len(rows) != GLYPH_H or any(len(r) != GLYPH_W or set(r) - set(".#") for r in rows):
            raise ValueError("glyph %s: %d rows of %d from . and #" % (name, GLYPH_H, GLYPH_W))
        found[name] = rows
    return found


def code_of(name):
    if name == "space":
        return 32
    if name in SYMBOLS:
        return SYMBOLS.index(name) + 1
    if len(name) == 1 and 33 <= ord(name) <= 126:
        return ord(name)
    return None


def columns(rows):
    """5 bytes, one per column, bit 0 at the top: the SSD1306's MONO_VLSB layout."""
    return bytes(sum(1 << y for y in range(GLYPH_H) if rows[y][x] == "#") for x in range(GLYPH_W))


def table(drawing=DRAWING):
    found = glyphs(drawing)
    missing = columns(found["MISSING"])
    out = [missing] * CODES
    for name, rows in found.items():
        code = code_of(name)
        if code is None and name != "MISSING":
            raise ValueError("glyph %s: not a printable ASCII character or a symbol" % name)
        if code is not None:
            out[code] = columns(rows)
    return b"".join(out)


def font_source(drawing=DRAWING):
    data = table(drawing)
    per_line = 4  # glyphs per source line (ruff: 99 columns)
    chunks = []
    for start in range(0, len(data), GLYPH_W * per_line):
        part = data[start : start + GLYPH_W * per_line]
        chunks.append('    b"' + "".join("\\x%02x" % b for b in part) + '"')
    symbols = "\n".join(
        '%s = "\\x%02x"' % (name, number + 1) for number, name in enumerate(SYMBOLS)
    )
    return FONT_TEMPLATE % (CODES, symbols, "\n".join(chunks))


FONT_TEMPLATE = """\
# The firmware's own font: 5x7 glyphs in 6x8 cells (21 columns x 8 rows on the 128x64 OLED).
# Drawn for AlgoDose (the repository's own terms, no third-party licence); GENERATED by
# `python -m simulator.fontgen` from the drawing in simulator/fontgen.py: edit the drawing,
# not this file. GLYPHS holds 5 column bytes per code point 0-127, bit 0 at the top (the
# SSD1306's MONO_VLSB layout), so a glyph is a 5x8 MONO_VLSB image; code points 1-7 are
# the symbols below, anything without a glyph draws a box.
from micropython import const

CODES = const(%d)

%s

GLYPHS = (
%s
)
"""


def main(argv):
    source = font_source()
    if "--check" in argv:
        same = FONT_PY.read_text() == source
        print(
            "font.py is up to date" if same else "font.py differs: run python -m simulator.fontgen"
        )
        return 0 if same else 1
    FONT_PY.write_text(source)
    print("wrote %s (%d glyphs)" % (FONT_PY, len(glyphs())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

# Runs on micropython: time and heap per full-screen redraw of the bedside screens, and two
# ways of putting text on the screen (core.draw's blit from the font image, and plotting each
# glyph's vertical runs with fill_rect), beside framebuf's built-in C text as the floor.
# The recommendation comes as JSON on stdin; prints one JSON object.
import gc
import json
import sys
import time

import framebuf

from core import draw, font, ui

ROUNDS = 50
buf = bytearray(1024)
fb = framebuf.FrameBuffer(buf, 128, 64, framebuf.MONO_VLSB)
canvas = draw.Canvas(fb)
TEXT_ROWS = [
    "Sync with the laptop!",
    "to free space. No new",
    "visit until then; it",
    "is all kept. 0123456",
]
TEXT_ROWS = TEXT_ROWS + TEXT_ROWS  # 8 full rows of 21 characters: 168 glyphs
RESULT = json.loads(sys.stdin.read())  # a recommendation (simulator.samples)


def measurement():
    ui.measurement(canvas, 2453, "ramp", 1, 2, 3, "upper_trapezius", "R")


def recommendation():
    ui.recommendation(canvas, RESULT, 0)


def warnings_page():
    ui.recommendation(canvas, RESULT, 2)


def text_blit():
    fb.fill(0)
    for row in range(8):
        canvas.text(0, row * 8, TEXT_ROWS[row])
    canvas.items.clear()


_GLYPHS = font.GLYPHS


def _text_fill_rect(x, y, text):
    # Each glyph column's runs of lit rows, one fill_rect per run.
    for i in range(len(text)):
        base = ord(text[i]) * 5
        for c in range(5):
            column = _GLYPHS[base + c]
            row = 0
            while column:
                if column & 1:
                    start = row
                    while column & 1:
                        column >>= 1
                        row += 1
                    fb.fill_rect(x + c, y + start, 1, row - start, 1)
                else:
                    column >>= 1
                    row += 1
        x += 6


def text_fill_rect():
    fb.fill(0)
    for row in range(8):
        _text_fill_rect(0, row * 8, TEXT_ROWS[row])


def text_builtin():
    fb.fill(0)
    for row in range(8):
        fb.text(TEXT_ROWS[row], 0, row * 8)


def measure(draw_once):
    draw_once()  # warm up
    gc.collect()
    start = time.ticks_us()
    for _ in range(ROUNDS):
        draw_once()
    us = time.ticks_diff(time.ticks_us(), start) / ROUNDS
    gc.collect()
    gc.disable()  # no collection inside the window: the delta is every byte allocated
    before = gc.mem_alloc()
    draw_once()
    used = gc.mem_alloc() - before
    gc.enable()
    return {"ms": us / 1000, "bytes": used}


out = {}
for name, fn in (
    ("measurement", measurement),
    ("recommendation", recommendation),
    ("warnings_page", warnings_page),
    ("text_blit", text_blit),
    ("text_fill_rect", text_fill_rect),
    ("text_builtin", text_builtin),
):
    out[name] = measure(fn)
print(json.dumps(out))

"""simulator.display: frame buffer to PNG and back, to the terminal, and a contact sheet."""

import pytest
from PIL import Image
from screenlib import EXAMPLES, draw_example

from simulator import display


def one_pixel(x, y):
    buf = bytearray(display.BUFFER_BYTES)
    buf[(y >> 3) * 128 + x] |= 1 << (y & 7)
    return bytes(buf)


@pytest.mark.parametrize("example", EXAMPLES[:6], ids=[e[0] for e in EXAMPLES[:6]])
def test_png_reads_back_to_the_same_bytes(example, tmp_path):
    buf, _canvas = draw_example(*example)
    path = display.save_png(buf, tmp_path / "screen.png")
    assert display.read_png(path) == buf


def test_png_has_the_oled_look():
    image = display.to_image(one_pixel(3, 2))
    assert image.size == (512, 256)
    assert image.getpixel((12, 8)) == display.LIT  # the pixel's cell, top-left
    assert image.getpixel((14, 10)) == display.LIT
    assert image.getpixel((15, 11)) == display.BACKGROUND  # the dark line between pixels
    assert image.getpixel((0, 0)) == display.BACKGROUND


def test_a_wrong_size_is_one_clear_error():
    with pytest.raises(ValueError, match="1024 bytes, not 10"):
        display.to_image(bytes(10))
    with pytest.raises(ValueError, match="512x256"):
        display.from_image(Image.new("RGB", (10, 10)))


def test_terminal_full_size_and_compact():
    full = display.to_terminal(one_pixel(0, 1)).splitlines()
    assert len(full) == 32 + 2 and all(len(line) == 128 + 2 for line in full)
    assert full[1][1] == "▄"  # rows 0 and 1 share a character: bottom half lit
    compact = display.to_terminal(one_pixel(1, 1), compact=True).splitlines()
    assert len(compact) == 32 + 2 and all(len(line) == 64 + 2 for line in compact)
    assert compact[1][1] == "▗"  # bottom-right quadrant


def test_readable_shows_symbols_as_unicode():
    assert display.readable("\x01\x02 ok \x05") == "▲▼ ok ✓"


def test_contact_sheet_holds_every_screen(tmp_path):
    screens = [(name, draw_example(name, f, a, k)[0]) for name, f, a, k in EXAMPLES[:7]]
    path = display.contact_sheet(screens, tmp_path / "sheet.png", columns=3)
    with Image.open(path) as image:
        assert image.size == (8 + 3 * (256 + 8), 8 + 3 * (128 + 14 + 8))
        first = image.crop((8, 8, 8 + 256, 8 + 128))
        assert display.from_image(first, scale=2) == screens[0][1]

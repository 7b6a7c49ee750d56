"""The 128x64 OLED on the desktop: a MONO_VLSB frame buffer (the bytes the firmware drew, as
the SSD1306 holds them) to a PNG with the panel's look, to the terminal in Unicode blocks,
and several screens to one contact sheet. PNGs read back to the same bytes, so golden
images in tests/golden/ compare pixel for pixel.
"""

from pathlib import Path

from PIL import Image, ImageDraw

WIDTH = 128
HEIGHT = 64
BUFFER_BYTES = WIDTH * HEIGHT // 8
SCALE = 4  # PNG pixels per OLED pixel; the last row and column of each cell stay dark
BACKGROUND = (4, 6, 10)
LIT = (150, 215, 255)  # the light blue of a common SSD1306 panel
# The firmware's symbol code points (core.font) as Unicode, for text shown on a terminal.
SYMBOLS = {
    "\x01": "▲",
    "\x02": "▼",
    "\x03": "←",
    "\x04": "→",
    "\x05": "✓",
    "\x06": "☐",
    "\x07": "■",
}


def lit(buffer, x, y):
    """Pixel x, y of a MONO_VLSB buffer: one byte per column of 8 rows, bit 0 on top."""
    return (buffer[(y >> 3) * WIDTH + x] >> (y & 7)) & 1


def _check(buffer):
    if len(buffer) != BUFFER_BYTES:
        raise ValueError(
            "a 128x64 MONO_VLSB buffer has %d bytes, not %d" % (BUFFER_BYTES, len(buffer))
        )


def to_image(buffer, scale=SCALE):
    """The OLED's look: lit pixels light blue on black, a dark line between pixels."""
    _check(buffer)
    image = Image.new("RGB", (WIDTH * scale, HEIGHT * scale), BACKGROUND)
    draw = ImageDraw.Draw(image)
    dot = max(1, scale - 1)
    for y in range(HEIGHT):
        for x in range(WIDTH):
            if lit(buffer, x, y):
                draw.rectangle(
                    [x * scale, y * scale, x * scale + dot - 1, y * scale + dot - 1], LIT
                )
    return image


def save_png(buffer, path, scale=SCALE):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_image(buffer, scale).save(path)
    return path


def from_image(image, scale=SCALE):
    """The MONO_VLSB buffer a to_image() picture shows (each cell's top-left pixel read)."""
    if image.size != (WIDTH * scale, HEIGHT * scale):
        raise ValueError(
            "expected a %dx%d image, got %dx%d" % (WIDTH * scale, HEIGHT * scale, *image.size)
        )
    rgb = image.convert("RGB")
    buffer = bytearray(BUFFER_BYTES)
    for y in range(HEIGHT):
        for x in range(WIDTH):
            if rgb.getpixel((x * scale, y * scale)) != BACKGROUND:
                buffer[(y >> 3) * WIDTH + x] |= 1 << (y & 7)
    return bytes(buffer)


def read_png(path, scale=SCALE):
    with Image.open(path) as image:
        return from_image(image, scale)


def differences(a, b):
    """[(x, y), ...] where two buffers differ."""
    return [(x, y) for y in range(HEIGHT) for x in range(WIDTH) if lit(a, x, y) != lit(b, x, y)]


_QUADRANTS = " ▘▝▀▖▌▞▛▗▚▐▜▄▙▟█"  # index: 1 top-left, 2 top-right, 4 bottom-left, 8 bottom-right


def to_terminal(buffer, compact=False):
    """The screen as text: full size in half blocks (128 columns x 32 rows), or compact in
    quadrant blocks (64 x 32), in a frame."""
    _check(buffer)
    rows = []
    if compact:
        for y in range(0, HEIGHT, 2):
            line = ""
            for x in range(0, WIDTH, 2):
                index = lit(buffer, x, y) | lit(buffer, x + 1, y) << 1
                index |= lit(buffer, x, y + 1) << 2 | lit(buffer, x + 1, y + 1) << 3
                line += _QUADRANTS[index]
            rows.append(line)
    else:
        for y in range(0, HEIGHT, 2):
            line = ""
            for x in range(WIDTH):
                line += " ▀▄█"[lit(buffer, x, y) | lit(buffer, x, y + 1) << 1]
            rows.append(line)
    width = len(rows[0])
    return "\n".join(
        ["┌" + "─" * width + "┐"] + ["│" + r + "│" for r in rows] + ["└" + "─" * width + "┘"]
    )


def readable(text):
    """Firmware text with its symbol code points as Unicode."""
    return "".join(SYMBOLS.get(ch, ch) for ch in text)


def contact_sheet(screens, path, columns=3, scale=2):
    """One PNG of several screens, each with its caption: screens is [(caption, buffer)]."""
    margin = 8
    caption_h = 14
    cell_w = WIDTH * scale
    cell_h = HEIGHT * scale + caption_h
    count = max(1, len(screens))
    rows = (count + columns - 1) // columns
    sheet = Image.new(
        "RGB",
        (margin + columns * (cell_w + margin), margin + rows * (cell_h + margin)),
        (24, 24, 28),
    )
    draw = ImageDraw.Draw(sheet)
    for index, (caption, buffer) in enumerate(screens):
        x = margin + (index % columns) * (cell_w + margin)
        y = margin + (index // columns) * (cell_h + margin)
        sheet.paste(to_image(buffer, scale), (x, y))
        draw.text((x, y + HEIGHT * scale + 2), caption, fill=(210, 210, 210))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path

"""CPython stand-in for MicroPython's `framebuf`: the subset the firmware draws with, on
MONO_VLSB buffers (the SSD1306's layout: one byte is a column of 8 pixels, bit 0 on top).

Written from the behaviour of MicroPython's extmod/modframebuf.c (MIT licence) and checked
against the `micropython` unix port byte for byte (tests/test_framebuf.py): the same
argument checks in the constructor, the same clipping in fill_rect / hline / vline / rect,
the same Bresenham steps in line, the same bounds test and colour key (compared as an
unsigned 32-bit value) in blit, the same early returns in scroll. A colour is "on" when it
is not 0. Not here, because the firmware does not use them: the other pixel formats,
ellipse, poly, and text(), whose built-in font the firmware replaces with core.font.
"""

MONO_VLSB = 0
MVLSB = 0
RGB565 = 1
GS4_HMSB = 2
MONO_HLSB = 3
MONO_HMSB = 4
GS2_HMSB = 5
GS8 = 6

_LIMIT = 0xFFFF  # width, height and stride are 16-bit fields in the C object


class FrameBuffer:
    def __init__(self, buffer, width, height, format, stride=None):
        if stride is None:
            stride = width
        for value in (width, height, format, stride):
            if type(value) is not int:
                raise TypeError("can't convert %s to int" % type(value).__name__)
        if width < 1 or height < 1 or width > _LIMIT or height > _LIMIT:
            raise ValueError()
        if stride > _LIMIT or stride < width:
            raise ValueError()
        if format != MONO_VLSB:
            if format in (RGB565, GS4_HMSB, MONO_HLSB, MONO_HMSB, GS2_HMSB, GS8):
                raise NotImplementedError("the CPython framebuf shim has MONO_VLSB only")
            raise ValueError("invalid format")
        view = memoryview(buffer)
        if view.readonly:
            raise TypeError("object with buffer protocol required")
        if ((height + 7) & ~7) * stride // 8 > view.nbytes:
            raise ValueError()
        self._buf = buffer
        self.width = width
        self.height = height
        self.stride = stride

    # -- pixel access (no bounds check, as the C helpers) -------------------------------

    def _get(self, x, y):
        return (self._buf[(y >> 3) * self.stride + x] >> (y & 7)) & 1

    def _set(self, x, y, col):
        i = (y >> 3) * self.stride + x
        bit = 1 << (y & 7)
        if col:
            self._buf[i] |= bit
        else:
            self._buf[i] &= ~bit & 0xFF

    def _fill(self, x, y, w, h, col):
        # Already clipped: every byte row (page) the rows y .. y+h-1 touch gets one mask.
        buf = self._buf
        stride = self.stride
        end = y + h
        while y < end:
            page = y >> 3
            stop = min(end, (page + 1) << 3)
            mask = ((1 << (stop - y)) - 1) << (y & 7)
            start = page * stride + x
            if col:
                for i in range(start, start + w):
                    buf[i] |= mask
            else:
                keep = ~mask & 0xFF
                for i in range(start, start + w):
                    buf[i] &= keep
            y = stop

    def _fill_rect(self, x, y, w, h, col):
        if h < 1 or w < 1 or x + w <= 0 or y + h <= 0 or y >= self.height or x >= self.width:
            return
        xend = min(self.width, x + w)
        yend = min(self.height, y + h)
        x = max(x, 0)
        y = max(y, 0)
        self._fill(x, y, xend - x, yend - y, col)

    # -- the API ------------------------------------------------------------------------

    def fill(self, c):
        self._fill(0, 0, self.width, self.height, c)

    def fill_rect(self, x, y, w, h, c):
        self._fill_rect(x, y, w, h, c)

    def pixel(self, x, y, c=None):
        if 0 <= x < self.width and 0 <= y < self.height:
            if c is None:
                return self._get(x, y)
            self._set(x, y, c)
        return None

    def hline(self, x, y, w, c):
        self._fill_rect(x, y, w, 1, c)

    def vline(self, x, y, h, c):
        self._fill_rect(x, y, 1, h, c)

    def rect(self, x, y, w, h, c, f=False):
        if f:
            self._fill_rect(x, y, w, h, c)
            return
        self._fill_rect(x, y, w, 1, c)
        self._fill_rect(x, y + h - 1, w, 1, c)
        self._fill_rect(x, y, 1, h, c)
        self._fill_rect(x + w - 1, y, 1, h, c)

    def line(self, x1, y1, x2, y2, c):
        dx = x2 - x1
        if dx > 0:
            sx = 1
        else:
            dx = -dx
            sx = -1
        dy = y2 - y1
        if dy > 0:
            sy = 1
        else:
            dy = -dy
            sy = -1
        steep = dy > dx
        if steep:
            x1, y1 = y1, x1
            dx, dy = dy, dx
            sx, sy = sy, sx
        e = 2 * dy - dx
        for _ in range(dx):
            if steep:
                if 0 <= y1 < self.width and 0 <= x1 < self.height:
                    self._set(y1, x1, c)
            elif 0 <= x1 < self.width and 0 <= y1 < self.height:
                self._set(x1, y1, c)
            while e >= 0:
                y1 += sy
                e -= 2 * dx
            x1 += sx
            e += 2 * dy
        if 0 <= x2 < self.width and 0 <= y2 < self.height:
            self._set(x2, y2, c)

    def blit(self, fbuf, x, y, key=-1, palette=None):
        source = fbuf if isinstance(fbuf, FrameBuffer) else FrameBuffer(*fbuf)
        if x >= self.width or y >= self.height or -x >= source.width or -y >= source.height:
            return
        key &= 0xFFFFFFFF  # the C code compares the colour as uint32_t
        x0 = max(0, x)
        y0 = max(0, y)
        x1 = max(0, -x)
        y1 = max(0, -y)
        x0end = min(self.width, x + source.width)
        y0end = min(self.height, y + source.height)
        # The C loop, pixel by pixel, with the MONO_VLSB addressing written out (speed).
        sbuf, sstride = source._buf, source.stride
        dbuf, dstride = self._buf, self.stride
        colours = None if palette is None else (palette._get(0, 0), palette._get(1, 0))
        count = x0end - x0
        while y0 < y0end:
            src = (y1 >> 3) * sstride + x1
            shift = y1 & 7
            dst = (y0 >> 3) * dstride + x0
            bit = 1 << (y0 & 7)
            clear = ~bit & 0xFF
            for i in range(count):
                col = (sbuf[src + i] >> shift) & 1
                if colours is not None:
                    col = colours[col]
                if col != key:
                    if col:
                        dbuf[dst + i] |= bit
                    else:
                        dbuf[dst + i] &= clear
            y0 += 1
            y1 += 1

    def scroll(self, xstep, ystep):
        if xstep < 0:
            sx, xend, dx = 0, self.width + xstep, 1
            if xend <= 0:
                return
        else:
            sx, xend, dx = self.width - 1, xstep - 1, -1
            if xend >= sx:
                return
        if ystep < 0:
            y, yend, dy = 0, self.height + ystep, 1
            if yend <= 0:
                return
        else:
            y, yend, dy = self.height - 1, ystep - 1, -1
            if yend >= y:
                return
        while y != yend:
            x = sx
            while x != xend:
                self._set(x, y, self._get(x - xstep, y - ystep))
                x += dx
            y += dy

    def text(self, s, x, y, c=1):
        raise NotImplementedError(
            "framebuf.text(): the firmware draws text with core.font (core.draw.Canvas.text)"
        )

    def ellipse(self, *args):
        raise NotImplementedError("framebuf.ellipse is not in the CPython shim")

    def poly(self, *args):
        raise NotImplementedError("framebuf.poly is not in the CPython shim")

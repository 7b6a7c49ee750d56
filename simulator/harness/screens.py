# Screens (core.ui) and raw framebuf drawing from JSON requests, one per input line; one
# output line per request: the frame buffer in hex, a space, then canonical JSON of the text
# view ({"rows", "overflow", "page", "pages"}; for raw drawing only the hex). The same file
# runs on CPython (framebuf from the simulator's shim) and on micropython (its built-in
# framebuf), so the two outputs compare byte for byte.
#
# A screen request: {"screen": "measurement", "args": [...], "kwargs": {...}}, drawn on a
# 128x64 MONO_VLSB buffer. A raw request: {"fb": [w, h, stride], "src": [w, h, hex],
# "ops": [["fill_rect", x, y, w, h, c], ["blit", "src", x, y, key, "palette"], ...]}, on a
# zeroed buffer; "src" in a blit names the source buffer, "palette" a 2x1 palette mapping
# 0 -> 1 and 1 -> 0. "buf_len" gives the buffer a size of its own: a constructor that
# refuses it prints "error ValueError".
import binascii
import json
import sys

import framebuf

from core import canonjson, ui


def _raw(request):
    width, height, stride = request["fb"]
    size = request.get("buf_len", ((height + 7) // 8) * stride)
    buf = bytearray(size)
    try:
        fb = framebuf.FrameBuffer(buf, width, height, framebuf.MONO_VLSB, stride)
    except ValueError:
        return "error ValueError"
    names = {"palette": framebuf.FrameBuffer(bytearray(b"\x01\x00"), 2, 1, framebuf.MONO_VLSB)}
    if request.get("src"):
        src_w, src_h, data = request["src"]
        names["src"] = framebuf.FrameBuffer(
            bytearray(binascii.unhexlify(data)), src_w, src_h, framebuf.MONO_VLSB
        )
    for op in request["ops"]:
        args = [names.get(a, a) if type(a) is str else a for a in op[1:]]
        getattr(fb, op[0])(*args)
    return binascii.hexlify(buf).decode()


def _screen(request, fb, buf):
    screen = getattr(ui, request["screen"])
    canvas = screen(fb, *request.get("args", ()), **request.get("kwargs", {}))
    view = {
        "rows": canvas.rows(),
        "overflow": canvas.overflow,
        "page": canvas.page,
        "pages": canvas.pages,
    }
    return binascii.hexlify(buf).decode() + " " + canonjson.dumps(view)


def main(argv, stdin, stdout, stderr):
    buf = bytearray(128 * 64 // 8)
    fb = framebuf.FrameBuffer(buf, 128, 64, framebuf.MONO_VLSB)
    for line in stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        if "ops" in request:
            stdout.write(_raw(request) + "\n")
        else:
            stdout.write(_screen(request, fb, buf) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], sys.stdin, sys.stdout, sys.stderr))

"""The CPython framebuf shim against MicroPython's own framebuf (the `micropython` unix port):
the same operations on the same MONO_VLSB buffers give the same bytes, at the clipping edges
and over random operation sequences, and the constructor refuses the same buffers."""

import json
import random

import pytest

from simulator.runtime import run_harness

HEAPSIZE = "512K"
RANDOM_REQUESTS = 300


def run(requests):
    stdin = "".join(json.dumps(r) + "\n" for r in requests)
    out = {}
    for runtime in ("cpython", "micropython"):
        code, stdout, stderr = run_harness("screens", stdin, runtime=runtime, heapsize=HEAPSIZE)
        assert code == 0, stderr
        out[runtime] = stdout.splitlines()
    assert len(out["cpython"]) == len(requests)
    return out


def assert_same(requests):
    out = run(requests)
    for i, (a, b) in enumerate(zip(out["cpython"], out["micropython"], strict=True)):
        assert a == b, "request %d differs: %s" % (i, json.dumps(requests[i]))
    return out["cpython"]


SRC = [7, 11, "7f41417f00ff0102030405060708"]  # a 7x11 source: two byte rows of 7 columns


def edge_requests():
    """Every clipping edge of every primitive, on a 128x64 and an odd-sized buffer."""
    requests = []
    for fb in ([128, 64, 128], [37, 21, 40]):
        w, h = fb[0], fb[1]
        ops = []
        for x, y, rw, rh in [
            (-5, 0, 5, 3),  # ends exactly at the left edge: nothing
            (-5, 0, 6, 3),  # one column in
            (w, 0, 3, 3),  # starts exactly at the right edge: nothing
            (w - 1, 0, 3, 3),  # one column in
            (0, -4, 3, 4),  # ends at the top edge
            (0, -4, 3, 5),
            (0, h, 3, 3),
            (0, h - 1, 3, 3),
            (2, 2, 0, 5),  # zero width
            (2, 2, 5, 0),
            (3, 3, -2, 4),  # negative width
            (-100, -100, 400, 400),  # covers everything
        ]:
            for name in ("fill_rect", "rect"):
                requests.append({"fb": fb, "ops": [[name, x, y, rw, rh, 1]]})
            requests.append({"fb": fb, "ops": [["fill", 1], ["fill_rect", x, y, rw, rh, 0]]})
            requests.append({"fb": fb, "ops": [["rect", x, y, rw, rh, 1, True]]})
            requests.append({"fb": fb, "ops": [["hline", x, y, rw, 1], ["vline", x, y, rh, 1]]})
            ops.append(["line", x, y, x + rw, y + rh, 1])
        requests.append({"fb": fb, "ops": ops})
        for x, y in [
            (-7, 0),
            (-6, 0),
            (w, 0),
            (w - 1, 0),
            (0, -11),
            (0, -10),
            (0, h),
            (0, h - 1),
            (-3, -4),
        ]:
            for key in (-1, 0, 1, 2, 2**32 + 1):  # the C code compares the key as uint32
                for background in (0, 1):
                    ops = [["fill", background], ["blit", "src", x, y, key]]
                    requests.append({"fb": fb, "src": SRC, "ops": ops})
            requests.append({"fb": fb, "src": SRC, "ops": [["blit", "src", x, y, 1, "palette"]]})
        for dx, dy in [
            (0, 0),
            (1, 0),
            (-1, 0),
            (0, 1),
            (0, -1),
            (w - 1, 0),
            (w, 0),
            (-w, 0),
            (0, h),
            (0, -h + 1),
            (3, -5),
        ]:
            ops = [["line", 0, 0, w - 1, h - 1, 1], ["rect", 2, 3, 9, 7, 1], ["scroll", dx, dy]]
            requests.append({"fb": fb, "ops": ops})
        requests.append(
            {
                "fb": fb,
                "ops": [
                    ["pixel", -1, 0, 1],
                    ["pixel", w - 1, h - 1, 1],
                    ["pixel", w, 0, 1],
                    ["pixel", 0, 0, 5],
                ],
            }
        )
    return requests


def test_clipping_edges_give_the_same_bytes():
    results = assert_same(edge_requests())
    assert len(set(results)) > 40  # the cases draw different things


def random_request(rng):
    w = rng.choice([128, rng.randint(1, 70)])
    h = rng.choice([64, rng.randint(1, 40)])
    stride = w + rng.choice([0, 0, 3])
    src_w, src_h = rng.randint(1, 20), rng.randint(1, 20)
    src_bytes = ((src_h + 7) // 8) * src_w
    src = [src_w, src_h, "".join("%02x" % rng.randrange(256) for _ in range(src_bytes))]
    ops = []

    def coordinate(limit):
        return rng.choice([rng.randint(-limit, 2 * limit), 0, limit, limit - 1, -1])

    for _ in range(rng.randint(1, 12)):
        kind = rng.randrange(9)
        colour = rng.choice([0, 1, 1, 7])
        if kind == 0:
            ops.append(
                ["fill_rect", coordinate(w), coordinate(h), coordinate(w), coordinate(h), colour]
            )
        elif kind == 1:
            ops.append(
                [
                    "rect",
                    coordinate(w),
                    coordinate(h),
                    coordinate(w),
                    coordinate(h),
                    colour,
                    rng.random() < 0.5,
                ]
            )
        elif kind == 2:
            ops.append(["hline", coordinate(w), coordinate(h), coordinate(w), colour])
        elif kind == 3:
            ops.append(["vline", coordinate(w), coordinate(h), coordinate(h), colour])
        elif kind == 4:
            ops.append(
                ["line", coordinate(w), coordinate(h), coordinate(w), coordinate(h), colour]
            )
        elif kind == 5:
            ops.append(["pixel", coordinate(w), coordinate(h), colour])
        elif kind == 6:
            op = ["blit", "src", coordinate(w), coordinate(h), rng.choice([-1, 0, 1, 3])]
            if rng.random() < 0.3:
                op.append("palette")
            ops.append(op)
        elif kind == 7:
            ops.append(["scroll", rng.randint(-w - 2, w + 2), rng.randint(-h - 2, h + 2)])
        else:
            ops.append(["fill", colour])
    return {"fb": [w, h, stride], "src": src, "ops": ops}


def test_random_operation_sequences_give_the_same_bytes():
    rng = random.Random(2026)
    assert_same([random_request(rng) for _ in range(RANDOM_REQUESTS)])


@pytest.mark.parametrize(
    ("fb", "buf_len", "refused"),
    [
        ([128, 64, 128], 1024, False),
        ([128, 64, 128], 1023, True),  # one byte short
        ([10, 9, 10], 20, False),  # 9 rows need two byte rows
        ([10, 9, 10], 19, True),
        ([10, 8, 12], 12, False),  # stride above width
        ([10, 8, 9], 20, True),  # stride below width
        ([0, 8, 0], 8, True),
        ([8, 0, 8], 8, True),
        ([65536, 1, 65536], 65536, True),
    ],
)
def test_the_constructor_refuses_the_same_buffers(fb, buf_len, refused):
    out = assert_same([{"fb": fb, "buf_len": buf_len, "ops": []}])
    assert (out[0] == "error ValueError") is refused

"""Golden images of the key screens, compared pixel for pixel with what the firmware draws now.

The PNGs in tests/golden/ are the OLED's look at 4x (simulator.display); each reads back to
the exact 128x64 frame buffer. When a screen changes on purpose, look at the new pictures and
update them: `make golden` (ALGODOSE_GOLDEN=update pytest tests/test_golden.py).
"""

import os
from pathlib import Path

import pytest
from screenlib import EXAMPLES, draw_example

from simulator import display

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("ALGODOSE_GOLDEN") == "update"
KEY_SCREENS = (
    "recommendation",
    "recommendation_warnings",
    "recommendation_no_dose",
    "measurement",
    "measurement_slower",
    "contraindications",
    "pairing",
    "pairing_open",
    "site_plan",
    "error_storage_full",
)
BY_NAME = {example[0]: example for example in EXAMPLES}


@pytest.mark.parametrize("name", KEY_SCREENS)
def test_key_screen_matches_its_golden_image(name, tmp_path):
    buf, _canvas = draw_example(*BY_NAME[name])
    path = GOLDEN_DIR / (name + ".png")
    if UPDATE:
        display.save_png(buf, path)
    if not path.exists():
        pytest.fail("no golden image %s: run `make golden` and look at it" % path.name)
    golden = display.read_png(path)
    differ = display.differences(golden, buf)
    if differ:
        actual = display.save_png(buf, tmp_path / (name + ".png"))
        pytest.fail(
            "%s: %d pixels differ from the golden image, first at %s; now drawn: %s; if the "
            "change is meant, run `make golden`" % (name, len(differ), differ[:5], actual)
        )


def test_a_one_pixel_change_is_caught():
    buf, _canvas = draw_example(*BY_NAME["pairing"])
    changed = bytearray(buf)
    changed[5 * 128 + 64] ^= 0x10  # pixel (64, 44)
    assert display.differences(display.read_png(GOLDEN_DIR / "pairing.png"), bytes(changed)) == [
        (64, 44)
    ]

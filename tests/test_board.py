"""firmware/board.py's crash count in the ESP32's RTC memory (main.py's crash-loop guard),
with a stand-in `machine` module: the one piece of the reference board's own logic that
runs without the board. What main.py does with the count: tests/test_unit.py."""

import importlib
import sys
import types

import pytest


class RTC:
    kept = b""  # the RTC memory: what a soft reset leaves, empty after a power-on

    def memory(self, data=None):
        if data is None:
            return RTC.kept
        RTC.kept = bytes(data)
        return None


@pytest.fixture
def board(monkeypatch):
    machine = types.ModuleType("machine")
    machine.RTC = RTC  # pyright: ignore[reportAttributeAccessIssue]
    monkeypatch.setitem(sys.modules, "machine", machine)
    monkeypatch.delitem(sys.modules, "board", raising=False)
    RTC.kept = b""
    yield importlib.import_module("board")
    sys.modules.pop("board", None)


def test_after_a_power_on_the_count_is_zero(board):
    assert board.crash_count() == 0


def test_the_count_is_kept_and_read_back(board):
    for count in (1, 2, 3, 0):
        board.set_crash_count(count)
        assert board.crash_count() == count


def test_a_count_beyond_a_byte_stays_at_the_top(board):
    board.set_crash_count(300)
    assert board.crash_count() == 255


@pytest.mark.parametrize(
    "kept",
    [b"AD\x03", b"AD\x03\xfd", b"XD\x03\xfc", b"AD\x03\xfc\x00", b"\x00\x00\x00\x00"],
)
def test_anything_else_in_the_rtc_memory_reads_as_no_crash(board, kept):
    RTC.kept = kept  # another owner's bytes, or a count whose check byte is wrong
    assert board.crash_count() == 0


def test_the_check_byte_is_the_count_inverted(board):
    RTC.kept = b"AD\x03\xfc"
    assert board.crash_count() == 3

"""The bedside visit (core.visit): whole visits on the rig, their screens' data and records."""

import pytest


@pytest.fixture(scope="module")
def whole(both_runtimes):
    return both_runtimes("visit_cases.whole_visit", heapsize="1M")


def test_a_whole_visit_goes_through_every_state(whole):
    assert whole["started"] is True
    assert whole["states"] == ["idle", "zero", "site_done", "site_done", "result", "done"]
    assert whole["end"] == "idle"

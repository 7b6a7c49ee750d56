"""Shared test setup: firmware importable on CPython, and both runtimes one call away.

simulator.runtime has the helpers: run_harness(name, stdin, runtime=...) runs the same
harness file on CPython and on micropython, run_both(code) one snippet on both, and
run_micropython anything else.
"""

import pytest

from simulator import use_firmware
from simulator.runtime import RUNTIMES

use_firmware()


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    return request.param

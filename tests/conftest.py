"""Shared test setup: firmware importable on CPython, and both runtimes one call away.

Use simulator.runtime.run_harness(name, stdin, runtime=...) to run the same harness file on
CPython and on micropython, and simulator.runtime.run_micropython for anything else.
"""

import pytest

from simulator import use_firmware
from simulator.runtime import run_harness

use_firmware()

RUNTIMES = ("cpython", "micropython")


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    return request.param


@pytest.fixture(scope="session")
def harness():
    return run_harness

"""Shared test setup: firmware importable on CPython, and both runtimes one call away.

simulator.runtime has the helpers: run_harness(name, stdin, runtime=...) runs the same
harness file on CPython and on micropython, and run_micropython anything else. Test cases
that must behave the same on both runtimes live as functions in tests/both/*.py; the
both_runtimes fixture below runs one on each and returns its result (docs/developing.md,
"Tests on both runtimes").
"""

import json
import sys
from pathlib import Path

import pytest

from simulator import use_firmware
from simulator.runtime import RUNTIMES, precompiled_dir, run_micropython

use_firmware()
BOTH_DIR = Path(__file__).resolve().parent / "both"
sys.path.insert(0, str(BOTH_DIR))

import runcase  # noqa: E402  (tests/both, on the path just above)


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    return request.param


def _first_difference(a, b):
    at = next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )
    return "first difference at character %d:\n  cpython:     %r\n  micropython: %r" % (
        at,
        a[max(0, at - 60) : at + 60],
        b[max(0, at - 60) : at + 60],
    )


@pytest.fixture(scope="session")
def both_runtimes():
    """both_runtimes("module.case", *args, heapsize="256K") runs the function `case` of
    tests/both/module.py on CPython (in process) and on micropython (as mpy-cross bytecode,
    in a heap of heapsize), asserts that both printed the same canonical JSON, byte for byte,
    and returns it parsed. Each case runs once per session; args are strings.
    A traceback from either runtime names the case's own file and line."""
    outputs = {}

    def run(name, *args, heapsize="256K"):
        key = (name, args, heapsize)
        if key not in outputs:
            module, case = name.split(".")
            cpython = runcase.output(module, case, args) + "\n"
            proc = run_micropython(
                module="runcase",
                args=[module, case, *args],
                heapsize=heapsize,
                extra_path=[precompiled_dir(BOTH_DIR)],
            )
            if proc.returncode != 0:
                pytest.fail("%s on micropython failed:\n%s%s" % (name, proc.stdout, proc.stderr))
            if proc.stdout != cpython:
                pytest.fail(
                    "%s: the runtimes disagree; %s"
                    % (name, _first_difference(cpython, proc.stdout))
                )
            outputs[key] = cpython
        return json.loads(outputs[key])  # a fresh copy: a test may change it

    return run


@pytest.fixture(scope="session")
def postgresql_server():
    """A real PostgreSQL server (Debian's binaries) for the whole session, on a free port of
    127.0.0.1 (tests/pgserver.py); skipped, with the reason, only where none is installed."""
    import pgserver

    try:
        server = pgserver.PostgresServer()
    except pgserver.Unavailable as e:
        pytest.skip(str(e))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postgresql_url(postgresql_server, request):
    """A postgresql:// URL of a new, empty database for this test alone."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    return postgresql_server.create_database(name)


@pytest.fixture
def pty_unit(tmp_path):
    """The virtual unit's USB serial port (simulator/pty_unit.py), started, and stopped
    after the test; skipped, with the reason, only where socat is not installed."""
    from simulator.pty_unit import PtyError, PtyUnit, socat_binary

    try:
        socat_binary()
    except PtyError as e:
        pytest.skip(str(e))
    with PtyUnit(tmp_path / "unit") as unit:
        yield unit

"""`make lint` stays green: ruff over the repo, pyright over firmware/ with the board's stubs."""

import subprocess
import sys
from pathlib import Path

import pytest

from simulator import REPO_DIR

BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "cmd",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["pyright", "-p", "pyrightconfig.json"],
    ],
    ids=["ruff-check", "ruff-format", "pyright-firmware"],
)
def test_lint(cmd):
    proc = subprocess.run(
        [str(BIN / cmd[0]), *cmd[1:]], cwd=REPO_DIR, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]

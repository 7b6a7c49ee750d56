"""`python -m simulator ...` as a user types it, in a subprocess."""

import subprocess
import sys

from simulator import REPO_DIR


def simulator(*args, stdin=""):
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO_DIR,
        timeout=120,
    )

"""`python -m simulator ...` as a user types it, in a subprocess."""

import subprocess
import sys

from simulator import REPO_DIR


def simulator(*args, stdin=""):
    """stdin: text, or bytes passed as they are (not UTF-8, say); stdout and stderr: text."""
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        input=stdin.encode() if isinstance(stdin, str) else stdin,
        capture_output=True,
        cwd=REPO_DIR,
        timeout=120,
    )
    out, err = (stream.decode("utf-8", "replace") for stream in (proc.stdout, proc.stderr))
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

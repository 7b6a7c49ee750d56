"""A real, throwaway PostgreSQL server for tests: Debian's own binaries (initdb, pg_ctl) on
a data directory in a temporary folder, listening on a free port of 127.0.0.1 only.

pytest-postgresql does the same but cannot start a server as root, which is how CI runs
here; this module runs the server as the `postgres` user when it is root (initdb refuses
root). The conftest fixtures `postgresql_server` and `postgresql_url` use it.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER = "algodose"  # the database superuser initdb creates; trust auth on loopback
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
# A test server needs no durability: a crash of the test run loses nothing that matters.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class Unavailable(RuntimeError):
    """No PostgreSQL server can run here (the reason says what to install)."""


def server_bindir():
    """The directory holding initdb and pg_ctl: on PATH, else Debian's
    /usr/lib/postgresql/<version>/bin (newest version), else None."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).resolve().parent
    versions = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    versions.sort(key=lambda p: int(Path(p).parent.parent.name))
    return Path(versions[-1]).parent if versions else None


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """start() initialises a cluster and starts it; url(dbname) names a database on it;
    create_database() makes an empty one; stop() stops the server and removes its files."""

    def __init__(self):
        bindir = server_bindir()
        if bindir is None:
            raise Unavailable(
                "no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql"
            )
        self.bindir = bindir
        self.run_as = None
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            try:
                self.run_as = pwd.getpwnam("postgres")
            except KeyError:
                raise Unavailable(
                    "running as root and there is no 'postgres' user to run the server as: "
                    "apt-get install postgresql creates it"
                ) from None
        self.port = None
        self.home = None

    def _command(self, name, *args):
        cmd = [str(self.bindir / name), *args]
        if self.run_as is not None:
            cmd = ["runuser", "-u", self.run_as.pw_name, "--", *cmd]
        return cmd

    def _run(self, name, *args, timeout_s):
        proc = subprocess.run(
            self._command(name, *args), capture_output=True, text=True, timeout=timeout_s
        )
        if proc.returncode != 0:
            log = self.home / "server.log"
            detail = log.read_text() if log.exists() else ""
            output = proc.stdout + proc.stderr + detail
            raise RuntimeError("%s failed (exit %d):\n%s" % (name, proc.returncode, output))
        return proc

    def start(self):
        # Directly under the system temp dir: the postgres user must reach it, and pytest's
        # own temp dirs are private to root.
        self.home = Path(tempfile.mkdtemp(prefix="algodose-pg-"))
        if self.run_as is not None:
            os.chown(self.home, self.run_as.pw_uid, self.run_as.pw_gid)
        data = self.home / "data"
        self._run(
            "initdb",
            "-D",
            str(data),
            "-U",
            USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
            timeout_s=START_TIMEOUT_S,
        )
        for _attempt in range(3):  # another process may take the free port before we do
            self.port = free_port()
            options = "-p %d -k %s -c listen_addresses=127.0.0.1" % (self.port, self.home)
            options += "".join(" -c " + s for s in FAST_SETTINGS)
            try:
                self._run(
                    "pg_ctl",
                    "-D",
                    str(data),
                    "-l",
                    str(self.home / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "start",
                    timeout_s=START_TIMEOUT_S + 5,
                )
                return self
            except RuntimeError as e:
                if "could not bind" not in str(e) and "in use" not in str(e):
                    self.stop()
                    raise
        self.stop()
        raise RuntimeError("PostgreSQL could not get a free port in three attempts")

    def url(self, dbname="postgres"):
        return "postgresql://%s@127.0.0.1:%d/%s" % (USER, self.port, dbname)

    def create_database(self, dbname):
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute('CREATE DATABASE "%s"' % dbname)
        return self.url(dbname)

    def stop(self):
        if self.home is None:
            return
        data = self.home / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                self._command("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"),
                capture_output=True,
                timeout=STOP_TIMEOUT_S,
            )
        shutil.rmtree(self.home, ignore_errors=True)
        self.home = None

"""A real PostgreSQL for tests and benchmarks: Debian's binaries, a throwaway cluster, a Unix
socket only.

``cluster()`` runs ``initdb`` into a temporary folder; ``Cluster.start`` starts
``postgres`` there as the ``postgres`` user the Debian package creates (through
``setpriv``, which execs, so the PID we hold is the postmaster's), with TCP off
(``listen_addresses=''``) and its socket in that folder.  ``Cluster.stop`` stops it by
that PID (a fast shutdown, SIGKILL if it lingers); leaving ``cluster()`` stops it and
removes the folder.  The package's own cluster never starts during ``make debs`` (its
policy-rc.d), and is not used.

``PostgresUnavailable`` says why a cluster cannot run here: not root (the cluster must
run as another user: PostgreSQL refuses to run as root), or the binaries or the user
are missing.  tests/support/postgres.py turns it into a skip.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.procs import Background, ProcessError, run, wait_until

BINDIR = Path("/usr/lib/postgresql/15/bin")
USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """A throwaway PostgreSQL cannot run on this machine; the message says what is missing."""


@dataclass(frozen=True)
class PostgresServer:
    socket_dir: Path
    pid: int

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@/{database}?host={self.socket_dir}"


def require() -> pwd.struct_passwd:
    """The ``postgres`` user, or PostgresUnavailable saying what is missing."""
    if os.geteuid() != 0:
        raise PostgresUnavailable(
            "needs root to run PostgreSQL's initdb and postgres as the postgres user"
        )
    if not (BINDIR / "postgres").exists():
        raise PostgresUnavailable(
            f"needs {BINDIR}/postgres (Debian package postgresql; `make debs`)"
        )
    if shutil.which("setpriv") is None:
        raise PostgresUnavailable("needs setpriv (Debian package util-linux)")
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        raise PostgresUnavailable(
            "needs the postgres user that Debian's postgresql package creates"
        ) from None


def _as_postgres(*argv: str) -> list[str]:
    return ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "--", *argv]


class Cluster:
    """A throwaway cluster in ``folder`` (initdb'd at once) that can be stopped and started
    again by its PID: the database going away under a running pxed."""

    def __init__(self, folder: Path) -> None:
        user = require()
        os.chown(folder, user.pw_uid, user.pw_gid)
        self.folder = folder
        self.data = folder / "data"
        self._server: Background | None = None
        self._starts = 0
        run(
            _as_postgres(
                str(BINDIR / "initdb"), "-D", str(self.data), "-U", USER, "-A", "trust",
                "--no-sync", "-E", "UTF8", "--locale=C.UTF-8",
            ),
            timeout=120,
        )  # fmt: skip

    def start(self) -> PostgresServer:
        self._starts += 1
        server = self._server = Background(
            _as_postgres(
                str(BINDIR / "postgres"), "-D", str(self.data), "-k", str(self.folder),
                "-c", "listen_addresses=", "-c", "synchronous_commit=on",
            ),
            self.folder / f"postgres-{self._starts}.log",
        )  # fmt: skip
        wait_until(
            lambda: _ready(server, self.folder),
            60,
            f"PostgreSQL on {self.folder} to accept connections",
        )
        return PostgresServer(self.folder, server.pid)

    def stop(self) -> None:
        """A fast shutdown by the postmaster's PID (ends open sessions), SIGKILL if it lingers."""
        if self._server is None:
            return
        if self._server.running():
            os.kill(self._server.pid, signal.SIGINT)
        self._server.stop(grace=10)
        self._server = None


@contextmanager
def cluster() -> Iterator[Cluster]:
    """A Cluster in a fresh folder, stopped and removed afterwards."""
    require()
    # Short and under /tmp: a Unix socket path must fit in 107 bytes.
    folder = Path(tempfile.mkdtemp(prefix="pxed-pg-", dir="/tmp"))
    made: Cluster | None = None
    try:
        made = Cluster(folder)
        yield made
    finally:
        if made is not None:
            made.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _ready(server: Background, folder: Path) -> bool:
    if not server.running():
        raise ProcessError(f"postgres exited early:\n{server.output()[-2000:]}")
    done = run([str(BINDIR / "pg_isready"), "-q", "-h", str(folder), "-U", USER], check=False)
    return done.returncode == 0

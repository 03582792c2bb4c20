"""Background processes that tests start and must be able to stop, however the test ends.

Each process gets its own session, so its PID is also its process group: `stop()` signals
that group (the process we started plus whatever it forked, a dhclient script for example)
and nothing else. Every wait here is bounded in time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class ProcessError(RuntimeError):
    """A test helper process did not behave: it failed, exited early, or never got ready."""


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` every 50 ms; raise ProcessError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise ProcessError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def run(
    argv: Sequence[str], timeout: float = 30.0, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run to completion with a time limit; on failure the error carries the command's output."""
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ProcessError(f"{' '.join(argv)}: still running after {timeout:g} s, killed") from exc
    if check and done.returncode != 0:
        raise ProcessError(
            f"{' '.join(argv)}: exit status {done.returncode}\n{done.stdout}{done.stderr}".rstrip()
        )
    return done


class Background:
    """A process started with Popen whose output goes to a log file we can read while it runs."""

    def __init__(self, argv: Sequence[str], log: Path) -> None:
        self.argv = list(argv)
        self.log = log
        with log.open("wb") as sink:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def running(self) -> bool:
        return self._popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_output(self, text: str, timeout: float = 10.0) -> None:
        """Wait until `text` appears in the log; fail early, with the log, if the process exits."""

        def seen() -> bool:
            if text in self.output():
                return True
            if not self.running():
                raise ProcessError(
                    f"{self.argv[0]} (pid {self.pid}) exited with status {self.returncode} "
                    f"before printing {text!r}:\n{self.output()[-2000:]}"
                )
            return False

        try:
            wait_until(seen, timeout, f"{text!r} from pid {self.pid}")
        except ProcessError as exc:
            raise ProcessError(f"{exc}\nlog {self.log}:\n{self.output()[-2000:]}") from None

    def wait(self, timeout: float) -> int:
        """Wait for a process that ends by itself (a client); kill it if it overstays."""
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise ProcessError(
                f"{' '.join(self.argv)} still running after {timeout:g} s, killed:\n"
                f"{self.output()[-2000:]}"
            ) from None

    def stop(self, grace: float = 5.0) -> int:
        """SIGTERM our process group, wait up to `grace` seconds, then SIGKILL it."""
        if self.running():
            self._signal(signal.SIGTERM)
            try:
                self._popen.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self._popen.wait(5.0)
        return self._popen.returncode

    def _signal(self, sig: signal.Signals) -> None:
        # Only called while the leader is unreaped, so the group id is still ours.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, sig)

"""The preseed family: debian-installer's answer file, checked by debconf-set-selections.

debian-installer loads a preseed with ``debconf-set-selections``, so a line it
cannot parse stops the install at "Failed to process the preconfiguration
file"; a line of an unknown type is skipped, and the installer then asks that
question. pxed refuses both, from ``debconf-set-selections --checkonly`` (the
debconf package).

The check reads no system database (``DEBCONF_DB_REPLACE``, docs/pitfalls.md
#14): as root, ``--checkonly`` otherwise locks /var/cache/debconf/config.dat,
and fails without a word while apt holds that lock.

A template gets ``pxed_done``, a shell command for ``preseed/late_command``
that POSTs the install's token in an ``X-Pxed-Token`` header (never in the URL).
It speaks HTTP/1.0 through busybox ``nc``: the installer's busybox ``wget`` has
no ``--header`` and no ``--post-data`` (docs/firmware.md). debian-installer has
no hook that runs when an install fails, so there is no ``pxed_failed``.
"""

from __future__ import annotations

import bisect
import itertools
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from pxed.provisioning.family import BootArg, Family, Target, Verdict

CHECKER = "debconf-set-selections"
DONE_WAIT = 30  # seconds the done callback waits for pxed to accept the connection
DONE_HOLD = 10  # seconds it holds its request open for pxed's reply (done_command)
CHECK_TIMEOUT = 60  # seconds for one run over every host's file; a run takes 0.1 to 0.3 s
_ISOLATED = {"DEBCONF_DB_REPLACE": "Pipe{infd:none outfd:none}"}  # in memory, nothing locked
_LINE = re.compile(r"\bline (\d+)")
_ECHOED = re.compile(r": '.*'$")  # the offending line's text: it may hold a password hash


def check(texts: Sequence[str]) -> list[Verdict]:
    """For each text: None if ``debconf-set-selections --checkonly`` accepts it and warns of
    nothing, else (line, message) from the first thing it said about it.

    One run judges them all: a run costs 0.1 to 0.3 s, nearly all of it perl
    starting. Perl numbers the lines of the files it is given on from one to
    the next, so a complaint's line says whose it is; one that names no line
    sends every text back to be judged alone.
    """
    if not texts:
        return []  # with no file to read, it would read its standard input
    outcome = _run(texts)
    if isinstance(outcome, str):
        return [(0, outcome)] * len(texts)
    verdicts = _attributed(texts, *outcome)
    if verdicts is None:
        return [check([text])[0] for text in texts]
    return verdicts


def _run(texts: Sequence[str]) -> tuple[int, list[str]] | str:
    """(exit status, what it said) of one run over ``texts``; a message if it could not run."""
    with tempfile.TemporaryDirectory(prefix="pxed-preseed-") as folder:
        paths = [Path(folder) / f"{n}.cfg" for n in range(len(texts))]
        for path, text in zip(paths, texts, strict=True):
            path.write_text(text, encoding="utf-8")
        try:
            done = subprocess.run(
                [CHECKER, "--checkonly", *map(str, paths)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                encoding="utf-8",
                errors="replace",
                env={**os.environ, **_ISOLATED},
                timeout=CHECK_TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            return f"{CHECKER} not found: install Debian's debconf package to check preseeds"
        except subprocess.TimeoutExpired:
            return f"{CHECKER} --checkonly did not finish within {CHECK_TIMEOUT} s"
    return done.returncode, [line.strip() for line in done.stderr.splitlines() if line.strip()]


def _attributed(texts: Sequence[str], status: int, said: list[str]) -> list[Verdict] | None:
    """Each text's first complaint, found by its line; None if one cannot be placed."""
    ends = list(itertools.accumulate(_line_count(text) for text in texts))
    verdicts: list[Verdict] = [None] * len(texts)
    if status != 0 and not said:
        said = [f"exit status {status} and no message"]
    for complaint in said:
        found = _LINE.search(complaint)
        if found is None and len(texts) > 1:
            return None
        line = int(found[1]) if found else 0
        index = min(bisect.bisect_left(ends, line), len(texts) - 1)
        local = line - (ends[index - 1] if index else 0) if found else 0
        if verdicts[index] is None:
            verdicts[index] = (local, _message(complaint, local))
    return verdicts


def _line_count(text: str) -> int:
    """How many lines perl reads from ``text`` (a last line without a newline counts)."""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def _message(complaint: str, line: int) -> str:
    """The complaint without the line's text, its line counted in its own file."""
    message = _LINE.sub(f"line {line}", _ECHOED.sub("", complaint))
    if complaint.startswith("warning:"):
        message += " (debian-installer would ask that question)"
    return f"{CHECKER}: {message}"


def outcomes(done_url: str, failed_url: str, token: str) -> Mapping[str, object]:
    return {
        "pxed_done": done_command(done_url, token),
        "pxed_failed": jinja2.StrictUndefined(
            hint="debian-installer has no hook that runs when an install fails, so a preseed "
            "has no pxed_failed",
            name="pxed_failed",
        ),
    }


def done_command(done_url: str, token: str) -> str:
    """The done callback as debian-installer's shell can send it: printf into busybox nc.

    nc half-closes when its input ends, and pxed's HTTP server drops a half-closed
    connection with its reply unsent; the ``sleep`` holds the input open until pxed
    has answered and closed (HTTP/1.0), and nc exits then. The status line is
    printed, so it reaches the installer's syslog; the command fails unless pxed
    answered 2xx.
    """
    url = urlsplit(done_url)
    request = (
        f"POST {url.path} HTTP/1.0\\r\\nHost: {url.netloc}\\r\\n"
        f"X-Pxed-Token: {token}\\r\\nContent-Length: 0\\r\\n\\r\\n"
    )
    return (
        f"(printf '{request}'; sleep {DONE_HOLD}) | nc -w {DONE_WAIT} {url.hostname} "
        f'{url.port or 80} | head -n 1 | awk \'{{ print "pxed done callback: " $0; '
        "ok = $2 ~ /^2/ } END { exit !ok }'"
    )


def boot_args(target: Target) -> list[BootArg]:
    """What debian-installer needs to find its preseed without asking anything first.

    ``auto=true`` defers the language and keyboard questions until the preseed
    is loaded; ``priority=critical`` answers the rest with defaults. The network
    comes up before the preseed is read, so the interface (``auto``: the one
    with a link), host name and domain can only come from the command line.
    """
    if target.url is None:
        return []
    args: list[BootArg] = [
        (("auto", "auto-install/enable"), "auto=true"),
        (("priority", "debconf/priority"), "priority=critical"),
        (("url", "preseed/url"), f"url={target.url}"),
        (("interface", "netcfg/choose_interface"), "interface=auto"),
    ]
    if target.hostname:
        args.append((("hostname", "netcfg/get_hostname"), f"hostname={target.hostname}"))
    if target.domain:
        args.append((("domain", "netcfg/get_domain"), f"domain={target.domain}"))
    return args


PRESEED = Family("preseed", "preseed", "preseed", CHECKER, check, outcomes, boot_args)

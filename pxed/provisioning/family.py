"""What one answer-file family does differently; everything else is one path (``answers``).

A family is an installer's answer-file format: Kickstart for Anaconda, preseed
for debian-installer. pxed renders, checks, serves, guards and counts every
family's file the same way; only the checker, the callback snippets a template
gets and the kernel arguments that point the installer at its file differ.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pxed.config.model import AnswerFamily

# What a checker says of a rendered file: None when good, else (rendered line or 0, why).
Verdict = tuple[int, str] | None
# A kernel argument to add unless the profile's append already gives it by one of its names.
BootArg = tuple[tuple[str, ...], str]


@dataclass(frozen=True)
class Target:
    """What a profile's kernel command line points the installer at."""

    url: str | None  # the answer file's URL; None: the profile has none
    tree_url: str | None
    mac: str | None  # None: the unknown-hosts default, for whichever MAC boots it
    hostname: str | None
    domain: str | None


@dataclass(frozen=True)
class Family:
    name: AnswerFamily  # the profile key naming the template, and the log word
    title: str  # how messages name the file
    path: str  # served at /<path>/<mac>
    checker: str  # what refuses a bad file, for messages
    # Verdicts on many files at once: a checker that is a process judges them in one run.
    check: Callable[[Sequence[str]], list[Verdict]]
    # (done URL, failed URL, token) -> the names a template uses to report its outcome
    outcomes: Callable[[str, str, str], Mapping[str, object]]
    boot_args: Callable[[Target], list[BootArg]]

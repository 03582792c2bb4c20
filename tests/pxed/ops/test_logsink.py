"""pxed's level threshold passes exactly what Twisted's level filter would."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.logger import FilteringLogObserver, LogLevel, LogLevelFilterPredicate

from pxed.ops.logsink import Threshold

LEVELS = list(LogLevel.iterconstants())


def passed_by_twisted(level: LogLevel, event: dict[str, Any]) -> bool:
    seen: list[object] = []
    FilteringLogObserver(seen.append, [LogLevelFilterPredicate(level)])(dict(event))
    return bool(seen)


def passed_by_pxed(level: LogLevel, event: dict[str, Any]) -> bool:
    seen: list[object] = []
    Threshold(seen.append, level)(dict(event))
    return bool(seen)


@pytest.mark.parametrize("threshold", LEVELS, ids=lambda level: level.name)
@pytest.mark.parametrize("level", [*LEVELS, None], ids=str)
@pytest.mark.parametrize("namespace", ["pxed.dhcp", "", None])
def test_the_threshold_passes_what_twisteds_level_filter_passes(
    threshold: LogLevel, level: LogLevel | None, namespace: str | None
) -> None:
    event: dict[str, Any] = {"log_format": "dhcp {mac}", "mac": "52:54:00:12:34:56"}
    if level is not None:
        event["log_level"] = level
    if namespace is not None:
        event["log_namespace"] = namespace
    assert passed_by_pxed(threshold, event) == passed_by_twisted(threshold, event)

"""The open-file budget: TFTP's and HTTP's caps together, so neither can starve the other."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from pxed.config import parse_config
from pxed.daemon.descriptors import (
    HTTP_PER_CONNECTION,
    RESERVE,
    TFTP_PER_SESSION,
    budget,
    raise_limit,
)


def test_the_budget_is_every_cap_plus_the_reserve(tmp_path: Path) -> None:
    (tmp_path / "tftp").mkdir()
    config = parse_config(
        "server: {address: 127.0.0.1}\n"
        "tftp: {root: tftp, listen: [127.0.0.1], max_sessions: 900}\n"
        "http: {listen: [127.0.0.1], max_connections: 300}\n",
        tmp_path / "pxed.yaml",
    )
    assert budget(config) == TFTP_PER_SESSION * 900 + HTTP_PER_CONNECTION * 300 + RESERVE


def test_starting_raises_the_soft_limit_to_the_budget() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 3000
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard limit ({hard}) is below what the test asks for")
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))
    try:
        assert raise_limit(needed) == needed
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

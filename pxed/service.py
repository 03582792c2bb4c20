"""Builds the Twisted service tree from a validated config."""

from __future__ import annotations

from twisted.application.service import MultiService


def add_services(top: MultiService, config: object) -> None:
    """Attach one service per enabled protocol (TFTP, DHCP, HTTP) to ``top``."""

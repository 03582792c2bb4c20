"""``twistd pxed``: command-line options and the service tree.

twistd imports this module lazily through ``twisted/plugins/pxed_plugin.py``.
"""

from __future__ import annotations

from twisted.application.service import IService, MultiService
from twisted.python import usage

from pxed.config import load_config


class Options(usage.Options):
    optParameters = [
        ["config", "c", "/etc/pxed/pxed.yaml", "The pxed YAML configuration file."],
    ]


def makeService(options: Options) -> IService:
    """Load the config (every error reported at once) and build the services it enables."""
    config = load_config(options["config"])
    top = MultiService()
    top.setName("pxed")
    # Services (TFTP, DHCP, HTTP) attach here as they land; see pxed/service.py.
    from pxed.service import add_services

    add_services(top, config)
    return top

"""``twistd pxed``: command-line options and the service tree.

twistd imports this module lazily through ``twisted/plugins/pxed_plugin.py``.
The config is loaded while options are parsed so that a bad file stops twistd
with the loader's list of problems instead of a traceback.
"""

from __future__ import annotations

from twisted.application.service import IService
from twisted.logger import Logger
from twisted.python import usage

from pxed.config import ConfigError, load_config
from pxed.config.defaults import CONFIG_PATH
from pxed.daemon.heap import FrozenHeap
from pxed.daemon.notify import ReadyNotifier
from pxed.daemon.services import add_services
from pxed.daemon.state import StateDirError, StateOwner, check_writable, owner_to_drop_to
from pxed.database.connection import DatabaseUnreachable
from pxed.database.migrations import SchemaTooNew, read_status
from pxed.dhcp.sockets import DhcpSocketError
from pxed.dhcp6.duid import ServerDuidError
from pxed.dhcp6.sockets import Dhcp6SocketError
from pxed.files.iso9660 import IsoError
from pxed.netif import NoListenAddress
from pxed.ops.logsink import LoggingRoot, twistd_log_sink
from pxed.provisioning.answers import checked
from pxed.provisioning.lifecycle import LifecycleError
from pxed.provisioning.tokens import SecretError

# What stops pxed at start for a reason in the host, not the file: said in one line, no traceback.
START_ERRORS = (
    DatabaseUnreachable,
    Dhcp6SocketError,
    DhcpSocketError,
    IsoError,
    LifecycleError,
    NoListenAddress,
    SchemaTooNew,
    SecretError,
    ServerDuidError,
    StateDirError,
)

log = Logger(namespace="pxed.config")


class Options(usage.Options):
    optParameters = [
        ["config", "c", CONFIG_PATH, "The pxed YAML configuration file."],
    ]

    def postOptions(self) -> None:
        try:
            self["loaded"] = checked(load_config(self["config"]))
        except ConfigError as error:
            raise usage.UsageError(f"{self['config']} has errors:\n{error}") from None


def makeService(options: Options) -> IService:
    config = options["loaded"]
    for warning in config.warnings:
        log.warn("config warning: {warning}", warning=str(warning))
    # LoggingRoot hands twistd pxed's observer (level, text or JSON lines) when parented;
    # it writes where twistd's -n / --logfile say (options.parent: twistd's own options).
    sink = twistd_log_sink(getattr(options, "parent", None))
    top = LoggingRoot(config.logging.level, config.logging.json, sink)
    top.setName("pxed")
    owner = owner_to_drop_to(getattr(options, "parent", None))
    try:
        check_writable(config.server.state_dir, owner)
        if config.server.database is not None:
            read_status(config.server.database)  # refused early if newer than this pxed
        operations = add_services(top, config)
        top.lookup = operations.mac_for_ip  # JSON log lines find a client's MAC through it
        if owner is not None:  # last: after every service has opened its state files
            StateOwner(config.server.state_dir, owner).setServiceParent(top)
        FrozenHeap().setServiceParent(top)  # after the services: their state is loaded
        ReadyNotifier().setServiceParent(top)  # started last: every socket is bound by then
    except START_ERRORS as error:
        raise SystemExit(f"pxed cannot start: {error}") from None
    return top

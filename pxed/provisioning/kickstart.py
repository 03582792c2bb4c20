"""Per-host Kickstarts: a profile's Jinja2 template rendered for a host, checked by pykickstart.

pykickstart is the parser Anaconda itself uses, so a Kickstart it rejects would
stop the installer at its first screen; pxed refuses to serve such a file, and
``checked`` (run by ``pxed check``, at daemon start and on every reload) renders
every template for every host that uses it, so a mistake is found before any
machine boots.

Templates see:

* ``host`` (mac, hostname, ip, profile, netboot, vars), ``profile`` (name,
  tree, kernel, initrd, append, vars), ``mac``;
* ``vars``: top-level vars, overridden by the profile's, then by the host's;
* ``server``, ``http_port``, ``http_url``, ``tree_url`` (None without a tree),
  ``ks_url``;
* ``pxed_done``: a ``%post --nochroot`` section that reports the install
  finished (``POST /api/hosts/<mac>/done`` with the host's token), and
  ``pxed_failed``: an ``%onerror`` section that reports a failure.

``{% %}`` lines leave no blank line behind (trim_blocks, lstrip_blocks).
Undefined names are errors (StrictUndefined), not empty strings: a typo in a
variable name would otherwise produce a Kickstart that installs the wrong thing.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType

import jinja2
from pykickstart.errors import KickstartError
from pykickstart.parser import KickstartParser
from pykickstart.version import makeVersion

from pxed.config import ConfigError
from pxed.config.model import Config, Host, Profile
from pxed.config.problems import ConfigProblem
from pxed.provisioning.tokens import host_token
from pxed.provisioning.urls import Urls

CHECK_SECRET = b"pxed check: placeholder secret, never served"
CHECK_MAC = "00:00:5e:00:53:00"  # RFC 7042 documentation MAC: the stand-in unknown host


class TemplateProblem(Exception):
    """A Kickstart that must not be served, with where the mistake is.

    ``line`` is the template line (0 when pxed cannot tell), ``rendered_line``
    the line of the rendered Kickstart pykickstart complained about, if any.
    """

    def __init__(
        self, template: Path, line: int, message: str, rendered_line: int | None = None
    ) -> None:
        self.template = template
        self.line = line
        self.message = message
        self.rendered_line = rendered_line
        where = f"{template}:{line}" if line else str(template)
        rendered = f" (rendered line {rendered_line})" if rendered_line else ""
        super().__init__(f"{where}{rendered}: {message}")


@dataclass(frozen=True)
class Rendered:
    """A Kickstart ready to serve."""

    text: str
    template: Path


def merged_vars(config: Config, profile: Profile, host: Host) -> dict[str, object]:
    """Top-level vars, then the profile's, then the host's: the most specific wins."""
    return {**config.vars, **profile.vars, **host.vars}


def context(
    config: Config, host: Host, profile: Profile, urls: Urls, token: str
) -> dict[str, object]:
    mac = host.mac
    tree_url = urls.tree(profile.tree) if profile.tree else None
    return {
        "host": host,
        "profile": profile,
        "mac": mac,
        "vars": merged_vars(config, profile, host),
        "server": urls.server,
        "http_port": urls.http_port,
        "http_url": urls.base,
        "tree_url": tree_url,
        "ks_url": urls.kickstart(mac),
        "pxed_done": _callback_section("%post --nochroot", urls.callback(mac, "done"), token),
        "pxed_failed": _callback_section("%onerror", urls.callback(mac, "failed"), token),
    }


def _callback_section(header: str, url: str, token: str) -> str:
    """A Kickstart section that POSTs the host's token to ``url`` (curl, else busybox wget)."""
    return (
        f"{header}\n"
        "# pxed: report this install's outcome so the next network boot does the right thing\n"
        f"curl -fsS -X POST --data token={token} {url} ||"
        f" wget -q -O /dev/null --post-data token={token} {url}\n"
        "%end"
    )


def render(config: Config, host: Host, urls: Urls, secret: bytes, generation: int = 0) -> Rendered:
    """The Kickstart ``host`` gets in its install ``generation``, checked; TemplateProblem if it
    must not be served."""
    profile = config.profiles[host.profile] if host.profile else None
    if profile is None or profile.kickstart is None:
        raise LookupError(f"host {host.mac} has no profile with a kickstart template")
    template_path = profile.kickstart
    source = _read(template_path)
    variables = context(config, host, profile, urls, host_token(secret, host.mac, generation))
    try:
        text = _ENVIRONMENT.from_string(source).render(variables)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateProblem(template_path, error.lineno, f"Jinja2: {error.message}") from None
    except Exception as error:  # any template runtime error: undefined name, bad filter, ...
        line = _template_line_from_traceback(error.__traceback__)
        raise TemplateProblem(template_path, line, f"Jinja2: {_describe(error)}") from None
    try:
        validate(text)
    except TemplateProblem as problem:
        rendered_line = problem.rendered_line
        line = _template_line(source, text, rendered_line) if rendered_line else 0
        raise TemplateProblem(template_path, line, problem.message, rendered_line) from None
    return Rendered(text, template_path)


def validate(text: str) -> None:
    """pykickstart's verdict on ``text``: TemplateProblem (with ``rendered_line``) if bad."""
    verdict = _verdict(text)
    if verdict is not None:
        line, message = verdict
        raise TemplateProblem(Path("<rendered>"), 0, message, line or None)


@functools.lru_cache(maxsize=256)
def _verdict(text: str) -> tuple[int, str] | None:
    """None if pykickstart accepts ``text``, else (line, message).

    Cached by text: a fresh handler costs tens of milliseconds (benchmarks/README.md),
    and most hosts of a profile render to the same few texts between edits.
    """
    parser = KickstartParser(makeVersion(), followIncludes=False, errorsAreFatal=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notes are not reasons to refuse
        try:
            parser.readKickstartFromString(text)
        except KickstartError as error:
            return (error.lineno or 0, f"pykickstart: {error.message}")
        except ValueError as error:  # shlex: an unclosed quote; the parser knows the line
            return (_line_of(text, parser._line), f"pykickstart: {error}")
    return None


def _line_of(text: str, line: object) -> int:
    if not isinstance(line, str):
        return 0
    for number, candidate in enumerate(text.splitlines(), start=1):
        if candidate == line.rstrip("\n"):
            return number
    return 0


_ENVIRONMENT = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,  # a {% for %} line leaves no blank line behind
    lstrip_blocks=True,
    autoescape=False,  # Kickstart is not HTML
)

_EXPRESSION = re.compile(r"\{\{.*?\}\}")
_STATEMENT = re.compile(r"\{%.*?%\}|\{#.*?#\}")


def _template_line(source: str, rendered: str, rendered_line: int) -> int:
    """The template line that produced ``rendered_line``, found by matching its text.

    Jinja2 keeps no map from output lines to template lines, so each template
    line becomes a pattern (``{{ ... }}`` matches anything, ``{% %}`` nothing)
    and the first line whose pattern matches the rendered line wins. 0 if none does.
    """
    lines = rendered.splitlines()
    if not 0 < rendered_line <= len(lines):
        return 0
    wanted = lines[rendered_line - 1].strip()
    for number, line in enumerate(source.splitlines(), start=1):
        plain = _STATEMENT.sub("", line).strip()
        if not plain and wanted:
            continue
        pieces = [re.escape(piece) for piece in _EXPRESSION.split(plain)]
        if re.fullmatch(".*?".join(pieces), wanted, re.DOTALL):
            return number
    return 0


def _template_line_from_traceback(tb: TracebackType | None) -> int:
    """Jinja2 rewrites tracebacks so template frames carry template lines; take the last."""
    line = 0
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(error: Exception) -> str:
    if isinstance(error, jinja2.UndefinedError):
        return f"{error.message} (StrictUndefined: every name a template uses must be defined)"
    return f"{type(error).__name__}: {error}"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8"
        raise TemplateProblem(path, 0, f"cannot read the template: {reason}") from None


def checked(config: Config) -> Config:
    """``config`` once every Kickstart it names renders and passes pykickstart.

    Raises ConfigError listing each broken template line, as ``load_config``
    lists the file's own mistakes; template warnings join ``config.warnings``.
    """
    errors, advice = check_config(config)
    if errors:
        raise ConfigError(errors, [*config.warnings, *advice])
    if advice:
        config = dataclasses.replace(config, warnings=(*config.warnings, *advice))
    return config


def check_config(config: Config) -> tuple[list[ConfigProblem], list[ConfigProblem]]:
    """Render every template for every host that uses it: (errors, warnings).

    An error per failing host names the template file and line, the host and
    its key path, and what pykickstart or Jinja2 said. A warning per template
    that never reports done for a ``netboot: once`` host: such a host would
    reinstall at every boot until the loop breaker stops it.
    """
    urls = Urls(_check_server(config), config.http.port)
    errors: list[ConfigProblem] = []
    silent: dict[Path, str] = {}
    for key, host in _users(config):
        try:
            rendered = render(config, host, urls, CHECK_SECRET)
        except TemplateProblem as problem:
            who = f"host {host.hostname or host.mac} ({host.mac})"
            where = f"rendered line {problem.rendered_line}: " if problem.rendered_line else ""
            errors.append(
                ConfigProblem(
                    str(problem.template),
                    problem.line,
                    0 if not problem.line else 1,
                    key,
                    f"{who}: {where}{problem.message}",
                )
            )
            continue
        if host.netboot == "once" and urls.callback(host.mac, "done") not in rendered.text:
            silent.setdefault(rendered.template, key)
    warnings = [
        ConfigProblem(
            str(template),
            0,
            0,
            key,
            "never reports done ({{ pxed_done }} missing): netboot once hosts will reinstall "
            "at every boot until the loop breaker stops them",
            severity="warning",
        )
        for template, key in silent.items()
    ]
    return errors, warnings


def _users(config: Config) -> list[tuple[str, Host]]:
    """(key path, host) for every host whose profile has a template, and the unknown stand-in."""
    users = [
        (f"hosts[{index}]", host)
        for index, host in enumerate(config.hosts)
        if _template_of(config, host.profile) is not None
    ]
    unknown = config.dhcp.unknown_profile
    if unknown is not None and _template_of(config, unknown) is not None:
        users.append(("dhcp.unknown_hosts", stand_in_host(CHECK_MAC, unknown)))
    return users


def stand_in_host(mac: str, profile: str) -> Host:
    """What an unknown MAC installs as when ``dhcp.unknown_hosts`` names a profile."""
    return Host(mac, None, None, profile, "once", MappingProxyType({}))


def _template_of(config: Config, profile: str | None) -> Path | None:
    found: Mapping[str, Profile] = config.profiles
    if profile is None or profile not in found:
        return None
    return found[profile].kickstart


def _check_server(config: Config) -> str:
    """An address to render with when checking: the real one if the file gives it."""
    if config.server.address is not None:
        return str(config.server.address)
    if config.http.listen:
        return str(config.http.listen[0])
    return "pxed.invalid"

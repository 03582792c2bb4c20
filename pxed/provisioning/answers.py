"""Per-host answer files: a profile's Jinja2 template rendered for a host, checked by its family.

One path for every family (``pxed.provisioning.family``: Kickstart, preseed):
the profile names the template under its family's key, and ``render`` fills
it in for a host and has the family's checker judge it. A file the checker
rejects would stop the installer, so pxed refuses to serve it; ``checked``
(run by ``pxed check``, at daemon start and on every reload) renders every
template for every host that uses it, so a mistake is found before any
machine boots.

Templates see:

* ``host`` (mac, hostname, ip, profile, netboot, vars), ``profile`` (name,
  tree, kernel, initrd, append, vars), ``mac``;
* ``vars``: top-level vars, overridden by the profile's, then by the host's;
* ``server``, ``http_port``, ``http_url``, ``tree_url`` (None without a tree),
  and the file's own URL as ``ks_url`` or ``preseed_url``;
* what the family gives to report the install's outcome with the host's
  token (``pxed_done``; Kickstart also ``pxed_failed``).

``{% %}`` lines leave no blank line behind (trim_blocks, lstrip_blocks).
Undefined names are errors (StrictUndefined), not empty strings: a typo in a
variable name would otherwise produce a file that installs the wrong thing.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType, TracebackType
from urllib.parse import urlsplit

import jinja2

from pxed.config import ConfigError
from pxed.config.model import ANSWER_URLS, Config, Host, Profile
from pxed.config.problems import ConfigProblem
from pxed.provisioning.family import Family, Verdict
from pxed.provisioning.kickstart import KICKSTART
from pxed.provisioning.preseed import PRESEED
from pxed.provisioning.tokens import TOKEN_HEX, host_token
from pxed.provisioning.urls import Urls

CHECK_SECRET = b"pxed check: placeholder secret, never served"
CHECK_MAC = "00:00:5e:00:53:00"  # RFC 7042 documentation MAC: the stand-in unknown host
FAMILIES: Mapping[str, Family] = MappingProxyType({f.name: f for f in (KICKSTART, PRESEED)})
TOKEN_MASK = "0" * TOKEN_HEX


def family_of(profile: Profile | None) -> Family | None:
    """The family of ``profile``'s answer file; None without a profile or an answer file."""
    if profile is None or profile.answer_file is None:
        return None
    return FAMILIES[profile.answer_file.family]


class TemplateProblem(Exception):
    """An answer file that must not be served, with where the mistake is.

    ``line`` is the template line (0 when pxed cannot tell), ``rendered_line``
    the line of the rendered file its checker complained about, if any.
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
    """An answer file ready to serve."""

    text: str
    template: Path
    family: Family


def merged_vars(config: Config, profile: Profile, host: Host) -> dict[str, object]:
    """Top-level vars, then the profile's, then the host's: the most specific wins."""
    return {**config.vars, **profile.vars, **host.vars}


def context(
    config: Config, host: Host, profile: Profile, family: Family, urls: Urls, token: str
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
        ANSWER_URLS[family.name]: urls.answer(family.path, mac),
        **family.outcomes(urls.callback(mac, "done"), urls.callback(mac, "failed"), token),
    }


def render(config: Config, host: Host, urls: Urls, secret: bytes, generation: int = 0) -> Rendered:
    """The answer file ``host`` gets in its install ``generation``, checked; TemplateProblem if it
    must not be served."""
    draft = _draft(config, host, urls, secret, generation)
    verdict = _verdicts(draft.rendered.family, [draft.masked])[0]
    if verdict is not None:
        rendered_line, message = verdict
        line = _template_line(draft.source, draft.rendered.text, rendered_line)
        raise TemplateProblem(draft.rendered.template, line, message, rendered_line or None)
    return draft.rendered


@dataclass(frozen=True)
class _Draft:
    """A rendered file not yet judged; ``masked`` is its text with the token blanked out."""

    rendered: Rendered
    source: str
    masked: str


def _draft(config: Config, host: Host, urls: Urls, secret: bytes, generation: int) -> _Draft:
    profile = config.profiles[host.profile] if host.profile else None
    family = family_of(profile)
    if profile is None or family is None or profile.answer_file is None:
        raise LookupError(f"host {host.mac} has no profile with an answer-file template")
    template_path = profile.answer_file.template
    source = _read(template_path)
    token = host_token(secret, host.mac, generation)
    variables = context(config, host, profile, family, urls, token)
    try:
        text = _compiled(source).render(variables)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateProblem(template_path, error.lineno, f"Jinja2: {error.message}") from None
    except Exception as error:  # any template runtime error: undefined name, bad filter, ...
        line = _template_line_from_traceback(error.__traceback__)
        raise TemplateProblem(template_path, line, f"Jinja2: {_describe(error)}") from None
    rendered = Rendered(text, template_path, family)
    return _Draft(rendered, source, text.replace(token, TOKEN_MASK))


_VERDICTS: OrderedDict[tuple[str, str], Verdict] = OrderedDict()
_VERDICTS_KEPT = 4096
_VERDICTS_LOCK = threading.Lock()  # a reload checks in a worker thread while fetches render


def _verdicts(family: Family, texts: Sequence[str]) -> list[Verdict]:
    """The family checker's verdicts on ``texts``, cached by text; the ones not cached are
    handed to the checker together.

    A check costs tens of milliseconds (pykickstart's handler) to a few hundred
    (debconf-set-selections is a process, so it judges a batch in one run). The
    token is masked before the text gets here, so the text ``pxed check`` and a
    reload judged is the one a host's fetch asks about again.
    """
    with _VERDICTS_LOCK:
        known = {t: _VERDICTS[(family.name, t)] for t in texts if (family.name, t) in _VERDICTS}
    missing = [t for t in dict.fromkeys(texts) if t not in known]
    found = dict(zip(missing, family.check(missing), strict=True)) if missing else {}
    with _VERDICTS_LOCK:
        for text, verdict in found.items():
            _VERDICTS[(family.name, text)] = verdict
        while len(_VERDICTS) > _VERDICTS_KEPT:
            _VERDICTS.popitem(last=False)
    return [known[t] if t in known else found[t] for t in texts]


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> jinja2.Template:
    """``source`` compiled, kept by its text: Jinja2 compiles a template to Python source and
    then bytecode, ~9 ms for a short Kickstart, which every fetch paid before. Keyed by the
    text read at each fetch, so an edited template is compiled (and checked) anew."""
    return _ENVIRONMENT.from_string(source)


_ENVIRONMENT = jinja2.Environment(
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    trim_blocks=True,  # a {% for %} line leaves no blank line behind
    lstrip_blocks=True,
    autoescape=False,  # answer files are not HTML
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
    """``config`` once every answer file it names renders and passes its family's checker.

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
    its key path, and what the checker or Jinja2 said. A warning per template
    that never reports done for a ``netboot: once`` host: such a host would
    reinstall at every boot until the loop breaker stops it.
    """
    urls = Urls(_check_server(config), config.http.port)
    errors: list[ConfigProblem] = []
    silent: dict[Path, str] = {}
    users = _users(config)
    _judge_together(config, users, urls)
    for key, host in users:
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
        # The path: a preseed's pxed_done names host and path apart (busybox nc).
        done_path = urlsplit(urls.callback(host.mac, "done")).path
        if host.netboot == "once" and done_path not in rendered.text:
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


def _judge_together(config: Config, users: list[tuple[str, Host]], urls: Urls) -> None:
    """Have each family's checker judge every user's file in one go, so the renders that
    follow find their verdicts cached (one debconf-set-selections run, not one a host)."""
    texts: dict[str, list[str]] = {}
    for _, host in users:
        try:
            draft = _draft(config, host, urls, CHECK_SECRET, 0)
        except TemplateProblem:
            continue  # reported when check_config renders it
        texts.setdefault(draft.rendered.family.name, []).append(draft.masked)
    for name, batch in texts.items():
        _verdicts(FAMILIES[name], batch)


def served(config: Config) -> list[str]:
    """A line per profile with an answer file: its family, the URL its hosts fetch it at,
    its template and how many hosts use it."""
    urls = Urls(_check_server(config), config.http.port)
    lines = []
    for profile in config.profiles.values():
        family = family_of(profile)
        if family is None or profile.answer_file is None:
            continue
        users = sum(host.profile == profile.name for host in config.hosts)
        url = urls.answer(family.path, "<mac>")
        template, folder = profile.answer_file.template, config.path.resolve().parent
        if template.is_relative_to(folder):
            template = template.relative_to(folder)
        lines.append(
            f"profile {profile.name}: {family.title} at {url} from {template}"
            f" ({users} host{'s' if users != 1 else ''})"
        )
    return lines


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
    answer_file = found[profile].answer_file
    return answer_file.template if answer_file is not None else None


def _check_server(config: Config) -> str:
    """An address to render with when checking: the real one if the file gives it."""
    if config.server.address is not None:
        return str(config.server.address)
    if config.http.listen:
        return str(config.http.listen[0])
    return "pxed.invalid"

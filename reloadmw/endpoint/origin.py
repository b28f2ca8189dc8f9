"""Where a browser says a request goes and comes from: ``Host``, ``Origin``, ``Sec-Fetch-Site``.

Two attacks come through the operator's own browser, with its address:

* cross-site request forgery: a page on another site posts a form to the
  endpoint, and the browser adds the Basic credentials it cached for it.
  Browsers say where a ``POST`` comes from (``Origin``, and ``Sec-Fetch-Site``
  in newer ones); one from another site or origin is refused. curl and
  scripts send neither header, and are not affected;
* DNS rebinding: a page on ``evil.example`` points that name at 127.0.0.1 and
  posts to it as its own origin. The request comes from loopback (so it passes
  ``allow_from`` and ``require_https``) but names ``evil.example`` in ``Host``.

So the ``Host`` of a request to the endpoint must be one of ``allow_hosts``;
without that option, a plain-http request must name an IP address or
``localhost`` (over https the certificate already binds the name).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple
from urllib.parse import urlsplit

_LABELS = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CROSS_SITE = ("cross-site", "same-site")  # Sec-Fetch-Site values a browser's own page never sends


class HostPattern(NamedTuple):
    """One ``allow_hosts`` entry: a name (``*`` any), a leading dot for subdomains, a port."""

    host: str
    subdomains: bool
    port: int | None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host == "*" or host == self.host:
            return True
        return self.subdomains and host.endswith("." + self.host)


def host_patterns(allow_hosts: Iterable[str] | str | None) -> tuple[HostPattern, ...] | None:
    """Check ``allow_hosts`` (raising ValueError naming the entry); None when it is not set."""
    if allow_hosts is None:
        return None
    entries = (allow_hosts,) if isinstance(allow_hosts, str) else tuple(allow_hosts)
    patterns = []
    for entry in entries:
        text = entry if isinstance(entry, str) else ""
        parsed = _split(text[1:] if text[:1] == "." else text)
        if parsed is None or (entry != "*" and not _valid_host(parsed[0])):
            raise ValueError(
                f"reloadmw: allow_hosts entry {entry!r} is not a host name; use names as the "
                f"Host header gives them, such as 'app.example.org', 'app.example.org:8443', "
                f"'.example.org' (its subdomains too) or '*' (any)"
            )
        patterns.append(HostPattern(parsed[0], text[:1] == ".", parsed[1]))
    if not patterns:
        raise ValueError(
            "reloadmw: allow_hosts=[] lets no request in; pass None for the default (IP "
            "addresses and localhost over plain http, any name over https) or host names"
        )
    return tuple(patterns)


def host_refusal(environ: Mapping[str, object], allowed: tuple[HostPattern, ...] | None) -> str:
    """Why the ``Host`` of this request is refused (DNS rebinding); empty if it is not."""
    header = environ.get("HTTP_HOST")
    if not isinstance(header, str):
        return ""  # no browser leaves it out
    scheme = str(environ.get("wsgi.url_scheme", "http"))
    parsed = _split(header)
    if parsed is None:
        return f"malformed Host header {header[:60]!r}"
    host, port = parsed
    if allowed is None:
        if scheme == "https" or _local(host):
            return ""
        return (
            f"Host {header[:60]!r} over plain http is neither an IP address nor localhost "
            f"(DNS rebinding?); name it in allow_hosts to allow it"
        )
    if _allowed(host, port or _DEFAULT_PORTS.get(scheme, 80), allowed):
        return ""
    return f"Host {header[:60]!r} is not in allow_hosts"


def cross_site_refusal(
    environ: Mapping[str, object], allowed: tuple[HostPattern, ...] | None
) -> str:
    """Why this POST looks like it came from another site's page; empty if it does not."""
    site = str(environ.get("HTTP_SEC_FETCH_SITE", "")).strip().lower()
    if site in _CROSS_SITE:
        return f"cross-site request (Sec-Fetch-Site: {site})"
    origin = environ.get("HTTP_ORIGIN")
    if not isinstance(origin, str):
        return ""  # curl, scripts and old browsers
    source = _origin(origin)
    target = (
        environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME')}:{environ.get('SERVER_PORT')}"
    )
    if source is not None:
        host, port, default = source
        parsed = _split(str(target))
        if parsed is not None and parsed[0] == host and (parsed[1] or default) == port:
            return ""
        if allowed is not None and _allowed(host, port, allowed):
            return ""  # a proxy in front passes another Host
    return f"cross-site request (Origin {origin[:60]!r} is not {str(target)[:60]!r})"


def _origin(origin: str) -> tuple[str, int, int] | None:
    """Host, port and default port of an ``Origin`` header; None for ``null`` or junk."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or not parts.hostname:
        return None
    return parts.hostname.rstrip("."), port or default, default


def _split(netloc: str) -> tuple[str, int | None] | None:
    """``host[:port]`` (``[v6]:port``) as the lower-case host, without brackets, and the port."""
    text = netloc.strip().lower()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket:
            return None
    else:
        host, colon, port = text.partition(":")
        rest = colon + port
    if rest and not (rest[0] == ":" and rest[1:].isdecimal() and 0 < len(rest) <= 6):
        return None
    host = host[:-1] if host.endswith(".") else host
    return (host, int(rest[1:]) if rest else None) if host else None


def _valid_host(host: str) -> bool:
    return _is_ip(host) or _LABELS.fullmatch(host) is not None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _local(host: str) -> bool:
    return _is_ip(host) or host == "localhost" or host.endswith(".localhost")


def _allowed(host: str, port: int, allowed: tuple[HostPattern, ...]) -> bool:
    return any(pattern.matches(host, port) for pattern in allowed)

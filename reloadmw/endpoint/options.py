"""The endpoint's options, checked without WebOb, and who may reach it.

:func:`endpoint_options` turns the keyword arguments of ``ReloadMiddleware``
into an :class:`EndpointOptions` (or None when there is no password, and so
no endpoint). :mod:`reloadmw.endpoint.router`, which needs WebOb, is imported
only in that case, so ``import reloadmw`` stays standard-library only.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, Union

from .origin import HostPattern, host_patterns
from .passwords import PasswordChecker

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
Scope = Literal["group", "process"]
SCOPES: tuple[Scope, ...] = ("group", "process")
_PATH = re.compile(r"/[A-Za-z0-9._~!$&'()*+,;=:@%/-]+")
# What a server rewrites before PATH_INFO: a path holding one of these never matches.
_UNREACHABLE = re.compile(r"%|//|/\.\.?(/|$)")


@dataclass(frozen=True)
class EndpointOptions:
    """Validated endpoint settings."""

    checker: PasswordChecker
    path: str
    allow_from: tuple[IPNetwork, ...] | None
    allow_hosts: tuple[HostPattern, ...] | None
    require_https: bool
    scope: Scope
    state_dir: str | None

    def allows(self, client: IPAddress | None) -> bool:
        """Is ``client`` inside ``allow_from`` (always, when it is not set)?"""
        if self.allow_from is None:
            return True
        return client is not None and any(client in network for network in self.allow_from)

    def secure_enough(self, scheme: object, client: IPAddress | None) -> bool:
        """``require_https``: https, or plain http from a loopback client."""
        if not self.require_https or scheme == "https":
            return True
        return client is not None and client.is_loopback


def endpoint_options(
    password: str | None,
    endpoint: str,
    allow_from: Iterable[str] | str | None,
    require_https: bool,
    scope: str,
    state_dir: str | os.PathLike[str] | None,
    allow_hosts: Iterable[str] | str | None = None,
) -> EndpointOptions | None:
    """Check every option (raising ValueError naming it); None when the endpoint is off."""
    path = _path(endpoint)
    networks = _networks(allow_from)
    hosts = host_patterns(allow_hosts)
    if not isinstance(require_https, bool):
        raise ValueError(f"reloadmw: require_https={require_https!r} must be True or False")
    if scope not in SCOPES:
        raise ValueError(f"reloadmw: scope={scope!r} is not known; use 'group' or 'process'")
    if state_dir is not None and not isinstance(state_dir, (str, os.PathLike)):
        raise ValueError(f"reloadmw: state_dir={state_dir!r} must be a directory path or None")
    if state_dir is not None and not os.fspath(state_dir):
        raise ValueError(
            "reloadmw: state_dir='' is empty; leave it out for the default, or name a directory"
        )
    if password is None:
        return None
    directory = os.fspath(state_dir) if state_dir is not None else None
    return EndpointOptions(
        PasswordChecker(password), path, networks, hosts, require_https, scope, directory
    )


def client_address(remote_addr: object) -> IPAddress | None:
    """The client's address from ``REMOTE_ADDR`` (IPv4-mapped IPv6 as IPv4)."""
    if not isinstance(remote_addr, str):
        return None
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def describe_client(remote_addr: object, client: IPAddress | None) -> str:
    """The client for log lines: its address, or what ``REMOTE_ADDR`` held instead."""
    if client is not None:
        return str(client)
    if not remote_addr:
        return "an unknown address"
    return f"an address that does not parse ({str(remote_addr)[:60]!r})"


def rate_key(client: IPAddress | None) -> str:
    """Failures are counted per IPv4 address and per IPv6 /64 (one client's usual share)."""
    if client is None:
        return "unknown"
    if isinstance(client, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((client, 64), strict=False))
    return str(client)


def _path(endpoint: object) -> str:
    if not isinstance(endpoint, str) or not _PATH.fullmatch(endpoint):
        raise ValueError(
            f"reloadmw: endpoint={endpoint!r} is not a URL path; pass a path such as "
            f"endpoint='/__reload__' (a leading '/', no query string, not '/' alone)"
        )
    if _UNREACHABLE.search(endpoint):
        raise ValueError(
            f"reloadmw: endpoint={endpoint!r} could never match a request: servers decode "
            f"%-escapes, drop '.' and '..' segments and merge '//' before PATH_INFO; use a "
            f"path of letters, digits and - . _ ~ / such as endpoint='/__reload__'"
        )
    return endpoint


def _networks(allow_from: Iterable[str] | str | None) -> tuple[IPNetwork, ...] | None:
    if allow_from is None:
        return None
    entries = (allow_from,) if isinstance(allow_from, str) else tuple(allow_from)
    if not entries:
        raise ValueError(
            "reloadmw: allow_from=[] lets no client in; pass None to allow any client, or "
            "addresses and networks such as allow_from=['127.0.0.1', '10.0.0.0/8']"
        )
    networks = []
    for entry in entries:
        try:
            networks.append(_unmapped(ipaddress.ip_network(entry.strip(), strict=False)))
        except (ValueError, TypeError, AttributeError):
            raise ValueError(
                f"reloadmw: allow_from entry {entry!r} is not an IP address or network; use "
                f"entries such as '127.0.0.1', '::1' or '10.0.0.0/8'"
            ) from None
    return tuple(networks)


def _unmapped(network: IPNetwork) -> IPNetwork:
    """``::ffff:10.0.0.0/104`` as ``10.0.0.0/8``: clients are compared unmapped."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network

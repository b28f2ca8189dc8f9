"""What the middleware answers on live reload's own URLs, and who sees error text.

``GET /__reloadmw__/live`` is the poll: a small JSON object that the
middleware makes without calling the app. ``GET /__reloadmw__/live.js`` is
the script, a same-origin URL, so that a Content-Security-Policy of
``script-src 'self'; connect-src 'self'`` lets it run without a nonce.

The error text (the broken files, the app's import error) names files on
the server, so it goes only to the clients in ``allow_from``, by default
loopback ones; any other client learns only whether the page is current.
"""

from __future__ import annotations

import functools
import hashlib
import html
import ipaddress
import json
import re
import time
from collections.abc import Iterable, Mapping
from importlib.resources import files
from urllib.parse import quote

from .cadence import PERIOD_MS, next_poll_ms
from .version import Watching

#: The URLs live reload answers itself (below the app's SCRIPT_NAME).
POLL_PATH = "/__reloadmw__/live"
SCRIPT_PATH = "/__reloadmw__/live.js"


@functools.cache
def script() -> bytes:
    """The script's text (``client.js``), read once."""
    return files(__package__).joinpath("client.js").read_bytes()


@functools.cache
def _script_version() -> str:
    return hashlib.sha256(script()).hexdigest()[:16]


_BROKEN = re.compile(r"(?s)(?P<file>.*):(?P<line>\d+|None): (?P<message>.*)")
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class Audience:
    """Which clients see file paths and error text: ``allow_from``, else loopback.

    ``allow_from`` was checked by the middleware already (its errors name it).
    """

    def __init__(self, allow_from: Iterable[str] | str | None) -> None:
        self._networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
        if allow_from is None:
            self._networks = _LOOPBACK
        else:
            entries = [allow_from] if isinstance(allow_from, str) else list(allow_from)
            self._networks = tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries)

    def trusted(self, remote_addr: object) -> bool:
        try:
            client = ipaddress.ip_address(str(remote_addr).split("%", 1)[0])
        except ValueError:
            return False
        mapped = getattr(client, "ipv4_mapped", None)
        return any((mapped or client) in network for network in self._networks)


def next_poll(environ: Mapping[str, object], watching: Watching) -> int:
    """Milliseconds until the page polls (again): see :mod:`.cadence`."""
    return next_poll_ms(environ, watching.start_ns, time.time_ns(), watching.settling())


def poll_answer(
    environ: Mapping[str, object], watching: Watching, failure: str | None, trusted: bool
) -> bytes:
    """The poll's JSON: this process's code version, and (if trusted) what is wrong."""
    answer: dict[str, object] = {
        "version": watching.served(failed=failure is not None),
        "pending": watching.waiting(),
        "next": next_poll(environ, watching),
    }
    if trusted:
        answer["restarting"] = watching.restarting()
        answer["errors"] = [_broken(text) for _, text in sorted(watching.pending.broken.items())]
        answer["failed"] = failure
    return json.dumps(answer).encode()


def _broken(text: str) -> dict[str, object]:
    """``file:line: message`` from the precheck, as its parts."""
    match = _BROKEN.fullmatch(text)
    if match is None:
        return {"file": "", "line": None, "message": text}
    line = match["line"]
    return {"file": match["file"], "line": int(line) if line.isdigit() else None,
            "message": match["message"]}  # fmt: skip


def script_tag(environ: Mapping[str, object], watching: Watching) -> bytes:
    """The tag inserted into a page rendered now."""
    prefix = quote(str(environ.get("SCRIPT_NAME", "")))
    return (
        f'<script src="{prefix}{SCRIPT_PATH}?v={_script_version()}" '
        f'data-poll="{prefix}{POLL_PATH}" data-period="{PERIOD_MS}" '
        f'data-next="{next_poll(environ, watching)}" '
        f'data-token="{watching.page_token()}" data-pending="{int(watching.waiting())}" defer>'
        "</script>"
    ).encode()


def failed_page(page: str, summary: str | None, tag: bytes) -> bytes:
    """The 500 page of an app that failed to load, as HTML that carries the script."""
    error = f"<pre>{html.escape(summary)}</pre>\n" if summary is not None else ""
    return (
        (
            '<!doctype html>\n<html><head><meta charset="utf-8">'
            "<title>500 Internal Server Error</title></head>\n<body>\n"
            f"{error}<pre>{html.escape(page)}</pre>\n"
        ).encode()
        + tag
        + b"\n</body></html>\n"
    )

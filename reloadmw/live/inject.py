"""The response side of live reload: the script into HTML pages, event streams cut short.

:class:`Response` stands between the app and the server for one request. It
holds back a response that may get the script (a ``text/html`` page in an
ASCII-compatible charset, not compressed, not a HEAD, 204, 206 or 304),
reads its body up to :data:`LIMIT` bytes, inserts the tag before the last
``</body>`` and sets ``Content-Length`` to the new length. Everything else
goes to the server as the app made it, byte for byte: other types, a body
without ``</body>``, a longer body (streamed on as it comes), a page sent
through ``write()``.

A ``text/event-stream`` response (server-sent events) ends at its first
chunk after a restart is due, so that it never holds the restart up to the
server's shutdown timeout.
"""

from __future__ import annotations

import codecs
from collections.abc import Generator, Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    Headers = list[tuple[str, str]]

#: Bytes of an HTML body read at most to find ``</body>``; a longer body passes untouched.
LIMIT = 1 << 20
_END = b"</body>"
_UNTOUCHED_STATUS = ("204", "206", "304")


def _header(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def kind(method: object, status: str, headers: Headers) -> str | None:
    """``"html"`` for a page that may get the script, ``"events"`` for an event stream."""
    mime, _, params = (_header(headers, "content-type") or "").partition(";")
    mime = mime.strip().lower()
    if mime == "text/event-stream":
        return "events"
    if mime != "text/html" or method == "HEAD" or status[:3] in _UNTOUCHED_STATUS:
        return None
    if status[:1] == "1" or (_header(headers, "content-encoding") or "identity") != "identity":
        return None
    return "html" if _ascii_compatible(_charset(params)) else None


def _charset(params: str) -> str:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"')
    return "utf-8"


def _ascii_compatible(charset: str) -> bool:
    """True when ``</body>`` and the tag are the same bytes in ``charset`` as in ASCII."""
    try:
        codecs.lookup(charset)
        return "</body><script>".encode(charset) == b"</body><script>"
    except (LookupError, UnicodeError):
        return False


def insert(body: bytes, tag: bytes) -> bytes | None:
    """``body`` with ``tag`` before its last ``</body>``; None without one (or UTF-16 BOM)."""
    if body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None
    at = body.lower().rfind(_END)
    return None if at < 0 else body[:at] + tag + body[at:]


class Response:
    """One response on its way from the app to the server (see the module docstring).

    :param tag: makes the ``<script>`` tag, called when the page is complete.
    :param restart_due: True once the process is about to restart.
    """

    def __init__(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        tag: Callable[[], bytes],
        restart_due: Callable[[], bool],
    ) -> None:
        self._method = environ.get("REQUEST_METHOD")
        self._start_response = start_response
        self._tag = tag
        self._restart_due = restart_due
        self._held: tuple[str, Headers, Any] | None = None  # a page being read
        self._started = False  # the server has the status and headers
        self._writer: Callable[[bytes], object] | None = None  # the server's write()
        self._events = False

    def start(self, status: str, headers: Headers, exc_info: Any = None) -> Callable[[bytes], Any]:
        """The ``start_response`` the app gets."""
        found = kind(self._method, status, headers)
        self._events = found == "events"
        if found == "html" and not self._started:
            self._held = (status, headers, exc_info)
            return self._write
        self._held = None
        self._started = True
        self._writer = self._start_response(status, headers, exc_info)
        return self._writer

    def _write(self, data: bytes) -> None:
        """A page sent through ``write()`` goes out as it is."""
        self._release(None)
        assert self._writer is not None, "the server's start_response gave no write()"
        self._writer(data)

    def _release(self, page: bytes | None) -> None:
        """Send the held status and headers, with ``Content-Length`` fixed for ``page``."""
        held, self._held = self._held, None
        if held is not None:
            status, headers, exc_info = held
            if page is not None and _header(headers, "content-length") is not None:
                headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                headers.append(("Content-Length", str(len(page))))
            self._started = True
            self._writer = self._start_response(status, headers, exc_info)

    def body(self, body: Iterable[bytes]) -> Iterable[bytes]:
        """What the server gets for the app's ``body``."""
        if self._started and not self._events:
            return body  # already passed on: not a page, not a stream
        return _Body(self, body)

    def chunks(self, body: Iterable[bytes]) -> Generator[bytes, None, None]:
        """Read a page whole (up to :data:`LIMIT`) and insert the tag; pass the rest on."""
        read: list[bytes] = []
        size = 0
        chunks = iter(body)
        for chunk in chunks:
            if self._held is None:  # started as something else while iterating
                yield from read
                yield from self._passed(chunk, chunks)
                return
            read.append(chunk)
            size += len(chunk)
            if size > LIMIT:
                self._release(None)
                yield from read
                yield from chunks
                return
        if self._held is None:
            yield from read
            return
        whole = b"".join(read)
        page = insert(whole, self._tag())
        self._release(page)
        if page is not None or whole:
            yield page if page is not None else whole

    def _passed(self, first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
        if not self._events:
            yield first
            yield from rest
            return
        for chunk in chain((first,), rest):
            if self._restart_due():
                return  # the stream ends here; the client reconnects to fresh code
            yield chunk


class _Body:
    """The body the server iterates; ``close()`` reaches the app's body."""

    def __init__(self, response: Response, body: Iterable[bytes]) -> None:
        self._body = body
        self._chunks = response.chunks(body)

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        self._chunks.close()
        close = getattr(self._body, "close", None)
        if close is not None:
            close()

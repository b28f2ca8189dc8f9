"""The password-protected ``/__reload__`` endpoint (needs WebOb).

``ReloadMiddleware(app, password=HASH)`` puts a :class:`Router` in front of
the app. A request whose ``PATH_INFO`` is exactly the endpoint path never
reaches the app: it is answered here, and treated like a login form.

* ``POST`` with the password (HTTP Basic, any user name, or the form field
  ``password`` sent as ``application/x-www-form-urlencoded``) answers 202 and
  restarts once the response is complete, through the same strategy as a
  file change. With ``scope="group"`` it also replaces the group marker, so
  every other process of the app restarts before (with mod_wsgi's
  ``reload_required`` hook) or right after its next request.
* ``GET`` with the password answers 200 with this process's status.
* Anything else is refused, in this order: 403 (client outside
  ``allow_from``, or plain http with ``require_https``), 429 (5 failed
  passwords from the address within 60 s), 405 (other methods), 413 (a body
  over 8 KiB), 415 (a POST body that is not form-urlencoded, without an
  ``Authorization`` header), 401 (missing, malformed or wrong password).

Every other request goes to the app, after one ``stat`` of the group marker.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from webob import Request, Response

from .endpoint_options import EndpointOptions, IPAddress, client_address, rate_key
from .generation import GenerationMarker, default_state_dir
from .middleware import _ThenRestart
from .ratelimit import FailureLimiter
from .startup import process_start_ns

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .interfaces import Strategy
    from .middleware import ReloadMiddleware

log = logging.getLogger("reloadmw")

MAX_BODY = 8192
MAX_AUTHORIZATION = 4096
FORM_TYPE = "application/x-www-form-urlencoded"
ALLOW = "GET, POST"


class Refused(Exception):
    """A request the endpoint turns down: its status, the log reason, extra headers."""

    def __init__(self, status: int, reason: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers


class Router:
    """Answer the endpoint path; send everything else to the app."""

    def __init__(self, middleware: ReloadMiddleware, options: EndpointOptions) -> None:
        self._middleware = middleware
        self._app: WSGIApplication = middleware.app
        self.options = options
        self.path = options.path
        self.limiter = FailureLimiter()
        self.generation: GenerationMarker | None = None
        if options.scope == "group":
            self.generation = GenerationMarker(
                options.state_dir or default_state_dir(),
                f"{middleware.root}\0{options.path}",
                process_start_ns(),
            )
        self._owed = False  # a POST here asked this process to restart

    # -- the request path ---------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == self.path:
            return self._answer(environ, start_response)
        if self.generation is not None and self.generation.claim():
            return self._serve_then_restart(environ, start_response)
        return self._app(environ, start_response)

    def restart_due(self) -> bool:
        """For mod_wsgi's ``reload_required``: must this process restart before the request?"""
        if self._owed:
            # A request reached this process after a POST scheduled its
            # restart: let mod_wsgi replay it in a fresh process.
            return True
        if self.generation is None or not self.generation.claim():
            return False
        log.info(
            "reloadmw (pid=%d): group restart requested through %s (marker %r); mod_wsgi "
            "restarts this daemon process before the request",
            os.getpid(),
            self.path,
            self.generation.path,
        )
        return True

    def _serve_then_restart(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        middleware = self._middleware
        if not middleware._claim_restart():
            return self._app(environ, start_response)  # a restart is already on its way
        strategy = middleware._strategy_for(environ)
        reason = [f"group restart requested through {self.path}"]
        log.info(
            "reloadmw (pid=%d): group restart requested through %s by another process; "
            "restarting (%s) after this request",
            os.getpid(),
            self.path,
            strategy.name,
        )
        return middleware._serve_then_restart(self._app, environ, start_response, strategy, reason)

    # -- the endpoint -------------------------------------------------------

    def _answer(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        client = client_address(environ.get("REMOTE_ADDR"))
        try:
            self._admit(request, client)
            if request.method == "GET":
                return _json(200, self._status(environ))(environ, start_response)
            return self._schedule(request, client, start_response)
        except Refused as refusal:
            if refusal.status != 429:  # the block itself was logged when it began
                log.warning(
                    "reloadmw (pid=%d): refused %.20r %s from %s: %s",
                    os.getpid(),
                    request.method,
                    self.path,
                    client if client is not None else "an unknown address",
                    refusal.reason,
                )
            body = {"error": _PUBLIC_REASONS.get(refusal.status, "refused")}
            return _json(refusal.status, body, refusal.headers)(environ, start_response)

    def _admit(self, request: Request, client: IPAddress | None) -> None:
        """Raise Refused unless the request carries the right password."""
        options = self.options
        if not options.allows(client):
            raise Refused(403, "client address not in allow_from")
        if not options.secure_enough(request.environ.get("wsgi.url_scheme"), client):
            raise Refused(403, "plain http from a non-loopback client and require_https=True")
        key = rate_key(client)
        retry_after = self.limiter.retry_after(key)
        if retry_after is not None:
            raise Refused(429, "too many failed passwords", [("Retry-After", str(retry_after))])
        if request.method not in ("GET", "POST"):
            raise Refused(405, "method not allowed", [("Allow", ALLOW)])
        length = _content_length(request.environ)
        if length is not None and length > MAX_BODY:
            raise Refused(413, f"body of {length} bytes is over {MAX_BODY}")
        candidate, problem = self._credentials(request, length)
        if self.options.checker.verify(candidate):
            self.limiter.forget(key)
            return
        if self.limiter.fail(key):
            log.warning(
                "reloadmw (pid=%d): %d failed passwords from %s within %gs; refusing it (429) "
                "for %gs",
                os.getpid(),
                self.limiter.limit,
                key,
                self.limiter.window,
                self.limiter.window,
            )
        raise Refused(401, problem, [("WWW-Authenticate", 'Basic realm="reloadmw"')])

    def _credentials(self, request: Request, length: int | None) -> tuple[str | None, str]:
        """The password sent (None if none), and what was wrong if it is not right."""
        header = request.environ.get("HTTP_AUTHORIZATION")
        if request.method == "POST":
            body = _read_body(request.environ, length)
            if header is None:
                if body and _media_type(request.environ) != FORM_TYPE:
                    raise Refused(415, f"form post that is not {FORM_TYPE}")
                return _form_password(body)
        if header is None:
            return None, "no password"
        return _basic_password(header)

    def _schedule(
        self, request: Request, client: IPAddress | None, start_response: StartResponse
    ) -> Iterable[bytes]:
        environ = request.environ
        strategy = self._middleware._strategy_for(environ)
        if self.generation is not None:
            try:
                self.generation.bump()
            except OSError as error:
                log.error(
                    "reloadmw (pid=%d): cannot write the group restart marker in %r (%s); "
                    "nothing restarted. Make the directory writable for uid %d or pass "
                    "state_dir=",
                    os.getpid(),
                    self.generation.state_dir,
                    error.strerror,
                    os.geteuid(),
                )
                failure = {"error": "cannot write the group restart marker; see the server log"}
                return _json(503, failure)(environ, start_response)
        self._owed = True
        log.info(
            "reloadmw (pid=%d): restart of %s requested through %s by %s; restarting (%s) "
            "after this response",
            os.getpid(),
            "the process group" if self.generation is not None else "this process",
            self.path,
            client,
            strategy.name,
        )
        answer = {
            "restart": "scheduled",
            "pid": os.getpid(),
            "scope": self.options.scope,
            "strategy": strategy.name,
        }
        body = _json(202, answer)(environ, start_response)
        return _ThenRestart(body, lambda: self._restart_after_post(strategy))

    def _restart_after_post(self, strategy: Strategy) -> None:
        if self._middleware._reload_requested:
            return  # mod_wsgi's hook has already restarted this process
        if self._middleware._claim_restart():
            self._middleware._fire(strategy, [f"restart requested through {self.path}"])
        if not strategy.exits_process:
            self._owed = False

    def _status(self, environ: WSGIEnvironment) -> dict[str, Any]:
        middleware = self._middleware
        return {
            "pid": os.getpid(),
            "process_group": environ.get("mod_wsgi.process_group"),
            "strategy": self._middleware._strategy_for(environ).name,
            "scope": self.options.scope,
            "watched_files": len(middleware._monitor),
            "last_check": middleware.last_check,
            "pending_changes": sorted(middleware._pending),
            "restarts": middleware.restarts,
        }


_PUBLIC_REASONS = {
    401: "a valid password is required",
    403: "forbidden",
    405: "method not allowed; use GET or POST",
    413: f"request body over {MAX_BODY} bytes",
    415: f"send the password with HTTP Basic or in a {FORM_TYPE} body",
    429: "too many failed passwords; retry later",
}


def _json(status: int, body: dict[str, Any], headers: Sequence[tuple[str, str]] = ()) -> Response:
    response = Response(status=status, json_body=body)
    response.cache_control = "no-store"
    for name, value in headers:
        response.headers[name] = value
    return response


def _content_length(environ: WSGIEnvironment) -> int | None:
    """The declared body length; None when absent or not a number (the body is then unknown)."""
    value = str(environ.get("CONTENT_LENGTH") or "").strip()
    if not (value.isdecimal() and value.isascii()):
        return None
    return int(value) if len(value) < 19 else MAX_BODY + 1  # int() refuses 4300+ digits


def _media_type(environ: WSGIEnvironment) -> str:
    return str(environ.get("CONTENT_TYPE", "")).split(";", 1)[0].strip().lower()


def _read_body(environ: WSGIEnvironment, length: int | None) -> bytes:
    """Read at most ``MAX_BODY`` bytes; raise 413 as soon as a chunked body goes past it."""
    stream = environ.get("wsgi.input")
    if stream is None or (length is None and not environ.get("wsgi.input_terminated")):
        return b""  # WSGI: without a length the input may not be read
    wanted = MAX_BODY + 1 if length is None else length
    chunks: list[bytes] = []
    received = 0
    while received < wanted:
        chunk = stream.read(wanted - received)
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    if received > MAX_BODY:
        raise Refused(413, f"chunked body over {MAX_BODY} bytes")
    return b"".join(chunks)


def _form_password(body: bytes) -> tuple[str | None, str]:
    try:
        fields = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, errors="strict", max_num_fields=32
        )
    except (UnicodeDecodeError, ValueError):
        return None, "malformed form body"
    passwords = [value for name, value in fields if name == "password"]
    if len(passwords) != 1:
        return None, "no password" if not passwords else "several password fields"
    return passwords[0], "wrong password"


def _basic_password(header: str) -> tuple[str | None, str]:
    if len(header) > MAX_AUTHORIZATION:
        return None, f"Authorization header over {MAX_AUTHORIZATION} characters"
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None, "Authorization header is not Basic"
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None, "Authorization header is not base64 of UTF-8 text"
    _, colon, password = decoded.partition(":")
    if not colon:
        return None, "Authorization header has no ':' between user and password"
    return password, "wrong password"

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
  ``allow_from``, plain http with ``require_https``, a ``Host`` outside
  ``allow_hosts``, a ``POST`` from another site's page), 429 (5 failed
  passwords from the address within 60 s), 405 (other methods), 413 (a body
  over 8 KiB), 415 (a POST body that is not form-urlencoded, without an
  ``Authorization`` header), 400 (a body that could not be read), 401
  (missing, malformed or wrong password); 503 when the state directory cannot
  be used (:mod:`~reloadmw.endpoint.admission` holds the checks).

Every other request goes to the app, after one ``stat`` of the group marker.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Callable, Optional, TypedDict

from webob import Request
from webob.dec import wsgify

from ..logs import log
from ..watch.start_time import process_start_ns
from .admission import admit
from .credentials import Refused, json_answer
from .marker import GenerationMarker
from .options import EndpointOptions, IPAddress, Scope, client_address, describe_client
from .ratelimit import FailureLimiter
from .statedir import SHARED, StateDir, StateDirError, default_state_dir, described, file_name

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from ..restart.restarter import Restarter


class WatchStatus(TypedDict):
    """What the middleware tells the status answer about watching."""

    watched_files: int
    last_check: Optional[float]  # noqa: UP045 (a TypedDict field is evaluated on 3.9)
    pending_changes: list[str]


class Status(WatchStatus):
    """The JSON body of a ``GET`` with the right password."""

    pid: int
    process_group: object
    strategy: str
    scope: Scope
    restarts: int


class Router:
    """Answer the endpoint path; send everything else to the app.

    :param app: the app every other request goes to.
    :param restarter: this process's restart owner.
    :param options: the checked endpoint options.
    :param identity: names the app's group marker (the same in every process).
    :param watching: the middleware's part of the status answer.
    """

    def __init__(
        self,
        app: WSGIApplication,
        restarter: Restarter,
        options: EndpointOptions,
        identity: str,
        watching: Callable[[], WatchStatus],
    ) -> None:
        self._app = app
        self._restarter = restarter
        self._watching = watching
        self.options = options
        self.path = options.path
        self.generation: GenerationMarker | None = None
        state = _state_dir(options.state_dir) if SHARED else None
        shared = (state, file_name(identity, "failures")) if state is not None else None
        self.limiter = FailureLimiter(shared=shared)
        if options.scope == "group" and state is not None:
            self.generation = GenerationMarker(state, identity, process_start_ns())

    # -- the request path ---------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == self.path:
            return self._answer(environ, start_response)
        if self.generation is not None and self.generation.claim():
            return self._serve_then_restart(environ, start_response)
        return self._app(environ, start_response)

    def restart_due(self) -> bool:
        """For mod_wsgi's ``reload_required``: must this process restart before the request?"""
        if self._restarter.scheduled:
            # A request reached this process after a POST scheduled its
            # restart: let mod_wsgi replay it in a fresh process.
            return True
        if self.generation is None or not self.generation.claim():
            return False
        log.info(
            "group restart requested through %s (marker %r); mod_wsgi restarts this daemon "
            "process before the request",
            self.path,
            self.generation.path,
        )
        return True

    def _serve_then_restart(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        restarter = self._restarter
        if not restarter.claim():
            return self._app(environ, start_response)  # a restart is already on its way
        strategy = restarter.strategy_for(environ)
        reason = [f"group restart requested through {self.path}"]
        log.info(
            "group restart requested through %s by another process; restarting (%s) after "
            "this request",
            self.path,
            strategy.name,
        )
        return restarter.serve_then_restart(self._app, environ, start_response, strategy, reason)

    # -- the endpoint -------------------------------------------------------

    @wsgify
    def _answer(self, request: Request) -> WSGIApplication:
        client = client_address(request.remote_addr)
        try:
            admit(request, client, self.options, self.limiter)
            if request.method == "GET":
                return json_answer(200, self._status(request.environ))
            return self._schedule(request, client)
        except Refused as refusal:
            if refusal.status != 429:  # the block itself was logged when it began
                log.log(
                    logging.ERROR if refusal.status == 503 else logging.WARNING,
                    "refused %.20r %s from %s: %s",
                    request.method,
                    self.path,
                    describe_client(request.remote_addr, client),
                    refusal.reason,
                )
            return refusal.answer()

    def _schedule(self, request: Request, client: IPAddress | None) -> WSGIApplication:
        restarter = self._restarter
        strategy = restarter.strategy_for(request.environ)
        if self.generation is not None:
            try:
                self.generation.bump()
            except StateDirError as error:
                log.error(
                    "cannot write the group restart marker, nothing restarted: %s",
                    described(error),
                )
                failure = {"error": "cannot write the group restart marker; see the server log"}
                return json_answer(503, failure)
        log.info(
            "restart of %s requested through %s by %s; restarting (%s) after this response",
            "the process group" if self.generation is not None else "this process",
            self.path,
            describe_client(request.remote_addr, client),
            strategy.name,
        )
        answer = json_answer(
            202,
            {
                "restart": "scheduled",
                "pid": os.getpid(),
                "scope": self.options.scope,
                "strategy": strategy.name,
            },
        )
        reason = f"restart requested through {self.path}"

        def then_restart(
            environ: WSGIEnvironment, start_response: StartResponse
        ) -> Iterable[bytes]:
            return restarter.schedule(answer(environ, start_response), strategy, reason)

        return then_restart

    def _status(self, environ: WSGIEnvironment) -> Status:
        watching = self._watching()
        return {
            "pid": os.getpid(),
            "process_group": environ.get("mod_wsgi.process_group"),
            "strategy": self._restarter.strategy_for(environ).name,
            "scope": self.options.scope,
            "watched_files": watching["watched_files"],
            "last_check": watching["last_check"],
            "pending_changes": watching["pending_changes"],
            "restarts": self._restarter.count,
        }


def _state_dir(configured: str | None) -> StateDir:
    """The checked state directory; a default one someone else took is reported, not fatal."""
    state = StateDir(configured or default_state_dir())
    try:
        state.check()
    except StateDirError as error:
        if configured is not None:
            raise
        log.error("%s. Until then the endpoint answers 503 to restarts.", described(error))
    return state

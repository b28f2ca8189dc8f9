"""The WSGI middleware: check for changed source lazily, restart after the response."""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Callable

from . import restart as strategies
from .backends import make_monitor
from .endpoint_options import endpoint_options
from .gate import Gate
from .loader import lazy_app
from .modules import ModuleFiles
from .patterns import DEFAULT_IGNORE, IgnoreRules, parse_track
from .precheck import forget_bytecode, syntax_error
from .startup import process_start_ns

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .endpoint import Router
    from .interfaces import Strategy

log = logging.getLogger("reloadmw")
_monotonic = time.monotonic


class ReloadMiddleware(Gate):
    """Restart the process serving ``app`` when one of its source files changes.

    On a request, at most once per ``interval`` seconds, the middleware looks
    for changed files: the source of every imported module outside the
    standard library, plus whatever ``track`` names. When it finds a change,
    that request is still served by the current code and the restart is sent
    once its response is complete (after the server calls ``close()``).

    Under mod_wsgi daemon mode, also export the hook so that mod_wsgi restarts
    the process *before* the request and the first response is already new::

        application = ReloadMiddleware(application)
        reload_required = application.reload_required

    :param app: the WSGI application to wrap, or an import string such as
        ``"mysite.wsgi:application"``: then the app is imported on the first
        request, and if that import raises the process answers 500 and
        restarts once a watched file changes, instead of being stranded.
    :param interval: seconds between two checks; 0 checks on every request.
    :param track: extra files, directories (watched recursively, new files
        count) or globs (``static/**/*.css``). Relative paths are taken from
        ``root``.
    :param ignore: patterns never watched: a pattern without ``/`` matches
        the file name, one with ``/`` the end of the path.
    :param restart: ``"auto"`` (choose from the server), a strategy name, or
        a ``callable(reason)`` that receives the changed paths.
    :param quiet: restart only once no watched file has changed for this many
        seconds, so that a burst of saves (``git checkout``) is one restart.
    :param precheck: do not restart into a ``.py`` file that fails to compile;
        keep serving and restart once it compiles.
    :param watch_site_packages: also watch installed packages.
    :param backend: ``"auto"`` or ``"stat"``.
    :param root: directory that relative ``track`` paths start from; by
        default the directory of the file that creates the middleware (the
        WSGI script), else the current directory.
    :param factory: ``app`` (a callable or an import string) is a function
        without arguments that returns the WSGI app; it is called on the
        first request, with the same protection as an import string.
    :param debug: show the traceback of an app that failed to load on its
        500 page (it is always logged).
    :param password: turn on the restart endpoint, protected by this hash
        from ``python -m reloadmw hash-password`` (plain text works, with a
        warning). Without it the endpoint path goes to the app. Needs WebOb.
    :param endpoint: the endpoint's path, matched exactly against ``PATH_INFO``.
    :param allow_from: IP addresses or networks that may use the endpoint
        (403 for others, before any password check); default any.
    :param require_https: refuse (403) plain http to the endpoint, except
        from loopback clients.
    :param scope: ``"group"``: a POST restarts every process of the app
        (through a marker file); ``"process"``: only the one that got it.
    :param state_dir: directory of the group marker; default
        ``<tempdir>/reloadmw-<uid>``.

    .. warning:: Restarting on every save is a development tool. In
       production, leave it off or protect the manual endpoint.
    """

    def __init__(
        self,
        app: WSGIApplication | str,
        interval: float = 1.0,
        track: Iterable[str] | str = (),
        ignore: Iterable[str] | str = DEFAULT_IGNORE,
        restart: str | Callable[[Sequence[str]], object] = "auto",
        *,
        quiet: float = 0.2,
        precheck: bool = True,
        watch_site_packages: bool = False,
        backend: str = "auto",
        root: str | None = None,
        factory: bool = False,
        debug: bool = False,
        password: str | None = None,
        endpoint: str = "/__reload__",
        allow_from: Iterable[str] | str | None = None,
        require_https: bool = False,
        scope: str = "group",
        state_dir: str | None = None,
    ) -> None:
        self.interval = _seconds("interval", interval)
        self.quiet = _seconds("quiet", quiet)
        self.precheck = precheck
        # Validated before the monitor opens any OS resource.
        self.app = lazy_app(app, factory, debug, self._watch_failed_load)
        options = endpoint_options(password, endpoint, allow_from, require_https, scope, state_dir)
        self._strategy = strategies.resolve(restart)
        self.root = os.path.abspath(root if root is not None else _caller_dir())
        self._ignored = IgnoreRules(_patterns("ignore", ignore))
        self._monitor = make_monitor(backend, process_start_ns(), self._ignored)
        self._modules = ModuleFiles(watch_site_packages, self._ignored)
        self._dispatch: WSGIApplication = self.app

        self._lock = threading.Lock()
        self._next_check = 0.0  # monotonic time of the next due check
        self._pending: dict[str, float] = {}  # changed path -> wall time of the change
        self._unchecked: set[str] = set()  # changed .py files not yet compiled
        self._broken: dict[str, str] = {}  # .py file -> its syntax error
        self._claimed = False  # a restart is on its way for the pending changes
        self._reload_requested = False
        self._hooked = False  # mod_wsgi calls reload_required before each request
        self.restarts = 0
        self.last_check: float | None = None
        self._router: Router | None = None
        if options is not None:
            from .endpoint import Router  # needs WebOb: imported only with a password

            self._router = self._dispatch = Router(self, options)

        for pattern in _patterns("track", track):
            self.track(pattern)
        self.check()
        log.info(
            "reloadmw (pid=%d): watching %d files with the %s backend, checking at most every %gs",
            os.getpid(),
            len(self._monitor),
            self._monitor.name,
            self.interval,
        )

    # -- the request path ---------------------------------------------------

    # A request goes through Gate.__call__ (in C when built): straight to
    # self._dispatch before self._next_check, else to _checked_call.

    def _checked_call(
        self, environ: WSGIEnvironment, start_response: StartResponse
    ) -> Iterable[bytes]:
        if self._hooked:
            # reload_required already checked before this request. A change seen
            # here instead would restart only after it, while requests arriving
            # meanwhile pass the hook (nothing pending yet) and get old code.
            return self._dispatch(environ, start_response)
        reason = self._check_due()
        if reason is None:
            return self._dispatch(environ, start_response)
        strategy = self._strategy_for(environ)
        log.info(
            "reloadmw (pid=%d): change detected in %s; %s after this request",
            os.getpid(),
            strategies.describe(reason),
            f"restarting ({strategy.name})"
            if strategy.exits_process
            else f"calling the {strategy.name!r} restart strategy",
        )
        return self._serve_then_restart(self._dispatch, environ, start_response, strategy, reason)

    def reload_required(self, resource: object = None) -> bool:
        """mod_wsgi's daemon-mode hook: True makes mod_wsgi restart before the request."""
        self._hooked = True
        if self._reload_requested:
            return True
        if self._router is not None and self._router.restart_due():
            self._reload_requested = True
            self.restarts += 1
            return True
        if _monotonic() < self._next_check:
            return False
        reason = self._check_due()
        if reason is None:
            return False
        self._reload_requested = True
        self.restarts += 1
        log.info(
            "reloadmw (pid=%d): change detected in %s; mod_wsgi restarts this daemon "
            "process before the request",
            os.getpid(),
            strategies.describe(reason),
        )
        return True

    # -- checking -----------------------------------------------------------

    def check(self) -> list[str]:
        """Look for changes now, whatever the interval; return the changed paths.

        The restart itself is left to the next request, which sends it once
        its response is complete.
        """
        with self._lock:
            return self._scan()

    def track(self, pattern: str) -> None:
        """Also watch a file, a directory (recursively) or a glob, from now on."""
        watched = parse_track(pattern, self.root)
        with self._lock:
            if isinstance(watched, str):
                self._monitor.add_files([watched])
            else:
                self._monitor.add_tree(watched)

    def close(self) -> None:
        """Stop watching and release the monitor's OS resources (an inotify descriptor).

        Needed only by code that builds many middlewares in one process, such
        as tests; after it, no change is detected any more.
        """
        with self._lock:
            self._next_check = math.inf
            self._monitor.close()

    def _check_due(self) -> list[str] | None:
        """Scan if no other thread is; return the reason if this request must restart."""
        if not self._lock.acquire(blocking=False):
            return None  # another thread is scanning; do not wait for it
        try:
            now = _monotonic()
            if now < self._next_check:
                return None
            self._next_check = now + self.interval
            self._scan()
            return self._claim(now)
        except Exception:
            log.exception(
                "reloadmw (pid=%d): checking for changes failed; still serving", os.getpid()
            )
            return None
        finally:
            self._lock.release()

    def _scan(self) -> list[str]:
        new_modules = self._modules.new_files()
        if new_modules:
            self._monitor.add_files(new_modules)
        changes = self._monitor.poll()
        self.last_check = time.time()
        if changes:
            self._pending.update(changes)
            self._unchecked.update(p for p in changes if p.endswith(".py"))
        return list(changes)

    def _claim(self, now: float) -> list[str] | None:
        """Take the pending changes as this request's restart, once they have settled."""
        if not self._pending or self._claimed:
            return None
        unsettled = self.quiet - (time.time() - max(self._pending.values()))
        if unsettled > 0:
            self._next_check = min(self._next_check, now + unsettled)
            return None
        if self.precheck and not self._all_compile():
            return None
        reason = list(self._pending)
        forget_bytecode(reason)
        self._pending.clear()
        self._claimed = True
        return reason

    def _all_compile(self) -> bool:
        for path in self._unchecked:
            error = syntax_error(path)
            if error is None:
                self._broken.pop(path, None)
            elif self._broken.get(path) != error:
                self._broken[path] = error
                log.warning(
                    "reloadmw (pid=%d): not restarting: %s. Still serving the current code; "
                    "the restart follows once the file compiles",
                    os.getpid(),
                    error,
                )
        self._unchecked.clear()
        return not self._broken

    def _watch_failed_load(self, files: Sequence[str]) -> None:
        """Watch the files in the traceback of an app that failed to load."""
        wanted = [path for path in files if self._modules.wanted(path)]
        with self._lock:
            self._monitor.add_files(wanted)

    # -- restarting ---------------------------------------------------------

    def _strategy_for(self, environ: WSGIEnvironment) -> Strategy:
        return self._strategy or strategies.choose(environ)

    def _claim_restart(self) -> bool:
        """Claim a restart not caused by a file change, unless one is already on its way."""
        with self._lock:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def _serve_then_restart(
        self,
        app: WSGIApplication,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        strategy: Strategy,
        reason: Sequence[str],
    ) -> Iterable[bytes]:
        """Serve the request with ``app``; restart once its response is complete, or it raised."""
        try:
            body = app(environ, start_response)
        except BaseException:
            self._fire(strategy, reason)
            raise
        return _ThenRestart(body, lambda: self._fire(strategy, reason))

    def _fire(self, strategy: Strategy, reason: Sequence[str]) -> None:
        self.restarts += 1
        try:
            strategy(reason)
        except Exception:
            log.exception(
                "reloadmw (pid=%d): restart strategy %r failed; still serving the current "
                "code and still checking for changes",
                os.getpid(),
                strategy.name,
            )
        else:
            if strategy.exits_process:
                return  # stay claimed: never signal a process twice
        self._claimed = False


class _ThenRestart:
    """Pass the response body through; call ``after`` once the server closes it."""

    def __init__(self, body: Iterable[bytes], after: Callable[[], None]) -> None:
        self._body = body
        self._after: Callable[[], None] | None = after

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        after, self._after = self._after, None
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if after is not None:
                after()


def _seconds(option: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"reloadmw: {option}={value!r} is not a number of seconds; pass a float such "
            f"as {option}=1.0"
        )
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"reloadmw: {option}={value!r} must be a finite number of seconds >= 0")
    return float(value)


def _patterns(option: str, value: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    elif not isinstance(value, Iterable):
        raise ValueError(
            f"reloadmw: {option}={value!r} is not a list of paths or patterns; pass "
            f"a string or a list such as {option}=('*.swp',)"
        )
    patterns = tuple(value)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ValueError(
                f"reloadmw: {option} entry {pattern!r} is not a string; pass paths or "
                f"patterns such as {option}=('*.swp',)"
            )
    return patterns


def _caller_dir() -> str:
    """Directory of the file that created the middleware (the WSGI script)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("reloadmw"):
        frame = frame.f_back  # type: ignore[assignment]
    path = frame.f_globals.get("__file__") if frame is not None else None
    return os.path.dirname(os.path.abspath(path)) if isinstance(path, str) else os.getcwd()

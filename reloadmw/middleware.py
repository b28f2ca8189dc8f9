"""The WSGI middleware: check for changed source lazily, restart after the response."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Callable, Literal

from .app_loader import AppLoader
from .endpoint.options import Scope, endpoint_options
from .gate import Gate
from .live.version import Watching
from .live.wrapper import LiveReload
from .load_taint import LoadTaint
from .logs import describe, log
from .options import caller_dir, patterns, seconds
from .pending import PendingChanges
from .restart.registry import resolve
from .restart.restarter import Restarter
from .restart.strategy import StrategyName
from .scanner import Scanner
from .watch.modules import ModuleFiles
from .watch.monitor import Backend, make_monitor
from .watch.patterns import DEFAULT_IGNORE, IgnoreRules, parse_track
from .watch.start_time import process_start_ns

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from .endpoint.router import Router

_monotonic = time.monotonic


class ReloadMiddleware(Gate):
    """Restart the process serving ``app`` when one of its source files changes.

    Checks run on requests, at most once per ``interval``: the sources of the
    imported modules outside the standard library, and what ``track`` names. The
    request that finds a change is served, then the process restarts; under
    mod_wsgi daemon mode, export ``reload_required`` for a restart before it.

    :param app: the WSGI app, or an import string such as ``"mysite.wsgi:application"``,
        loaded when the middleware is made: an app whose import fails then answers 500.
    :param interval: seconds between two checks; ``0`` checks on every request.
    :param track: more files, directories (recursively; a new file counts) or globs such
        as ``static/**/*.css`` to watch, relative to ``root``.
    :param ignore: file-name or path-tail patterns that are never watched.
    :param restart: ``"auto"`` (from the request's WSGI environ), a strategy name
        (``mod_wsgi-daemon``, ``mod_wsgi-embedded``, ``apache-windows``, ``gunicorn``,
        ``uwsgi``, ``exec``, ``hupper``) or a ``callable(reason)`` given the changed paths.
    :param quiet: restart once no watched file has changed for this many seconds, so that
        a burst of saves (``git checkout``) is one restart.
    :param precheck: do not restart into a changed ``.py`` file that does not compile;
        log its error once and keep serving.
    :param watch_site_packages: also watch installed packages (editable ones always are).
    :param backend: ``"auto"`` (inotify on Linux, with stat for network and VM-shared mounts;
        stat elsewhere), ``"inotify"`` or ``"stat"``; ``RELOADMW_BACKEND`` overrides ``"auto"``.
    :param root: where relative ``track`` paths start; default the WSGI script's directory.
    :param factory: ``app`` is a function without arguments that returns the WSGI app.
    :param debug: show the traceback of an app that failed to load on its 500 page.
    :param password: a hash from ``python -m reloadmw hash-password``: turns on the
        ``/__reload__`` endpoint (needs WebOb); ``None``, the default: no endpoint.
    :param endpoint: the endpoint's path, compared exactly with ``PATH_INFO``.
    :param allow_from: addresses or networks (``"10.0.0.0/8"``) that may use the
        endpoint; others get 403. ``None``: any client.
    :param allow_hosts: the ``Host`` names the endpoint answers to (``"app.example.org"``,
        ``".example.org"`` with its subdomains); others get 403. ``None``: any name over
        https, only IP addresses and ``localhost`` over plain http (DNS rebinding).
    :param require_https: refuse plain http to the endpoint, except from loopback.
    :param scope: what a POST to the endpoint restarts: ``"group"``, every process of
        the app; ``"process"``, the one that got it.
    :param state_dir: directory of the group restart marker and the shared failure count;
        default ``$XDG_RUNTIME_DIR/reloadmw``, else ``<tempdir>/reloadmw-<uid>``.
    :param live_reload: open HTML pages reload themselves once new code serves and show a
        broken save (:doc:`live-reload`); ``allow_from`` (default: loopback) sees errors.

    .. warning:: Restarting on every save is a development tool. In
       production, leave it off or protect the manual endpoint.
    """

    def __init__(
        self,
        app: WSGIApplication | str,
        interval: float = 1.0,
        track: Iterable[str] | str = (),
        ignore: Iterable[str] | str = DEFAULT_IGNORE,
        restart: Literal["auto"] | StrategyName | Callable[[Sequence[str]], object] = "auto",
        *,
        quiet: float = 0.2,
        precheck: bool = True,
        watch_site_packages: bool = False,
        backend: Backend = "auto",
        root: str | None = None,
        factory: bool = False,
        debug: bool = False,
        password: str | None = None,
        endpoint: str = "/__reload__",
        allow_from: Iterable[str] | str | None = None,
        allow_hosts: Iterable[str] | str | None = None,
        require_https: bool = False,
        scope: Scope = "group",
        state_dir: str | None = None,
        live_reload: bool = False,
    ) -> None:
        self.interval = seconds("interval", interval)
        self._pending = pending = PendingChanges(seconds("quiet", quiet), precheck)
        self._loader = AppLoader(
            app, factory, debug, lambda files: scanner.watch_failed_load(files)
        )
        options = endpoint_options(
            password, endpoint, allow_from, require_https, scope, state_dir, allow_hosts
        )
        self._restarter = Restarter(resolve(restart))
        self.root = os.path.abspath(root if root is not None else caller_dir())
        tracking = [parse_track(pattern, self.root) for pattern in patterns("track", track)]
        ignored = IgnoreRules(patterns("ignore", ignore))
        # Every option is checked: from here on OS resources are opened, and the app loaded.
        start = process_start_ns()
        monitor = make_monitor(backend, start, ignored)
        self._scanner = scanner = Scanner(
            monitor, ModuleFiles(watch_site_packages, ignored), pending
        )
        self._next_check = 0.0  # monotonic time of the next due check
        self._hooked = False  # mod_wsgi calls reload_required before each request
        for watched in tracking:
            scanner.watch(watched)
        tracked = len(monitor)
        self.app = self._loader.load()  # the import string or factory: loaded here, up front
        self._taint = LoadTaint(pending, self._restarter, scanner.lock, self._scan)
        self._dispatch: WSGIApplication = self.app
        if live_reload:
            due = (self.check, lambda: setattr(self, "_next_check", 0.0))
            watching = Watching(start, monitor, pending, self._restarter, *due)
            self._dispatch = LiveReload(self.app, watching, self._loader, allow_from)
        self._router: Router | None = None
        if options is not None:
            from .endpoint.router import Router  # needs WebOb: imported only with a password

            identity = f"{self.root}\0{options.path}"
            self._router = Router(
                self._dispatch, self._restarter, options, identity, scanner.status
            )
            self._dispatch = self._router
        registered = scanner.register(self._loader.framework)
        self.check()
        scanner.log_start(tracked, registered, self.interval)

    @property
    def restarts(self) -> int:
        """How many restarts this process started (or asked mod_wsgi for)."""
        return self._restarter.count

    @property
    def quiet(self) -> float:
        """The ``quiet`` option: seconds without a change before the restart."""
        return self._pending.quiet

    @property
    def precheck(self) -> bool:
        """The ``precheck`` option: hold the restart while a changed file does not compile."""
        return self._pending.precheck

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
        restarter = self._restarter
        strategy = restarter.strategy_for(environ)
        log.info(
            "change detected in %s; %s after this request",
            describe(reason),
            f"restarting ({strategy.name})"
            if strategy.exits_process
            else f"calling the {strategy.name!r} restart strategy",
        )
        return restarter.serve_then_restart(
            self._dispatch, environ, start_response, strategy, reason
        )

    def reload_required(self, resource: object = None) -> bool:
        """mod_wsgi's daemon-mode hook: True makes mod_wsgi restart before the request."""
        self._hooked = True
        restarter = self._restarter
        if restarter.requested:
            return True
        if self._router is not None and self._router.restart_due():
            restarter.request_from_hook()
            return True
        if _monotonic() < self._next_check and not self._taint.tainted:
            return False
        reason = self._check_due()
        if reason is None:  # a tainted process serves nothing: it restarts once quiet
            return self._taint.tainted and self._taint.restart_when_quiet()
        restarter.request_from_hook()
        log.info(
            "change detected in %s; mod_wsgi restarts this daemon process before the request",
            describe(reason),
        )
        return True

    # -- checking -----------------------------------------------------------

    def check(self) -> list[str]:
        """Look for changes now, whatever the interval; return the changed paths.

        The restart itself is left to the next request, which sends it once
        its response is complete.
        """
        with self._scanner.lock:
            return self._scan()

    @property
    def last_check(self) -> float | None:
        """``time.time()`` when the last check ended; None before the first."""
        return self._scanner.last_check

    def track(self, pattern: str) -> None:
        """Also watch a file, a directory (recursively) or a glob, from now on."""
        self._scanner.watch(parse_track(pattern, self.root))

    def close(self) -> None:
        """Stop watching and release the monitor's OS resources (an inotify descriptor).

        Needed only by code that builds many middlewares in one process, such
        as tests; after it, no change is detected any more.
        """
        self._next_check = math.inf
        self._scanner.close()

    def _check_due(self) -> list[str] | None:
        """Scan if no other thread is; return the reason if this request must restart."""
        lock = self._scanner.lock
        if not lock.acquire(blocking=False):
            return None  # another thread is scanning; do not wait for it
        try:
            now = _monotonic()
            if now < self._next_check:
                return None
            self._next_check = now + self.interval
            self._scan()
            return self._claim(now)
        except Exception:
            log.exception("checking for changes failed; still serving")
            return None
        finally:
            lock.release()

    def _scan(self) -> list[str]:
        changes, first_watched = self._scanner.scan()
        self._taint.note(changes, first_watched)
        return list(changes)

    def _claim(self, now: float) -> list[str] | None:
        """Take the pending changes as this request's restart, once they have settled."""
        pending = self._pending
        if not pending or self._restarter.claimed:
            return None
        unsettled = pending.unsettled(time.time())
        if unsettled > 0:
            self._next_check = min(self._next_check, now + unsettled)
            return None
        if not pending.compiles() or not self._restarter.claim():
            return None
        return pending.take()

"""The helpers every test shares: files, waiting, the restart recorder, the sandbox.

- Files: :func:`write` creates a file dated an hour back (there before any
  process started, so not a change); :func:`edit` saves new content now, as an
  editor does, and makes sure the change is visible.
- Waiting: :func:`wait_until` polls for something to happen; :func:`settle`
  checks that something stays true for a while (a negative check).
- :class:`Restarts` is the ``restart=`` strategy that records each reason.
- :class:`Sandbox` is an import root in a temporary directory whose
  middlewares record their restarts (the ``sandbox`` fixture in conftest.py).
- The package internals the tests patch are patched here only, each by one
  small named helper (the *patch points* section), so that a move inside
  ``reloadmw`` changes this file alone.

Nothing here imports pytest or WebTest at run time: the real-server rig
(``tests/rig.py``), and through it ``scripts/demo.py`` and the benchmarks,
import this module where neither is installed.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import reloadmw.endpoint.marker
import reloadmw.endpoint.passwords
import reloadmw.gate
import reloadmw.load_taint
import reloadmw.middleware
import reloadmw.restart.mod_wsgi
import reloadmw.watch.monitor
import reloadmw.watch.stamps
import reloadmw.watch.trees
from reloadmw import ReloadMiddleware
from reloadmw.watch.patterns import DEFAULT_IGNORE

if TYPE_CHECKING:
    import pytest
    import webtest  # type: ignore[import-untyped]
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from reloadmw.endpoint.ratelimit import FailureLimiter
    from reloadmw.endpoint.router import Router
    from reloadmw.load_taint import LoadTaint
    from reloadmw.watch.monitor import Monitor
    from reloadmw.watch.patterns import Tree

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
#: Seconds before "now" at which :func:`write` dates a file: before any process start.
AGE = 3600.0
#: The project's own code is edited by others while the tests run; never watch it here.
IGNORE = (*DEFAULT_IGNORE, f"{REPO}/*")
#: Seconds an in-process positive check waits at most.
TIMEOUT = 5.0


# -- files ------------------------------------------------------------------------------


def stat_key(path: Path) -> tuple[int, int, int]:
    """What the monitors compare: ``(st_mtime_ns, st_size, st_ino)``."""
    st = path.stat()
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def set_mtime(path: Path, ns: int) -> None:
    os.utime(path, ns=(ns, ns))


def mtime_ns(path: Path) -> int:
    return os.stat(path).st_mtime_ns


def _save(path: Path, text: str, atomic: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if atomic:  # a new file renamed over the old one: no reader ever sees it half written
        temporary = path.with_name(f".{path.name}.saving")
        temporary.write_text(text)
        temporary.chmod(0o644)
        os.replace(temporary, path)
    else:
        path.write_text(text)
    importlib.invalidate_caches()  # a module written now is importable now


def write(path: Path, text: str = "", *, age: float = AGE) -> Path:
    """Create (or overwrite) ``path``, making parents, dated ``age`` seconds back."""
    _save(path, text)
    set_mtime(path, time.time_ns() - int(age * 1e9))
    return path


def _signature(path: Path) -> tuple[int, int, int] | None:
    """:func:`stat_key`, or None for a file that is missing (or that a test made unreadable)."""
    try:
        return stat_key(path)
    except OSError:
        return None


def edit(path: Path, text: str, *, atomic: bool = False) -> Path:
    """Save ``text`` in place as an editor would, now, so that its stat signature changes.

    A same-size edit within the filesystem's timestamp granularity would
    otherwise be invisible, so the mtime is bumped by 1 ms when needed. With
    ``atomic``, a new file replaces the old one (as ``git checkout`` and many
    editors do), so that a process importing it meanwhile never reads it half written.
    """
    before = _signature(path)
    _save(path, text, atomic)
    if before is not None and _signature(path) == before:
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    return path


def files_dated_after(directory: Path, ns: int) -> None:
    """Wait until a file written in ``directory`` is dated after ``ns`` (wall clock).

    The kernel dates files with a coarse clock that can lag ``time.time_ns()``
    by a tick: a change made just after ``ns`` may otherwise be dated before it.
    """
    probe = directory / ".clock-probe"

    def dated_after() -> bool:
        probe.write_text("")
        return probe.stat().st_ctime_ns > ns

    wait_until(dated_after, poll=0.001)
    probe.unlink()


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def fan_out_tree(root: Path, directories: int = 10, links: int = 3) -> list[Path]:
    """Directories ``d0..d<n-1>`` under ``root``, each with one file and ``links`` symlinks
    to every later directory; return the files.

    A walk that tells directories apart by path finds ``(links + 1) ** n - 1) / links``
    copies of them: 349,525 of the 10 files with the defaults (issue 13).
    """
    files = [write(root / f"d{i}" / f"f{i}.txt", f"{i}\n") for i in range(directories)]
    for i in range(directories):
        for j in range(i + 1, directories):
            for k in range(links):
                (root / f"d{i}" / f"l{j}_{k}").symlink_to(f"../d{j}")
    return files


def mountinfo_with(point: Path, fstype: str) -> Callable[[], str]:
    """This process's ``/proc/self/mountinfo``, with one more mount of ``fstype`` at ``point``.

    For ``AutoMonitor(mountinfo=...)``: a directory that counts as being on,
    say, an NFS mount, without mounting one.
    """
    line = f"999999 1 0:999 / {str(point).replace(' ', chr(92) + '040')} rw - {fstype} fake rw\n"
    return lambda: Path("/proc/self/mountinfo").read_text() + line


# -- waiting ----------------------------------------------------------------------------


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = TIMEOUT,
    describe: Callable[[], str] = lambda: "",
    poll: float = 0.05,
) -> T:
    """Poll ``predicate`` until it returns a truthy value and return that value.

    On timeout, raise AssertionError with ``describe()`` (e.g. a server log).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s\n{describe()}")
        time.sleep(poll)


def settle(
    predicate: Callable[[], object],
    seconds: float,
    describe: Callable[[], str] = lambda: "",
    poll: float = 0.01,
) -> None:
    """Check that ``predicate()`` stays true for ``seconds``: nothing more happens.

    A negative check has no event to wait for, so it watches for a fixed time,
    from the first call to one more at the end, and fails at the first false.
    """
    deadline = time.monotonic() + seconds
    while True:
        last = time.monotonic() >= deadline
        if not predicate():
            raise AssertionError(f"stopped holding within {seconds} s\n{describe()}")
        if last:
            return
        time.sleep(poll)


def run_as(
    user: str, code: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args`` as ``user`` (with ``setpriv``; the tests run as root).

    The interpreter is this one, so another user can import reloadmw and its
    test dependencies where the daemon user can (``scripts/bootstrap`` checks).
    """
    entry = pwd.getpwnam(user)
    command = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
    return subprocess.run(
        [*command, sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


# -- restarts, apps and monitors ------------------------------------------------------------


class Restarts:
    """A ``restart=`` strategy that records each reason (the changed paths), thread-safely.

    Each reason is kept sorted. Its strategy name, in the middleware's log
    lines and the endpoint's answers, is ``"Restarts"``; with ``fail=True``
    every call raises after it was recorded.
    """

    def __init__(self, *, fail: bool = False) -> None:
        self.reasons: list[list[str]] = []
        self.times: list[float] = []  # wall time of each call
        self.fail = fail
        self.__qualname__ = "Restarts"
        self._lock = threading.Lock()

    def __call__(self, reason: Sequence[str]) -> None:
        with self._lock:
            self.reasons.append(sorted(reason))
            self.times.append(time.time())
        if self.fail:
            raise RuntimeError("restart callback failed on purpose")

    def __len__(self) -> int:
        return len(self.reasons)


def hello_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


class SpyMonitor:
    """Wraps a real monitor: counts polls, and can hold a poll until released."""

    def __init__(self, inner: Monitor) -> None:
        self.inner = inner
        self.name = inner.name
        self.polls = 0
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def add_files(self, paths: Sequence[str]) -> None:
        self.inner.add_files(paths)

    def add_tree(self, tree: Tree) -> None:
        self.inner.add_tree(tree)

    def poll(self) -> dict[str, float]:
        self.polls += 1
        if self.hold:
            self.entered.set()
            assert self.release.wait(10), "the held poll was never released"
        return self.inner.poll()

    def __len__(self) -> int:
        return len(self.inner)

    @property
    def newest_ns(self) -> int:
        return self.inner.newest_ns

    def close(self) -> None:
        self.inner.close()


def reported_soon(monitor: Monitor, *paths: Path, timeout: float = 3.0) -> set[str]:
    """Poll ``monitor`` until it has reported each of ``paths``; return all it reported meanwhile.

    An event-driven backend may report a change a moment late.
    """
    seen: set[str] = set()
    wanted = {str(p) for p in paths}

    def reported() -> bool:
        seen.update(monitor.poll())
        return wanted <= seen

    wait_until(
        reported, timeout, lambda: f"{sorted(wanted - seen)} not reported: {sorted(seen)}", 0
    )
    return seen


def never_reported(monitor: Monitor, *paths: Path, seconds: float = 0.15) -> None:
    """Check that ``monitor`` reports none of ``paths`` (anything, without paths) for a while."""
    seen: set[str] = set()
    unwanted = {str(p) for p in paths}

    def quiet() -> bool:
        seen.update(monitor.poll())
        return not (seen & unwanted if unwanted else seen)

    settle(quiet, seconds, lambda: f"reported: {sorted(seen)}")


# -- the sandbox ------------------------------------------------------------------------

#: A WSGI app module whose response names its pid and the VERSION of ``version_module``.
APP_SOURCE = """\
import json, os
import {version_module}

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({{"pid": os.getpid(), "version": {version_module}.VERSION}}).encode()]
"""


def _module_paths(module: object) -> list[str]:
    """``__file__`` and ``__path__``, read past a lazy module's import and ``__getattr__``."""
    paths = []
    for name in ("__file__", "__path__"):
        with contextlib.suppress(AttributeError, TypeError):
            value = object.__getattribute__(module, name)
            paths += [value] if isinstance(value, str) else [str(p) for p in value or ()]
    return paths


class Sandbox:
    """An import root in a temporary directory, and middlewares that record their restarts.

    On entry the root goes on ``sys.path`` and every middleware built from then
    on takes its start-up baseline from the moment it is built, so files written
    before it are not changes. On exit the middlewares are closed and the
    modules imported from the root are forgotten.
    """

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.restarts = Restarts()
        self._monkeypatch = monkeypatch
        self._before = set(sys.modules)
        self._made: list[ReloadMiddleware] = []

    def __enter__(self) -> Sandbox:
        self._monkeypatch.syspath_prepend(str(self.root))
        baseline_at_build(self._monkeypatch)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for middleware in self._made:
            middleware.close()  # the inotify backend holds a file descriptor
        inside = str(self.root) + os.sep
        for name in set(sys.modules) - self._before:
            if any(p.startswith(inside) for p in _module_paths(sys.modules.get(name))):
                del sys.modules[name]
        importlib.invalidate_caches()

    @property
    def middlewares(self) -> list[ReloadMiddleware]:
        """The middlewares built so far, oldest first."""
        return list(self._made)

    def write(self, relative: str, text: str) -> Path:
        """:func:`edit` the file ``relative`` under the root."""
        return edit(self.root / relative, text)

    def write_app(self, name: str = "webapp", version: str = "1") -> Path:
        """``<name>.py`` serving ``<name>_version.VERSION``; returns the version file."""
        self.write(f"{name}.py", APP_SOURCE.format(version_module=f"{name}_version"))
        return self.write(f"{name}_version.py", f"VERSION = {version!r}\n")

    def serve_app(self, **options: Any) -> tuple[webtest.TestApp, Path]:
        """Import the app of :meth:`write_app` and serve it; return the client and version file."""
        version_file = self.write_app()
        app = importlib.import_module("webapp")
        return self.client(self.middleware(app.application, **options)), version_file

    def middleware(self, app: Any = hello_app, **options: Any) -> ReloadMiddleware:
        """A middleware over the root checking on every request, with no quiet period."""
        settings: dict[str, Any] = {
            "interval": 0,
            "quiet": 0,
            "restart": self.restarts,
            "root": str(self.root),
            "ignore": IGNORE,
        }
        settings.update(options)
        middleware = ReloadMiddleware(app, **settings)
        self._made.append(middleware)
        return middleware

    @staticmethod
    def client(middleware: ReloadMiddleware) -> webtest.TestApp:
        """A WebTest client, lint on."""
        import webtest  # here, not at the top: see the module docstring

        return webtest.TestApp(middleware, lint=True)


# -- patch points: every package internal the tests replace ------------------------------


def baseline_at_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each middleware built from now on takes its start-up baseline from its own build.

    Then files left by earlier tests, or written by this one before it built
    the middleware, are not changes. Patches ``reloadmw.middleware.process_start_ns``.
    """
    monkeypatch.setattr(reloadmw.middleware, "process_start_ns", time.time_ns)


@contextlib.contextmanager
def spying_on_monitors(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[SpyMonitor]]:
    """Every middleware built in the block gets a :class:`SpyMonitor`, closed at the end.

    Closing matters: each inotify monitor holds one of the user's few inotify
    instances (``fs.inotify.max_user_instances``, shared by every process).
    Patches ``reloadmw.middleware.make_monitor``.
    """
    spies: list[SpyMonitor] = []
    real = reloadmw.watch.monitor.make_monitor

    def make(backend: str, start_ns: int, ignored: Any) -> SpyMonitor:
        spies.append(SpyMonitor(real(backend, start_ns, ignored)))
        return spies[-1]

    monkeypatch.setattr(reloadmw.middleware, "make_monitor", make)
    try:
        yield spies
    finally:
        for spy in spies:
            spy.close()


class Clock:
    """The middlewares' clock, moved only by :meth:`advance`, with either request gate.

    The middleware's own clock (``reloadmw.middleware._monotonic``) stands still
    at the real time the Clock is made. :meth:`advance` moves each middleware's
    next due check (``_next_check``, the value the request gate compares) that
    much earlier, which to every comparison is the same as that much time
    passing. The gates, the C one included, read the real clock, which only
    runs ahead of the frozen one: a gate may hand a request to the middleware's
    check a little early, never late, and the check then decides on the frozen
    time, exactly.
    """

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, middlewares: Callable[[], list[ReloadMiddleware]]
    ) -> None:
        now = time.monotonic()
        self._middlewares = middlewares
        monkeypatch.setattr(reloadmw.middleware, "_monotonic", lambda: now)

    def advance(self, seconds: float) -> None:
        for middleware in self._middlewares():
            middleware._next_check -= seconds


def c_gate_expected() -> bool:
    """True where setup.py builds the C gate and a compiler and Python's headers exist."""
    if sys.implementation.name != "cpython" or sys.platform in ("win32", "cygwin", "darwin"):
        return False
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return False
    if os.environ.get("RELOADMW_NO_EXTENSIONS", "") not in ("", "0"):
        return False
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"], "Python.h")
    return shutil.which(compiler) is not None and headers.exists()


def through_python_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Send requests through the Python gate even where the C gate was built.

    Puts ``reloadmw.gate.PyGate.__call__`` on ``ReloadMiddleware``.
    """
    if reloadmw.gate.Gate is not reloadmw.gate.PyGate:
        monkeypatch.setattr(ReloadMiddleware, "__call__", reloadmw.gate.PyGate.__call__)


def c_gate_clock_ahead(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make the C gate's clock read ``seconds`` ahead of ``time.monotonic()``.

    Patches ``reloadmw._gate.monotonic``.
    """
    from reloadmw import _gate

    monkeypatch.setattr(_gate, "monotonic", lambda: time.monotonic() + seconds)


def signals_refused(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every signal the restart strategies send raises PermissionError; return those tried.

    Patches ``os.kill`` as ``reloadmw.restart.mod_wsgi`` sees it.
    """
    sent: list[tuple[int, int]] = []

    def kill(pid: int, signum: int) -> None:
        sent.append((pid, signum))
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(reloadmw.restart.mod_wsgi.os, "kill", kill)
    return sent


def counting_full_passes(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The stamp tables that ran a full stat pass, one entry per pass.

    Patches ``reloadmw.watch.stamps.StampTable.scan``.
    """
    passes: list[object] = []
    real_scan = reloadmw.watch.stamps.StampTable.scan

    def counted(self: reloadmw.watch.stamps.StampTable) -> dict[str, float]:
        passes.append(self)
        return real_scan(self)

    monkeypatch.setattr(reloadmw.watch.stamps.StampTable, "scan", counted)
    return passes


def tracking_at_most(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """Monitors track at most ``count`` directories and files in trees.

    Patches ``reloadmw.watch.trees.MAX_TRACKED``.
    """
    monkeypatch.setattr(reloadmw.watch.trees, "MAX_TRACKED", count)


def walking_at_most(monkeypatch: pytest.MonkeyPatch, entries: int) -> None:
    """A check lists at most about ``entries`` entries of directories found at run time.

    Patches ``reloadmw.watch.trees.WALK_STEP``.
    """
    monkeypatch.setattr(reloadmw.watch.trees, "WALK_STEP", entries)


def counting_derivations(monkeypatch: pytest.MonkeyPatch) -> list[tuple[bytes, int]]:
    """``(salt, iterations)`` of every key derivation the password checks make.

    Patches ``reloadmw.endpoint.passwords._derive``.
    """
    calls: list[tuple[bytes, int]] = []
    derive = reloadmw.endpoint.passwords._derive

    def counting(password: bytes, salt: bytes, iterations: int) -> bytes:
        calls.append((salt, iterations))
        return derive(password, salt, iterations)

    monkeypatch.setattr(reloadmw.endpoint.passwords, "_derive", counting)
    return calls


def counting_checks(middleware: ReloadMiddleware) -> list[None]:
    """One entry for each request that went to the middleware's check (wraps ``_check_due``).

    A list, since ``append`` is atomic: a counter's ``+= 1`` from many threads
    loses counts on Python 3.9 and 3.10, which switch threads between any two
    bytecodes.
    """
    checks: list[None] = []
    real_check_due = middleware._check_due

    def counting_check_due() -> list[str] | None:
        checks.append(None)
        return real_check_due()

    middleware._check_due = counting_check_due  # type: ignore[method-assign]
    return checks


def hold_at_most(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The hook holds a request of a tainted process at most ``seconds``.

    Patches ``reloadmw.load_taint.MAX_HOLD``.
    """
    monkeypatch.setattr(reloadmw.load_taint, "MAX_HOLD", seconds)


def load_taint(middleware: ReloadMiddleware) -> LoadTaint:
    """Whether the middleware's process loaded its code while files changed (``_taint``)."""
    return middleware._taint


def endpoint_router(middleware: ReloadMiddleware) -> Router:
    """The ``/__reload__`` endpoint of a middleware made with a password (``_router``)."""
    assert middleware._router is not None
    return middleware._router


def use_limiter(middleware: ReloadMiddleware, limiter: FailureLimiter) -> FailureLimiter:
    """Give the endpoint ``limiter`` (a fresh one, or one on a test's clock); return it."""
    endpoint_router(middleware).limiter = limiter
    return limiter


def marker_wall_clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The group marker's wall clock reads the real time plus ``offset[0]`` ns; return offset.

    A test steps the clock by changing ``offset[0]``. Patches
    ``reloadmw.endpoint.marker.time_ns``.
    """
    offset = [0]
    monkeypatch.setattr(reloadmw.endpoint.marker, "time_ns", lambda: time.time_ns() + offset[0])
    return offset


def counting_password_checks(middleware: ReloadMiddleware, cost: float = 0.0) -> list[str | None]:
    """Record every password the endpoint checks (wraps its checker's ``verify``).

    With ``cost``, each check takes that many seconds more, as the default
    600,000-iteration key derivation does (0.2 s or more), so that concurrent
    requests overlap while their checks run.
    """
    checker = endpoint_router(middleware).options.checker
    verify = checker.verify
    seen: list[str | None] = []

    def counting(candidate: str | None) -> bool:
        seen.append(candidate)
        time.sleep(cost)
        return verify(candidate)

    checker.verify = counting  # type: ignore[method-assign]
    return seen

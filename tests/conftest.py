"""Fixtures: the in-process sandbox and monitor spies, the request gates, running servers.

A test that starts a server through these fixtures must be marked ``server``
(``pytest -m "not server"`` is the in-process suite, run on every Python the
package supports): collection fails otherwise.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from reloadmw import gate
from reloadmw.clocks import boot_ns
from tests.helpers import (
    Sandbox,
    SpyMonitor,
    c_gate_expected,
    spying_on_monitors,
    through_python_gate,
)
from tests.rig import (
    ApacheServer,
    ModWsgiExpress,
    ServerProcess,
    make_world_readable_dir,
)

ServerT = TypeVar("ServerT", bound=ServerProcess)
SERVERS_KEY = pytest.StashKey[list[ServerProcess]]()
#: Fixtures that start real servers: a test using one is a ``server`` test.
SERVER_FIXTURES = {"servers", "start_apache", "start_express", "start_server"}
#: Wall clock minus boot clock when the session and the current test began.
CLOCKS: dict[str, int] = {}
#: The clocks, read through names bound here: a test that patches one does not fool the report.
_WALL_NS, _BOOT_NS = time.time_ns, boot_ns


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a test that starts servers without the ``server`` marker.

    The in-process runs select ``-m "not server"``; an unmarked server test
    would run there, without Apache or the servers installed.
    """
    unmarked = [
        item.nodeid
        for item in items
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("server") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests start servers but are not marked `server` "
            "(add `pytestmark = pytest.mark.server` to the module, or "
            "`@pytest.mark.server` to the test):\n  " + "\n  ".join(unmarked)
        )


def wall_minus_boot_ns() -> int:
    """Moves only when someone steps the wall clock (NTP, a virtual machine's host)."""
    return _WALL_NS() - _BOOT_NS()


def pytest_runtest_logstart() -> None:
    CLOCKS["test"] = wall_minus_boot_ns()


def pytest_sessionstart() -> None:
    CLOCKS["session"] = wall_minus_boot_ns()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Attach the logs of the test's servers, and any step of the wall clock, to a failure."""
    outcome = yield
    report = outcome.get_result()
    # At teardown the logs are gone; a failed stop puts them in its message.
    if report.failed and report.when != "teardown":
        for server in item.stash.get(SERVERS_KEY, []):
            report.sections.append((f"{server.name} logs ({server.url})", server.logs()))
        if step := clock_step("test"):
            report.sections.append(("wall clock", f"stepped during this test: {step}"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if step := clock_step("session"):
        terminalreporter.write_line(f"the wall clock was stepped during this run: {step}")


def clock_step(since: str) -> str:
    """How far the wall clock was stepped since ``since`` began; "" if it was not.

    Below 20 ms it may be a thread paused between two readings of the clocks.
    """
    step = (wall_minus_boot_ns() - CLOCKS.get(since, wall_minus_boot_ns())) / 1e6
    return f"{step:+.1f} ms against the boot clock" if abs(step) >= 20 else ""


# -- in-process --------------------------------------------------------------------------


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """An import root in ``tmp_path`` whose middlewares record their restarts."""
    with Sandbox(tmp_path, monkeypatch) as box:
        yield box


@pytest.fixture
def spies(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[SpyMonitor]]:
    """The monitors of the middlewares built in the test, closed at its end."""
    with spying_on_monitors(monkeypatch) as made:
        yield made


@pytest.fixture
def c_gate() -> type[Any]:
    """The C gate class; the test fails where it should have been built and was not."""
    try:
        from reloadmw import _gate
    except ImportError as exc:
        if c_gate_expected():
            pytest.fail(
                f"reloadmw._gate is not built although a compiler and Python.h exist ({exc}); "
                "run `pip install -e .` again and read its build output"
            )
        pytest.skip("reloadmw._gate is not built here; the Python gate is used")
    return _gate.Gate


#: The gates a test can run through: with RELOADMW_PURE_PYTHON=1 the middleware
#: class itself is built on the Python gate, so there is no C gate to run.
GATES = ["python"] if gate.Gate is gate.PyGate and gate.pure_python_forced() else ["c", "python"]


@pytest.fixture(params=GATES)
def gate_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test's middlewares through each request gate: the C one, then the Python one."""
    kind: str = request.param
    if kind == "c":
        c_class = request.getfixturevalue("c_gate")
        assert gate.Gate is c_class, "the middleware should be built on the C gate"
    else:
        through_python_gate(monkeypatch)
    return kind


# -- real servers ------------------------------------------------------------------------


@pytest.fixture
def app_dir() -> Iterator[Path]:
    """A temporary directory the ``www-data`` daemon processes can read."""
    path = make_world_readable_dir("reloadmw-app-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def servers(request: pytest.FixtureRequest) -> Iterator[list[ServerProcess]]:
    """Servers started by the test; all are stopped at teardown."""
    started: list[ServerProcess] = []
    request.node.stash[SERVERS_KEY] = started
    yield started
    errors = []
    for server in started:
        try:
            server.stop()
        except AssertionError as error:
            errors.append(str(error))
    assert not errors, "\n".join(errors)


def _started(servers: list[ServerProcess], server: ServerT, wait: bool) -> ServerT:
    servers.append(server)
    server.start()
    if wait:
        server.wait_ready()
    return server


@pytest.fixture
def start_apache(servers: list[ServerProcess]) -> Callable[..., ApacheServer]:
    """Start Apache + mod_wsgi daemon mode on a script; wait until it answers."""

    def start(script: Path, *, wait: bool = True, **options: Any) -> ApacheServer:
        return _started(servers, ApacheServer(script, **options), wait)

    return start


@pytest.fixture
def start_express(servers: list[ServerProcess]) -> Callable[..., ModWsgiExpress]:
    """Start ``mod_wsgi-express start-server`` on a script; wait until it answers."""

    def start(script: Path, *, wait: bool = True, **options: Any) -> ModWsgiExpress:
        return _started(servers, ModWsgiExpress(script, **options), wait)

    return start


@pytest.fixture
def start_server(servers: list[ServerProcess]) -> Callable[..., ServerProcess]:
    """Start any server (e.g. a ``CommandServer``); wait until it answers."""

    def start(server: ServerT, *, wait: bool = True) -> ServerT:
        return _started(servers, server, wait)

    return start

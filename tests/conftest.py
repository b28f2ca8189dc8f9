"""Fixtures for the real-server tests: app directories and running servers."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.servers import (
    ApacheServer,
    ModWsgiExpress,
    ServerProcess,
    make_world_readable_dir,
)

ServerT = TypeVar("ServerT", bound=ServerProcess)
SERVERS_KEY = pytest.StashKey[list[ServerProcess]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """Attach the logs of the test's servers to its failure report."""
    outcome = yield
    report = outcome.get_result()
    # At teardown the logs are gone; a failed stop puts them in its message.
    if report.failed and report.when != "teardown":
        for server in item.stash.get(SERVERS_KEY, []):
            report.sections.append((f"{server.name} logs ({server.url})", server.logs()))


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

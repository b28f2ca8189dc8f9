"""Fixtures for the real-server tests: app directories and running servers."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import (
    ApacheServer,
    ModWsgiExpress,
    ServerProcess,
    make_world_readable_dir,
)

SERVERS_KEY = pytest.StashKey[list[ServerProcess]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Attach the logs of the test's servers to its failure report."""
    report = yield
    if report.failed:
        for server in item.stash.get(SERVERS_KEY, []):
            report.sections.append((f"{server.name} logs ({server.url})", server.logs()))
    return report


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
    # Logs are wanted in the report even when the stop itself fails.
    request.node.stash[SERVERS_KEY] = list(started)
    errors = []
    for server in started:
        try:
            server.stop()
        except AssertionError as error:
            errors.append(str(error))
    assert not errors, "\n".join(errors)


def _starter(
    servers: list[ServerProcess], kind: type[ServerProcess]
) -> Callable[..., ServerProcess]:
    def start(script: Path, *, wait: bool = True, **options: Any) -> ServerProcess:
        server = kind(script, **options)  # type: ignore[call-arg]
        servers.append(server)
        server.start()
        if wait:
            server.wait_ready()
        return server

    return start


@pytest.fixture
def start_apache(servers: list[ServerProcess]) -> Callable[..., ServerProcess]:
    """Start Apache + mod_wsgi daemon mode on a script; wait until it answers."""
    return _starter(servers, ApacheServer)


@pytest.fixture
def start_express(servers: list[ServerProcess]) -> Callable[..., ServerProcess]:
    """Start ``mod_wsgi-express start-server`` on a script; wait until it answers."""
    return _starter(servers, ModWsgiExpress)

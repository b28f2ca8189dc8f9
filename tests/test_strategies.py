"""Restart strategies, alone and as ``restart="auto"`` picks them from the request's environ."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import webtest

from reloadmw import ReloadMiddleware
from reloadmw.logs import describe
from reloadmw.restart.mod_wsgi import SignalSelf, embedded_mode
from reloadmw.restart.registry import STRATEGIES, choose, resolve, unknown_server
from reloadmw.restart.strategy import CallbackStrategy
from reloadmw.restart.windows import SIGNAL_PARENT_RESTART, WindowsApacheRestart
from tests.helpers import Sandbox, edit, settle, wait_until, write


class FakeLibhttpd:
    """Stands in for ``ctypes.windll.libhttpd``: records ``ap_signal_parent`` calls."""

    def __init__(self) -> None:
        self.signals: list[int] = []

    def ap_signal_parent(self, kind: int) -> None:
        self.signals.append(kind)


class SignalsReceived:
    """SIGINT handler that records the signals this process receives."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)

    def first(self) -> list[int]:
        """The signals received, once the first arrived."""
        # The handler runs in the main thread shortly after the signal arrives.
        return wait_until(lambda: self.received, 2.0, poll=0.001)


@pytest.fixture
def sigint() -> Iterator[SignalsReceived]:
    handler = SignalsReceived()
    previous = signal.signal(signal.SIGINT, handler)
    yield handler
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def libhttpd(monkeypatch: pytest.MonkeyPatch) -> FakeLibhttpd:
    """A fake ``ctypes.windll.libhttpd``, as Apache on Windows would have loaded."""
    fake = FakeLibhttpd()
    windll = type("FakeWindll", (), {"libhttpd": fake})()
    monkeypatch.setattr(ctypes, "windll", windll, raising=False)
    return fake


@pytest.fixture
def views(sandbox: Sandbox) -> Path:
    return write(sandbox.root / "views.py", "A = 1\n")


@pytest.fixture
def auto_mw(sandbox: Sandbox, views: Path) -> ReloadMiddleware:
    """A middleware with ``restart="auto"`` watching ``views``."""
    return sandbox.middleware(track=str(views), restart="auto")


def get(mw: ReloadMiddleware, **environ: str) -> webtest.TestResponse:
    return webtest.TestApp(mw, lint=True, extra_environ=environ).get("/")


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# -- the strategies on their own ----------------------------------------------------------


def test_daemon_strategy_sends_sigint_to_its_own_process(sigint: SignalsReceived) -> None:
    strategy = SignalSelf()
    assert (strategy.name, strategy.exits_process) == ("mod_wsgi-daemon", True)
    strategy(["/srv/app/views.py"])
    assert sigint.first() == [signal.SIGINT]


def test_windows_strategy_calls_ap_signal_parent_restart() -> None:
    libhttpd = FakeLibhttpd()
    strategy = WindowsApacheRestart(loader=lambda: libhttpd)
    assert (strategy.name, strategy.exits_process) == ("apache-windows", True)
    strategy(["C:/app/views.py"])
    assert libhttpd.signals == [SIGNAL_PARENT_RESTART] == [1]


def test_embedded_mode_strategy_warns_with_the_file_and_the_fix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    strategy = embedded_mode()
    assert (strategy.name, strategy.exits_process) == ("mod_wsgi-embedded", False)
    strategy(["/srv/app/views.py"])
    [message] = warnings_in(caplog)
    assert "'/srv/app/views.py'" in message
    assert "embedded mode" in message
    assert "daemon mode" in message
    assert f"pid={os.getpid()}" in message


def test_unknown_server_strategy_names_the_server_and_the_restart_option(
    caplog: pytest.LogCaptureFixture,
) -> None:
    unknown_server("MadeUpServer/1.0")(["/srv/app/views.py"])
    [message] = warnings_in(caplog)
    assert "'MadeUpServer/1.0'" in message
    assert "restart=" in message
    assert "'/srv/app/views.py'" in message


def test_callback_strategy_passes_the_changed_paths_as_a_list() -> None:
    got: list[object] = []
    strategy = CallbackStrategy(got.append)
    strategy(("/a.py", "/b.py"))
    assert got == [["/a.py", "/b.py"]]
    assert strategy.exits_process is False


def test_describe_names_a_few_paths_and_counts_the_rest() -> None:
    assert describe(["/a.py"]) == "'/a.py'"
    assert describe([f"/{i}.py" for i in range(5)]) == "'/0.py', '/1.py', '/2.py' and 2 more"


# -- resolve(): the restart= option --------------------------------------------------------


def test_auto_resolves_to_choosing_per_request() -> None:
    assert resolve("auto") is None


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_each_strategy_name_resolves_to_that_strategy(name: str) -> None:
    strategy = resolve(name)
    assert strategy is not None
    assert strategy.name == name


def test_callable_resolves_to_a_callback_strategy() -> None:
    def my_restart(reason: object) -> None:
        pass

    strategy = resolve(my_restart)
    assert isinstance(strategy, CallbackStrategy)
    assert strategy.name == "test_callable_resolves_to_a_callback_strategy.<locals>.my_restart"


@pytest.mark.parametrize("bad", ["bogus", "", 5, None])
def test_unknown_restart_option_raises_naming_the_value_and_the_choices(bad: Any) -> None:
    with pytest.raises(ValueError, match=rf"restart={bad!r}.*mod_wsgi-daemon"):
        resolve(bad)


# -- choose(): restart="auto" --------------------------------------------------------------


def test_mod_wsgi_daemon_mode_is_chosen_from_a_process_group() -> None:
    assert choose({"mod_wsgi.process_group": "app"}).name == "mod_wsgi-daemon"


def test_mod_wsgi_embedded_mode_on_unix_only_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    assert choose({"mod_wsgi.process_group": ""}).name == "mod_wsgi-embedded"


def test_mod_wsgi_embedded_mode_on_windows_restarts_apache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    assert choose({"mod_wsgi.process_group": ""}).name == "apache-windows"


def test_other_servers_get_a_warning_strategy() -> None:
    assert choose({"SERVER_SOFTWARE": "MadeUpServer/1.0"}).name == "none"
    assert choose({}).name == "none"


# -- through the middleware, from the request's environ ---------------------------------------


def test_daemon_mode_request_signals_its_own_process_after_the_response(
    auto_mw: ReloadMiddleware, views: Path, sigint: SignalsReceived
) -> None:
    get(auto_mw, **{"mod_wsgi.process_group": "app"})
    assert sigint.received == []
    edit(views, "A = 2\n")
    assert get(auto_mw, **{"mod_wsgi.process_group": "app"}).text == "hello"
    assert sigint.first() == [signal.SIGINT]
    edit(views, "A = 3\n")  # the process is on its way out: never signal it twice
    for _ in range(3):
        get(auto_mw, **{"mod_wsgi.process_group": "app"})
    settle(lambda: sigint.received == [signal.SIGINT], 0.2, lambda: str(sigint.received))


def test_embedded_mode_on_unix_warns_once_per_change_and_never_signals(
    auto_mw: ReloadMiddleware,
    views: Path,
    sigint: SignalsReceived,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    edit(views, "A = 2\n")
    for _ in range(3):
        assert get(auto_mw, **{"mod_wsgi.process_group": ""}).text == "hello"
    [message] = warnings_in(caplog)
    assert str(views) in message
    assert "embedded mode" in message
    edit(views, "A = 3\n")
    get(auto_mw, **{"mod_wsgi.process_group": ""})
    assert len(warnings_in(caplog)) == 2
    assert sigint.received == []


def test_embedded_mode_on_windows_asks_apache_to_restart_after_the_response(
    auto_mw: ReloadMiddleware,
    views: Path,
    libhttpd: FakeLibhttpd,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    edit(views, "A = 2\n")
    for _ in range(3):
        assert get(auto_mw, **{"mod_wsgi.process_group": ""}).text == "hello"
    assert libhttpd.signals == [SIGNAL_PARENT_RESTART]


def test_unknown_server_warns_naming_server_software_and_restart_option(
    auto_mw: ReloadMiddleware, views: Path, caplog: pytest.LogCaptureFixture
) -> None:
    edit(views, "A = 2\n")
    assert get(auto_mw, SERVER_SOFTWARE="MadeUpServer/1.0").text == "hello"
    get(auto_mw, SERVER_SOFTWARE="MadeUpServer/1.0")
    [message] = warnings_in(caplog)
    assert "'MadeUpServer/1.0'" in message
    assert "restart=" in message
    assert str(views) in message


@pytest.mark.parametrize(
    ("environ", "platform", "strategy"),
    [
        ({"mod_wsgi.process_group": "app"}, "linux", "mod_wsgi-daemon"),
        ({"mod_wsgi.process_group": ""}, "linux", "mod_wsgi-embedded"),
        ({"mod_wsgi.process_group": ""}, "win32", "apache-windows"),
        ({"SERVER_SOFTWARE": "MadeUpServer/1.0"}, "linux", "none"),
    ],
)
def test_each_strategy_logs_one_info_line_per_change(
    auto_mw: ReloadMiddleware,
    views: Path,
    sigint: SignalsReceived,
    libhttpd: FakeLibhttpd,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    platform: str,
    strategy: str,
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    caplog.set_level(logging.INFO, logger="reloadmw")
    edit(views, "A = 2\n")
    for _ in range(3):
        get(auto_mw, **environ)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1, infos
    assert f"pid={os.getpid()}" in infos[0]
    assert str(views) in infos[0]
    assert strategy in infos[0]

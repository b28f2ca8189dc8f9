"""Choosing and running the gunicorn / uWSGI / exec / hupper strategies, in-process."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
import types
from pathlib import Path
from typing import Any

import pytest

from reloadmw.restart import gunicorn, reexec, registry, uwsgi
from reloadmw.watch.start_time import EXEC_START_ENV, process_start_ns


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"SERVER_SOFTWARE": "gunicorn/27.0.1"}, "gunicorn"),
        ({"SERVER_SOFTWARE": "WSGIServer/0.2 CPython/3.11.2"}, "exec"),
        ({"SERVER_SOFTWARE": "uWSGI", "uwsgi.version": b"2.0.31"}, "uwsgi"),
        ({"SERVER_SOFTWARE": "waitress"}, "none"),  # its connections cannot be watched
        ({"SERVER_SOFTWARE": "gunicorn", "mod_wsgi.process_group": "app"}, "mod_wsgi-daemon"),
        ({"SERVER_SOFTWARE": "Werkzeug/3.1"}, "none"),
    ],
)
def test_auto_picks_the_strategy_from_the_environ(environ: dict[str, Any], name: str) -> None:
    assert registry.choose(environ).name == name


def test_under_hupper_the_supervisor_is_asked_whatever_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reloads: list[str] = []
    proxy = types.SimpleNamespace(trigger_reload=lambda: reloads.append("reload"))
    hupper = types.SimpleNamespace(is_active=lambda: True, get_reloader=lambda: proxy)
    monkeypatch.setitem(sys.modules, "hupper", hupper)

    strategy = registry.choose({"SERVER_SOFTWARE": "waitress"})
    strategy(["views.py"])

    assert strategy.name == "hupper"
    assert reloads == ["reload"]


def test_waitress_is_reexecuted_once_its_connections_are_idle() -> None:
    channel = types.SimpleNamespace(request=None, requests=["busy"], total_outbufs_len=0)
    server = types.SimpleNamespace(active_channels={7: channel})
    probe = types.MethodType(lambda self: False, types.SimpleNamespace(server=server))
    environ = {"SERVER_SOFTWARE": "waitress", "waitress.client_disconnected": probe}

    strategy = registry.choose(environ)
    idle = reexec.waitress_idle(environ)

    assert strategy.name == "exec"
    assert idle is not None and not idle()
    channel.requests = []
    channel.total_outbufs_len = 10
    assert not idle()
    channel.total_outbufs_len = 0
    channel.request = "half a request"
    assert not idle()
    channel.request = None
    assert idle()


def test_unknown_strategy_name_lists_the_server_strategies() -> None:
    with pytest.raises(ValueError, match=r"restart='nginx'.*exec, gunicorn, hupper.*uwsgi"):
        registry.resolve("nginx")


@pytest.mark.parametrize("name", ["gunicorn", "uwsgi", "exec", "hupper"])
def test_every_server_strategy_can_be_named(name: str) -> None:
    strategy = registry.resolve(name)
    assert strategy is not None and strategy.name == name and strategy.exits_process


def test_gunicorn_strategy_refuses_a_parent_that_is_not_gunicorn() -> None:
    with pytest.raises(RuntimeError, match=rf"parent process {os.getppid()} is not a gunicorn"):
        gunicorn.GunicornReload()(["app.py"])


def test_named_exec_refuses_to_cut_off_a_threaded_servers_responses() -> None:
    errors: list[BaseException] = []

    def call() -> None:
        try:
            reexec.ReExec()(["app.py"])
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()

    assert "not re-executing from server thread" in str(errors[0])


def test_reexec_runs_the_same_command_and_passes_on_its_start_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(os, "execv", lambda path, argv: calls.append((path, list(argv))))
    monkeypatch.delenv(EXEC_START_ENV, raising=False)
    before = time.time_ns()

    reexec.ReExec()(["app.py"])

    # The command line as the kernel keeps it: sys.orig_argv on 3.10+, rebuilt on 3.9.
    started = Path("/proc/self/cmdline").read_bytes().split(b"\0")[:-1]
    assert calls == [(sys.executable, [sys.executable, *map(os.fsdecode, started[1:])])]
    pid, _, ns = os.environ[EXEC_START_ENV].partition(":")
    assert pid == str(os.getpid()) and before <= int(ns) <= time.time_ns()
    # The re-executed process (same pid) takes its start from there, not from the kernel.
    assert process_start_ns() == int(ns)


def test_uwsgi_master_after_a_reload_starts_from_the_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(EXEC_START_ENV, raising=False)
    kernel_start = process_start_ns()
    monkeypatch.setenv("UWSGI_RELOADS", "1")

    assert process_start_ns() > kernel_start


def test_two_workers_seeing_one_change_send_one_sighup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(os, "kill", lambda pid, signum: sent.append((pid, signum)))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    edited = tmp_path / "views.py"
    arbiter = os.getpid()  # any live pid names the record
    settled = 0.05  # the middleware's quiet period lies between an edit and its SIGHUP

    edited.write_text("v = 1\n")
    time.sleep(settled)
    assert gunicorn.hang_up_once(arbiter, [str(edited)])
    assert not gunicorn.hang_up_once(arbiter, [str(edited)])  # the other worker
    edited.write_text("v = 2\n")
    time.sleep(settled)
    assert gunicorn.hang_up_once(arbiter, [str(edited)])

    assert sent == [(arbiter, signal.SIGHUP)] * 2


def test_a_record_owned_by_another_user_is_not_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[int] = []
    monkeypatch.setattr(os, "kill", lambda pid, signum: sent.append(pid))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(os, "geteuid", lambda: 12345)  # the file will be root's, not ours
    edited = tmp_path / "views.py"
    edited.write_text("v = 1\n")

    assert gunicorn.hang_up_once(1, [str(edited)])
    assert gunicorn.hang_up_once(1, [str(edited)])
    assert sent == [1, 1]


@pytest.mark.parametrize(
    ("options", "lazy"),
    [
        ({}, False),
        ({"lazy-apps": True}, True),
        ({"lazy-apps": b"true"}, True),
        ({"lazy": "1"}, True),
        ({"lazy-apps": [b"true", b"false"]}, False),  # the last one wins, as in uWSGI
        ({"lazy-apps": "off"}, False),
        ({"lazy-apps": []}, False),
    ],
)
def test_uwsgi_lazy_apps_is_read_as_uwsgi_reads_it(options: dict[str, object], lazy: bool) -> None:
    assert uwsgi.lazy_apps(options) is lazy


@pytest.mark.parametrize(
    ("options", "count"),
    [({}, 1), ({"threads": b"2"}, 2), ({"threads": [b"4", b"8"]}, 8), ({"threads": "x"}, 1)],
)
def test_uwsgi_threads_per_worker(options: dict[str, object], count: int) -> None:
    assert uwsgi.threads(options) == count


@pytest.mark.parametrize(
    ("options", "workers", "safe"),
    [
        ({}, 2, False),  # SIGHUP reaches idle single-threaded workers
        ({}, 1, True),  # the only worker is the one asking, in its request
        ({}, None, False),  # unknown: assume several
        ({"threads": b"2"}, 4, True),
        ({"lazy-apps": True}, 4, True),  # no master reload at all
    ],
)
def test_uwsgi_master_reload_is_asked_for_only_where_it_loses_nothing(
    options: dict[str, object], workers: object, safe: bool
) -> None:
    assert uwsgi.master_reload_loses_nothing(options, workers) is safe


def test_uwsgi_single_threaded_workers_without_lazy_apps_are_not_reloaded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    reloads: list[str] = []
    module = types.SimpleNamespace(
        opt={}, numproc=2, reload=lambda: reloads.append("reload") or True
    )
    monkeypatch.setitem(sys.modules, "uwsgi", module)

    strategy = registry.choose({"SERVER_SOFTWARE": "uWSGI", "uwsgi.version": b"2.0.31"})
    strategy(["/srv/app/views.py"])

    assert (strategy.name, strategy.exits_process, reloads) == ("uwsgi", False, [])
    [warning] = caplog.records
    assert "'/srv/app/views.py' changed, but uWSGI without lazy-apps" in warning.getMessage()
    assert "--lazy-apps" in warning.getMessage() and "--threads 2" in warning.getMessage()
    module.opt = {"threads": b"2"}
    threaded = registry.resolve("uwsgi")
    assert threaded is not None and threaded.exits_process
    threaded(["/srv/app/views.py"])
    assert reloads == ["reload"]

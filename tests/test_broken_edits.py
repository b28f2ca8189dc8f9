"""A broken edit never strands a process.

- ``precheck``: a ``.py`` edit that does not compile is not restarted into;
  one WARNING names the file, line and message; the restart follows the fix.
- The import-string form: an app whose import raises answers 500, logs the
  traceback, watches the files in it, and restarts once one of them changes.
- A restart strategy that raises, or a signal that cannot be sent, is logged
  at ERROR; the request is unharmed and the process keeps checking.

The in-process tests use WebTest; the last ones run real Apache + mod_wsgi
daemon mode and change nothing but files: Apache is never restarted.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
import time
from pathlib import Path

import pytest

import reloadmw.pending
from reloadmw import ReloadMiddleware
from tests.helpers import APP_SOURCE, Restarts, Sandbox, edit, signals_refused, wait_until
from tests.rig import (
    RESTART_TIMEOUT,
    ApacheServer,
    ProbeApp,
    Response,
    StartApache,
    http_burst,
    wait_for_new_processes,
)

BROKEN_SYNTAX = "VERSION = '2'\ndef broken(:\n    pass\n"
NAME_ERROR = "VERSION = '2'\nVALUE = undefined_name + 1\n"


def reloadmw_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "reloadmw" and r.levelno == level]


# -- precheck ---------------------------------------------------------------


def test_syntax_error_edit_does_not_restart_and_warns_once_with_file_line_and_message(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    client, version_file = sandbox.serve_app()
    caplog.set_level(logging.INFO, logger="reloadmw")
    sandbox.write(version_file.name, BROKEN_SYNTAX)

    answers = [client.get("/").json for _ in range(5)]

    assert answers == [{"pid": os.getpid(), "version": "1"}] * 5
    assert sandbox.restarts.reasons == []
    warnings = reloadmw_records(caplog, logging.WARNING)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert f"{version_file}:2:" in message
    assert "invalid syntax" in message
    assert f"pid={os.getpid()}" in message


def test_restart_follows_as_soon_as_the_broken_file_compiles(sandbox: Sandbox) -> None:
    client, version_file = sandbox.serve_app()
    sandbox.write(version_file.name, BROKEN_SYNTAX)
    client.get("/")
    assert sandbox.restarts.reasons == []

    sandbox.write(version_file.name, "VERSION = '3'\n")
    client.get("/")
    client.get("/")

    assert sandbox.restarts.reasons == [[str(version_file)]]


def test_a_second_different_syntax_error_is_warned_about_again(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    client, version_file = sandbox.serve_app()
    caplog.set_level(logging.INFO, logger="reloadmw")
    sandbox.write(version_file.name, BROKEN_SYNTAX)
    client.get("/")
    sandbox.write(version_file.name, "VERSION = '2'\n\n\nx = (\n")
    client.get("/")
    client.get("/")

    lines = [r.getMessage() for r in reloadmw_records(caplog, logging.WARNING)]
    assert len(lines) == 2, lines
    assert f"{version_file}:2:" in lines[0]
    assert f"{version_file}:4:" in lines[1]
    assert sandbox.restarts.reasons == []


def test_precheck_false_restarts_into_a_file_that_does_not_compile(sandbox: Sandbox) -> None:
    client, version_file = sandbox.serve_app(precheck=False)
    sandbox.write(version_file.name, BROKEN_SYNTAX)
    client.get("/")

    assert sandbox.restarts.reasons == [[str(version_file)]]


def test_a_check_compiles_for_at_most_the_budget_and_the_restart_waits_for_every_file(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A link planted into a big tree brings thousands of .py files at once: a
    # check compiles them for at most PRECHECK_BUDGET (here: one file a check).
    monkeypatch.setattr(reloadmw.pending, "PRECHECK_BUDGET", -1.0)
    sandbox.write("more/m0.py", "X = 0\n")
    client, _ = sandbox.serve_app(track="more/")
    compiled: list[str] = []
    compile_one = reloadmw.pending.syntax_error
    monkeypatch.setattr(
        reloadmw.pending, "syntax_error", lambda path: compiled.append(path) or compile_one(path)
    )
    new = [sandbox.write(f"more/m{i}.py", f"X = {i}\n") for i in range(1, 5)]

    for served in range(1, 5):
        client.get("/")
        assert len(compiled) == served
        restarts = [sorted(reason) for reason in sandbox.restarts.reasons]
        assert restarts == ([] if served < 4 else [sorted(map(str, new))])


# -- an app whose import fails ------------------------------------------------


def test_import_string_app_that_raises_answers_500_and_logs_the_traceback(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    version_file = sandbox.write_app()
    sandbox.write(version_file.name, NAME_ERROR)
    client = sandbox.client(sandbox.middleware("webapp:application"))
    caplog.set_level(logging.INFO, logger="reloadmw")

    page = client.get("/", status=500)

    assert page.content_type == "text/plain"
    assert "failed to load" in page.text
    assert "undefined_name" not in page.text  # no traceback without debug=True
    errors = reloadmw_records(caplog, logging.ERROR)
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], NameError)
    assert "'webapp:application' failed to load" in errors[0].getMessage()
    assert f"pid={os.getpid()}" in errors[0].getMessage()


def test_debug_shows_the_traceback_on_the_500_page(sandbox: Sandbox) -> None:
    version_file = sandbox.write_app()
    sandbox.write(version_file.name, NAME_ERROR)
    client = sandbox.client(sandbox.middleware("webapp:application", debug=True))

    page = client.get("/", status=500)

    assert "NameError: name 'undefined_name' is not defined" in page.text
    assert f'File "{version_file}", line 2' in page.text


def test_a_failed_load_is_never_retried_in_the_same_process(sandbox: Sandbox) -> None:
    attempts = sandbox.root / "attempts.log"
    sandbox.write(
        "flaky.py",
        f"with open({str(attempts)!r}, 'a') as f:\n"
        "    f.write('import\\n')\n"
        "raise RuntimeError('db down')\n",
    )
    middleware = sandbox.middleware("flaky:application")
    client = sandbox.client(middleware)

    for _ in range(5):
        client.get("/", status=500)

    assert attempts.read_text() == "import\n"
    assert sandbox.restarts.reasons == []


@pytest.mark.parametrize("broken", [NAME_ERROR, BROKEN_SYNTAX], ids=["NameError", "SyntaxError"])
def test_the_file_that_broke_the_import_is_watched_and_its_fix_restarts_once(
    sandbox: Sandbox, broken: str
) -> None:
    """Found in the traceback's frames, or as a SyntaxError's filename."""
    version_file = sandbox.write_app()
    sandbox.write(version_file.name, broken)
    client = sandbox.client(sandbox.middleware("webapp:application"))
    client.get("/", status=500)
    client.get("/", status=500)
    assert sandbox.restarts.reasons == []

    sandbox.write(version_file.name, "VERSION = '3'\n")
    client.get("/", status=500)  # the request that sees the fix is still this process's
    client.get("/", status=500)

    assert sandbox.restarts.reasons == [[str(version_file)]]


IMPORTS_A_SUBMODULE = {
    "import a.b": "import shoppkg.tax as tax\n",
    "from a import b": "from shoppkg import tax\n",
}


def test_a_deleted_module_put_back_restarts_the_process_that_could_not_import_it(
    sandbox: Sandbox,
) -> None:
    """As ``rm`` then ``git checkout``: the missing file is watched where it would be."""
    version_file = sandbox.write_app()
    version_file.unlink()
    client = sandbox.client(sandbox.middleware("webapp:application", debug=True))
    assert "No module named 'webapp_version'" in client.get("/", status=500).text
    client.get("/", status=500)
    assert sandbox.restarts.reasons == []

    sandbox.write(version_file.name, "VERSION = '1'\n")
    client.get("/", status=500)

    assert sandbox.restarts.reasons == [[str(version_file)]]


@pytest.mark.parametrize("statement", IMPORTS_A_SUBMODULE.values(), ids=IMPORTS_A_SUBMODULE)
def test_a_deleted_module_of_a_package_put_back_restarts_the_process(
    sandbox: Sandbox, statement: str
) -> None:
    sandbox.write("shoppkg/__init__.py", "")
    sandbox.write("pkgapp.py", statement + "from tests.helpers import hello_app as application\n")
    client = sandbox.client(sandbox.middleware("pkgapp:application", debug=True))
    assert "tax" in client.get("/", status=500).text.rsplit("\n", 2)[-2]  # the error's line
    assert sandbox.restarts.reasons == []

    tax = sandbox.write("shoppkg/tax.py", "RATE = 0.2\n")
    client.get("/", status=500)

    assert sandbox.restarts.reasons == [[str(tax)]]


def test_import_string_app_is_imported_when_the_middleware_is_made(sandbox: Sandbox) -> None:
    sandbox.write_app(version="7")
    assert "webapp" not in sys.modules
    middleware = sandbox.middleware("webapp:application")
    assert "webapp" in sys.modules  # before any request: the process holds its code up front

    assert sandbox.client(middleware).get("/").json == {"pid": os.getpid(), "version": "7"}


def test_factory_is_called_once_when_the_middleware_is_made(sandbox: Sandbox) -> None:
    sandbox.write_app(version="5")
    calls: list[int] = []

    def make_app() -> object:
        calls.append(threading.get_ident())
        return importlib.import_module("webapp").application

    client = sandbox.client(sandbox.middleware(make_app, factory=True))
    assert calls == [threading.get_ident()]
    answers: list[object] = []
    threads = [
        threading.Thread(target=lambda: answers.append(client.get("/").json)) for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(calls) == 1
    assert answers == [{"pid": os.getpid(), "version": "5"}] * 16


def test_factory_that_raises_answers_500_with_its_traceback_in_debug(sandbox: Sandbox) -> None:
    def make_app() -> object:
        raise LookupError("no such database: app.db")

    client = sandbox.client(sandbox.middleware(make_app, factory=True, debug=True))

    assert "LookupError: no such database: app.db" in client.get("/", status=500).text


def test_import_string_naming_something_not_callable_answers_500(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox.write("notapp.py", "application = 42\n")
    client = sandbox.client(sandbox.middleware("notapp:application"))
    caplog.set_level(logging.INFO, logger="reloadmw")

    client.get("/", status=500)

    (error,) = reloadmw_records(caplog, logging.ERROR)
    assert error.exc_info is not None
    assert "not a WSGI callable" in str(error.exc_info[1])


@pytest.mark.parametrize("value", ["webapp", "webapp:", ":application", ""])
def test_a_malformed_import_string_is_refused_at_construction(value: str) -> None:
    with pytest.raises(ValueError, match="import string"):
        ReloadMiddleware(value, restart=lambda reason: None)


def test_an_app_that_is_neither_callable_nor_a_string_is_refused() -> None:
    with pytest.raises(ValueError, match="neither a WSGI callable nor an import string"):
        ReloadMiddleware(42, restart=lambda reason: None)  # type: ignore[arg-type]


# -- a restart that cannot happen -----------------------------------------


def test_a_strategy_that_raises_is_logged_at_error_and_the_process_keeps_checking(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    failing = Restarts(fail=True)
    client, version_file = sandbox.serve_app(restart=failing)
    caplog.set_level(logging.INFO, logger="reloadmw")

    sandbox.write(version_file.name, "VERSION = '2'\n")
    first = client.get("/")
    sandbox.write(version_file.name, "VERSION = '3'\n")
    second = client.get("/")

    assert first.json == second.json == {"pid": os.getpid(), "version": "1"}
    assert failing.reasons == [[str(version_file)], [str(version_file)]]
    errors = reloadmw_records(caplog, logging.ERROR)
    assert len(errors) == 2
    assert all("restart strategy" in r.getMessage() and r.exc_info for r in errors)


def test_a_signal_that_cannot_be_sent_is_logged_at_error_and_the_process_keeps_checking(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = signals_refused(monkeypatch)
    client, version_file = sandbox.serve_app(restart="mod_wsgi-daemon")
    caplog.set_level(logging.INFO, logger="reloadmw")

    sandbox.write(version_file.name, "VERSION = '2'\n")
    first = client.get("/")
    sandbox.write(version_file.name, "VERSION = '3'\n")
    second = client.get("/")

    assert first.status_int == second.status_int == 200
    assert len(sent) == 2
    errors = reloadmw_records(caplog, logging.ERROR)
    assert len(errors) == 2
    assert all(isinstance(r.exc_info and r.exc_info[1], PermissionError) for r in errors)


# -- under real Apache + mod_wsgi daemon mode ----------------------------------


def error_log_pids(server: ApacheServer, text: str) -> set[int]:
    """Pids of the reloadmw log lines in the error log that contain ``text``."""
    pids = set()
    for line in server.error_log.read_text(errors="replace").splitlines():
        if text in line and "reloadmw (pid=" in line:
            pids.add(int(line.split("reloadmw (pid=", 1)[1].split(")", 1)[0]))
    return pids


@pytest.mark.server
def test_apache_keeps_serving_through_a_syntax_error_and_restarts_once_it_compiles(
    app_dir: Path, start_apache: StartApache
) -> None:
    probe = ProbeApp(app_dir, interval=0.2)
    server = start_apache(probe.script)
    before = {r.json()["pid"] for r in http_burst(server.port, "/?seconds=0.1")}
    imports_before = len(probe.imports())

    edit(probe.version_file, BROKEN_SYNTAX)

    def both_warned() -> bool:
        answers = http_burst(server.port, "/?seconds=0.1")
        assert all(r.status == 200 and r.json()["version"] == "1" for r in answers)
        return len(error_log_pids(server, "not restarting")) == 2

    wait_until(both_warned, RESTART_TIMEOUT, server.describe)
    assert len(probe.imports()) == imports_before
    log = server.error_log.read_text()
    assert f"{probe.version_file}:2: invalid syntax" in log

    probe.set_version("3")

    # Both daemon processes: Apache respawns each at its own once-a-second pass.
    serving = wait_for_new_processes(server, before, lambda answer: answer["version"] == "3")
    after = {pid for pid, version in probe.imports()[imports_before:] if version == "3"}
    assert serving <= after and not after & before
    assert [v for _, v in probe.imports()[imports_before:]] == ["3"] * len(after)
    assert server.process is not None and server.process.poll() is None


WEBAPP_SCRIPT = """\
import logging
from reloadmw import ReloadMiddleware

logging.basicConfig(level=logging.INFO)
application = ReloadMiddleware("webapp:application", interval={interval!r}, debug=True)
reload_required = application.reload_required
"""


@pytest.mark.server
def test_apache_recovers_from_an_import_time_name_error_without_an_apache_restart(
    app_dir: Path, start_apache: StartApache
) -> None:
    interval = 0.3
    (app_dir / "webapp.py").write_text(APP_SOURCE.format(version_module="webapp_version"))
    version_file = app_dir / "webapp_version.py"
    version_file.write_text("VERSION = '1'\n")
    script = app_dir / "app.wsgi"
    script.write_text(WEBAPP_SCRIPT.format(interval=interval))
    server = start_apache(script)
    apache_pid = server.process.pid if server.process else None
    first_pids = {r.json()["pid"] for r in http_burst(server.port, "/?x=1")}

    edit(version_file, NAME_ERROR)

    def broken_everywhere() -> list[Response]:
        answers = http_burst(server.port, "/")
        return answers if all(r.status == 500 for r in answers) else []

    broken = wait_until(broken_everywhere, RESTART_TIMEOUT, server.describe)
    assert all(b"NameError: name 'undefined_name' is not defined" in r.body for r in broken)
    assert "NameError" in server.error_log.read_text()

    edit(version_file, "VERSION = '3'\n")
    time.sleep(interval + 0.2 + 0.3)  # interval + quiet + slack: the next check is due

    fixed = http_burst(server.port, "/")
    assert [r.status for r in fixed] == [200] * len(fixed), fixed[0].body
    assert {r.json()["version"] for r in fixed} == {"3"}
    assert not {r.json()["pid"] for r in fixed} & first_pids
    assert server.process is not None and server.process.pid == apache_pid
    assert server.process.poll() is None

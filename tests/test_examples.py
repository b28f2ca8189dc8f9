"""Each example, run the way its README section says, picks up an edit."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import edit, wait_until
from tests.rig import (
    RESTART_TIMEOUT,
    ApacheServer,
    CommandServer,
    StartServer,
    Traffic,
    backdate,
    copied_example,
    daemon_pids,
    free_port,
    http_burst,
    http_get,
    pserve,
    served,
    wait_for_new_processes,
)

pytestmark = pytest.mark.server

BIN = Path(sys.executable).parent


@pytest.fixture
def example(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A world-readable copy of ``examples/<param>``, its files dated in the past."""
    with copied_example(request.param) as copy:
        backdate(copy)
        yield copy


@pytest.mark.parametrize("example", ["pyramid"], indirect=True)
def test_pyramid_example_under_pserve_serves_an_edited_view(
    example: Path, start_server: StartServer
) -> None:
    # README: PYTHONPATH=. pserve development.ini http_port=6543
    server = start_server(pserve(example))
    before = http_get(server.port).json()
    assert before["message"] == "Hello from Pyramid"

    views = example / "hello_pyramid" / "views.py"
    edit(views, views.read_text().replace("Hello from Pyramid", "Edited"))

    after = served(server, lambda answer: answer["message"] == "Edited")
    assert after["pid"] == before["pid"]  # waitress under pserve: re-executed in place
    assert "restarting (exec)" in server.logs()


@pytest.mark.parametrize("example", ["flask_gunicorn"], indirect=True)
def test_flask_example_under_gunicorn_renders_a_template_edit_then_moves_both_workers(
    example: Path, start_server: StartServer
) -> None:
    # README: cd examples/flask_gunicorn && gunicorn app:app
    port = free_port()
    argv = [str(BIN / "gunicorn"), "app:app", "--bind", f"127.0.0.1:{port}"]
    server = start_server(CommandServer("gunicorn", argv, port, cwd=example))
    old = daemon_pids(server)

    # A template edit: Jinja compiles it again in the same workers, no track=, no restart.
    with Traffic(port) as traffic:
        edit(example / "templates" / "banner.html", "<p>Edited template</p>\n")
        wait_until(
            lambda: all(r.json()["banner"] == "<p>Edited template</p>" for r in http_burst(port)),
            RESTART_TIMEOUT,
            server.describe,
        )
        # A worker that had not rendered the template yet compiles the new one
        # before its first check is due; each worker's check still sees the edit.
        wait_until(lambda: flask_handled(server.logs()) == old, RESTART_TIMEOUT, server.describe)
    assert traffic.failures == []
    assert daemon_pids(server) == old
    assert {a["pid"] for a in traffic.answers} <= old
    assert "Hang up" not in server.logs()

    # A .py edit: gunicorn replaces both workers.
    with Traffic(port) as traffic:
        edit(example / "greeting.py", 'TEXT = "Edited"\n')
        wait_for_new_processes(server, old, lambda answer: answer["greeting"] == "Edited")
    assert traffic.failures == []


def flask_handled(logs: str) -> set[int]:
    """The pids that logged the template edit as handled by Flask, without a restart."""
    found = re.findall(
        r"pid=(\d+)\): change detected in .*banner.html.*handled in this process by Flask", logs
    )
    return {int(pid) for pid in found}


class ApacheWithExampleConf(ApacheServer):
    """Apache running the Django example through its own ``apache.conf``."""

    def config_text(self) -> str:
        server_part, marker, _ = super().config_text().partition("WSGIDaemonProcess")
        assert marker, "the rig's httpd.conf no longer has a WSGIDaemonProcess line"
        project = self.script.parent.parent
        return (
            f"{server_part}"
            f'Define PROJECT_DIR "{project}"\n'
            f'Define VENV "{sys.prefix}"\n'
            f'Include "{project / "apache.conf"}"\n'
        )


@pytest.mark.parametrize("example", ["django"], indirect=True)
def test_django_example_under_apache_daemon_mode_moves_both_processes(
    example: Path, start_server: StartServer
) -> None:
    # README: Define PROJECT_DIR and VENV, then Include examples/django/apache.conf
    server = start_server(ApacheWithExampleConf(example / "mysite" / "wsgi.py"))
    old = daemon_pids(server)
    assert http_get(server.port).json()["greeting"] == "Hello from Django"

    with Traffic(server.port) as traffic:
        edit(example / "mysite" / "greeting.py", 'TEXT = "Edited"\n')
        wait_for_new_processes(server, old, lambda answer: answer["greeting"] == "Edited")

    assert traffic.failures == []
    # reload_required restarts the process before the request: no old answer after a new one.
    first_new = next(i for i, a in enumerate(traffic.answers) if a["greeting"] == "Edited")
    assert all(a["greeting"] == "Edited" for a in traffic.answers[first_new:])

    # A template edit: the same processes render it, from the first request after interval.
    pids = daemon_pids(server)
    edit(example / "templates" / "banner.html", "<p>Edited template</p>\n")
    time.sleep(1.1)  # the example's interval=1.0: the next check of each process is due
    answers = [r.json() for r in http_burst(server.port)]
    assert {a["banner"] for a in answers} == {"<p>Edited template</p>"}
    assert {a["pid"] for a in answers} <= pids
    assert daemon_pids(server) == pids

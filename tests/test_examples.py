"""Each example, run the way its README section says, picks up an edit."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import (
    ApacheServer,
    CommandServer,
    ServerProcess,
    daemon_pids,
    edit_file,
    free_port,
    http_get,
    make_world_readable_dir,
    wait_for_new_processes,
)
from tests.traffic import Traffic, backdate, copy_tree_readable, served

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BIN = Path(sys.executable).parent


@pytest.fixture
def example(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A world-readable copy of ``examples/<param>``, its files dated in the past."""
    parent = make_world_readable_dir("reloadmw-example-")
    copy = copy_tree_readable(EXAMPLES / request.param, parent / request.param)
    backdate(copy)
    yield copy
    shutil.rmtree(parent, ignore_errors=True)


@pytest.mark.parametrize("example", ["pyramid"], indirect=True)
def test_pyramid_example_under_pserve_serves_an_edited_view(
    example: Path, start_server: Callable[..., ServerProcess]
) -> None:
    # README: PYTHONPATH=. pserve development.ini http_port=6543
    port = free_port()
    server = start_server(
        CommandServer(
            "pserve",
            [str(BIN / "pserve"), "development.ini", f"http_port={port}"],
            port,
            cwd=example,
            env={"PYTHONPATH": "."},
        )
    )
    before = http_get(port).json()
    assert before["message"] == "Hello from Pyramid"

    views = example / "hello_pyramid" / "views.py"
    edit_file(views, views.read_text().replace("Hello from Pyramid", "Edited"))

    after = served(server, lambda answer: answer["message"] == "Edited")
    assert after["pid"] == before["pid"]  # waitress under pserve: re-executed in place
    assert "restarting (exec)" in server.logs()


@pytest.mark.parametrize("example", ["flask_gunicorn"], indirect=True)
def test_flask_example_under_gunicorn_moves_both_workers(
    example: Path, start_server: Callable[..., ServerProcess]
) -> None:
    # README: cd examples/flask_gunicorn && gunicorn app:app
    port = free_port()
    argv = [str(BIN / "gunicorn"), "app:app", "--bind", f"127.0.0.1:{port}"]
    server = start_server(CommandServer("gunicorn", argv, port, cwd=example))
    old = daemon_pids(server)

    with Traffic(port) as traffic:
        edit_file(example / "greeting.py", 'TEXT = "Edited"\n')
        wait_for_new_processes(server, old, lambda answer: answer["greeting"] == "Edited")

    assert traffic.failures == []


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
    example: Path, start_server: Callable[..., ServerProcess]
) -> None:
    # README: Define PROJECT_DIR and VENV, then Include examples/django/apache.conf
    server = start_server(ApacheWithExampleConf(example / "mysite" / "wsgi.py"))
    old = daemon_pids(server)
    assert http_get(server.port).json()["greeting"] == "Hello from Django"

    with Traffic(server.port) as traffic:
        edit_file(example / "mysite" / "greeting.py", 'TEXT = "Edited"\n')
        wait_for_new_processes(server, old, lambda answer: answer["greeting"] == "Edited")

    assert traffic.failures == []
    # reload_required restarts the process before the request: no old answer after a new one.
    first_new = next(i for i, a in enumerate(traffic.answers) if a["greeting"] == "Edited")
    assert all(a["greeting"] == "Edited" for a in traffic.answers[first_new:])

"""A real Pyramid app behind ``[filter:reload]``, served by ``pserve`` with waitress."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import edit, settle
from tests.rig import (
    SETTLE,
    ServerProcess,
    StartServer,
    Traffic,
    backdate,
    copied_example,
    http_get,
    pserve,
    served,
)

pytestmark = pytest.mark.server


@pytest.fixture
def project() -> Iterator[Path]:
    """The Pyramid example, with a ``templates/`` directory the filter also tracks."""
    with copied_example("pyramid") as project:
        (project / "templates").mkdir()
        (project / "templates" / "home.pt").write_text("<p>home</p>\n")
        ini = project / "development.ini"
        ini.write_text(
            ini.read_text().replace(
                "track = %(here)s/development.ini",
                "track =\n    %(here)s/development.ini\n    templates/",
            )
        )
        backdate(project)
        yield project


def starts(server: ServerProcess) -> int:
    """How many times pserve started the app (each start logs 'watching N files')."""
    return server.logs().count("checking at most every")


def test_editing_a_view_module_restarts_the_app(project: Path, start_server: StartServer) -> None:
    server = start_server(pserve(project))
    first = http_get(server.port).json()

    views = project / "hello_pyramid" / "views.py"
    edit(views, views.read_text().replace("Hello from Pyramid", "Edited view"))

    assert served(server, lambda answer: answer["message"] == "Edited view")["pid"] == first["pid"]
    assert starts(server) == 2


def test_editing_the_tracked_ini_restarts_with_the_new_settings(
    project: Path, start_server: StartServer
) -> None:
    server = start_server(pserve(project))
    assert http_get(server.port).json()["greeting"] == "hello"

    ini = project / "development.ini"
    edit(ini, ini.read_text().replace("greeting = hello", "greeting = bonjour"))

    served(server, lambda answer: answer["greeting"] == "bonjour")
    assert "development.ini" in server.logs()


def test_under_pserve_reload_a_tracked_template_makes_hupper_restart_the_worker(
    project: Path, start_server: StartServer
) -> None:
    server = start_server(pserve(project, "--reload"))
    first = http_get(server.port).json()

    (project / "templates" / "new.pt").write_text("<p>new</p>\n")  # hupper does not watch it

    second = served(server, lambda answer: answer["pid"] != first["pid"])
    assert second["message"] == "Hello from Pyramid"
    assert "restarting (hupper)" in server.logs()
    assert "re-executing" not in server.logs()


def test_under_pserve_reload_a_module_edit_restarts_the_worker_once(
    project: Path, start_server: StartServer
) -> None:
    server = start_server(pserve(project, "--reload"))
    views = project / "hello_pyramid" / "views.py"

    with Traffic(server.port, clients=1) as traffic:
        edit(views, views.read_text().replace("Hello from Pyramid", "Edited view"))
        served(server, lambda answer: answer["message"] == "Edited view")
        settle(lambda: starts(server) == 2, SETTLE, server.logs)

    assert "re-executing" not in server.logs()
    assert starts(server) == 2, server.logs()
    assert traffic.answers

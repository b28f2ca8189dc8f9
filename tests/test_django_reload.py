"""Django as runserver does it, under Apache + mod_wsgi daemon mode (2 x 4, the hook, preloaded).

The project is ``tests/django_project.py``'s: ``startproject`` + ``startapp``
with app templates, a ``DIRS`` template, a Jinja2 template, a compiled ``.mo``
catalog and an app whose ``ready()`` registers a data directory.

- Template and translation edits show from the first request once
  ``interval`` has passed, in both processes, with the same pids.
- The data directory's edit restarts both processes, and the new data serves.
- A ``file_changed`` receiver that returns True prevents the restart; one that
  raises is logged, the requests are unharmed, and the change restarts.
- A syntax error saved before either process served a request: both keep
  serving the old code with 200, because the URLconf and the views were
  imported when the script was preloaded.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.django_project import DjangoProject
from tests.helpers import edit, wait_until
from tests.rig import (
    RESTART_TIMEOUT,
    ApacheServer,
    StartApache,
    Traffic,
    daemon_pids,
    http_burst,
    wait_for_new_processes,
)

pytestmark = pytest.mark.server

INTERVAL = 0.3
FACTORY = '"django.core.wsgi:get_wsgi_application", factory=True'


def serve(
    app_dir: Path, start_apache: StartApache, application: str = FACTORY, wait: bool = True
) -> tuple[DjangoProject, ApacheServer]:
    """The test project in ``app_dir``, wrapped as ``ReloadMiddleware(<application>)``, served."""
    project = DjangoProject(app_dir)
    return project, start_apache(project.wsgi_script(application, INTERVAL), wait=wait)


def burst(server: ApacheServer) -> list[dict[str, Any]]:
    """Concurrent answers, from both daemon processes."""
    answers = [r.json() for r in http_burst(server.port, "/?seconds=0.1")]
    assert len({a["pid"] for a in answers}) == 2, answers
    return answers


def test_template_and_translation_edits_show_from_the_same_processes(
    app_dir: Path, start_apache: StartApache
) -> None:
    project, server = serve(app_dir, start_apache)
    pids = daemon_pids(server)
    assert {a["new_template"] for a in burst(server)} == {"missing"}

    edits = [
        ("app_template", lambda: edit(project.app_template, "app template 2\n"), "app template 2"),
        (
            "dirs_template",
            lambda: edit(project.dirs_template, "dirs template 2\n"),
            "dirs template 2",
        ),
        ("jinja_template", lambda: edit(project.jinja_template, "jinja 2\n"), "jinja 2"),
        ("new_template", lambda: edit(project.new_template, "new template\n"), "new template"),
        ("hello", lambda: project.set_translation("Bonjour 2"), "Bonjour 2"),
    ]
    for field, make_edit, shown in edits:
        make_edit()
        time.sleep(INTERVAL + 0.1)  # the next check of each process is due
        for answers in (burst(server), burst(server)):  # the first answers and later ones
            assert {a[field] for a in answers} == {shown}, (field, answers, server.logs())
            assert {a["pid"] for a in answers} == pids

    assert sorted(project.loaded()) == sorted(pids)  # no process loaded the app again
    log = server.error_log.read_text(errors="replace")
    assert log.count("handled in this process by Django, no restart") >= 2 * len(edits)
    assert "restarts this daemon process" not in log


def test_an_apps_registered_directory_and_file_changed_receivers(
    app_dir: Path, start_apache: StartApache
) -> None:
    project, server = serve(app_dir, start_apache)
    pids = daemon_pids(server)

    # A receiver that returns True: handled in each process, no restart.
    edit(project.data / "flag.keep", "2\n")
    time.sleep(INTERVAL + 0.1)
    assert {a["pid"] for a in burst(server)} == pids
    wait_until(lambda: {int(line.split()[0]) for line in project.handled()} == pids)
    assert daemon_pids(server) == pids

    # A receiver that raises: logged, every request answered, then the restart.
    with Traffic(server.port, path="/?seconds=0.02") as traffic:
        edit(project.data / "flag.boom", "2\n")
        pids = wait_for_new_processes(server, pids, lambda answer: answer["data"] == "data 1")
    assert traffic.failures == [], traffic.failures
    log = server.error_log.read_text(errors="replace")
    assert "the file_changed receiver pages.apps.data_changed raised RuntimeError" in log
    assert "receiver failed on purpose for flag.boom" in log

    # The data directory registered in ready(): its edit restarts, and the new data serves.
    edit(project.data / "greeting.json", '{"greeting": "data 2"}\n')
    wait_for_new_processes(server, pids, lambda answer: answer["data"] == "data 2")


def test_a_syntax_error_saved_before_any_request_leaves_both_processes_serving(
    app_dir: Path, start_apache: StartApache
) -> None:
    project, server = serve(app_dir, start_apache, '"mysite.wsgi:application"', wait=False)
    # Preloaded: both daemon processes load the script, and the app, before any request.
    loaded = wait_until(
        lambda: set(project.loaded()) if len(set(project.loaded())) == 2 else None,
        RESTART_TIMEOUT,
        server.describe,
    )

    good = project.views.read_text()
    edit(project.views, good.replace('VERSION = "1"', 'VERSION = "2"\ndef broken(:\n'))
    time.sleep(INTERVAL + 0.1)

    for answers in (burst(server), burst(server)):
        assert {(a["pid"], a["version"]) for a in answers} == {(pid, "1") for pid in loaded}
    log = server.error_log.read_text(errors="replace")
    assert log.count(f"not restarting: {project.views}:") == 2  # once in each process

    edit(project.views, good.replace('VERSION = "1"', 'VERSION = "3"'))
    wait_for_new_processes(server, loaded, lambda answer: answer["version"] == "3")

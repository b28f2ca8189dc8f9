"""Django's autoreload protocol in process, with a real Django project (``DEBUG = False``).

The project is ``tests/django_project.py``'s: ``startproject`` + ``startapp``,
set up once for this module; each test builds its own middleware around it
(``restart=`` records the restarts instead of making them) and edits real files.
With ``DEBUG = False`` neither Django's cached template loader nor Jinja2
notices an edit by itself: what shows here was reloaded by the protocol.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.wsgi import get_wsgi_application
from django.test.utils import override_settings
from django.utils.autoreload import BaseReloader, autoreload_started, file_changed

from reloadmw import ReloadMiddleware
from tests.django_project import DjangoProject
from tests.helpers import IGNORE, Sandbox, edit, hello_app, write


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DjangoProject]:
    project = DjangoProject(tmp_path_factory.mktemp("django"), debug=False)
    sys.path.insert(0, str(project.root))
    os.environ["DJANGO_SETTINGS_MODULE"] = "mysite.settings"
    yield project
    sys.path.remove(str(project.root))


@pytest.fixture
def application(project: DjangoProject) -> Any:
    """The project's ``WSGIHandler``: Django is set up once, on the first call."""
    return get_wsgi_application()


def served(sandbox: Sandbox, app: Any, **options: Any) -> Any:
    """A WebTest client of the middleware over ``app``; ``.get("/").json`` is the view's answer."""
    return sandbox.client(sandbox.middleware(app, **options))


def start_line(caplog: pytest.LogCaptureFixture) -> str:
    [line] = [r.getMessage() for r in caplog.records if "watching" in r.getMessage()]
    return line


# -- recognising Django ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "options"),
    [
        ("direct", {}),
        ("mysite.wsgi:application", {}),
        ("django.core.wsgi:get_wsgi_application", {"factory": True}),
    ],
)
def test_every_form_the_readme_shows_is_recognised_as_django(
    sandbox: Sandbox,
    application: Any,
    caplog: pytest.LogCaptureFixture,
    app: str,
    options: dict[str, Any],
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    client = served(sandbox, application if app == "direct" else app, **options)

    assert client.get("/").json["app_template"].startswith("app template")
    assert re.search(r"\d+ in 6 directories registered by Django", start_line(caplog))


class Wrapper:
    """WSGI middleware that keeps the app in ``.application``, as WhiteNoise does."""

    def __init__(self, application: Any) -> None:
        self.application = application

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.application(environ, start_response)

    @property
    def app(self) -> Any:
        raise RuntimeError("a property that raises does not stop the recognition")


def test_django_behind_another_middleware_is_recognised(
    sandbox: Sandbox, application: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    served(sandbox, Wrapper(application))
    assert "registered by Django" in start_line(caplog)


def test_an_app_that_is_not_django_is_not_recognised_even_with_django_set_up(
    sandbox: Sandbox, application: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    served(sandbox, hello_app)
    assert "registered by" not in start_line(caplog)


def test_the_start_line_counts_modules_tracked_files_and_registered_directories(
    sandbox: Sandbox, application: Any, project: DjangoProject, caplog: pytest.LogCaptureFixture
) -> None:
    tracked = write(sandbox.root / "notes.txt", "")
    caplog.set_level(logging.INFO, logger="reloadmw")
    served(sandbox, application, track=[str(tracked)])

    found = re.search(
        r"watching (\d+) files \((\d+) from modules, 1 tracked, (\d+) in 6 directories "
        r"registered by Django\)",
        start_line(caplog),
    )
    assert found, start_line(caplog)
    total, modules, registered = map(int, found.groups())
    assert total == modules + 1 + registered
    # data/ (3 files, 3 globs), the DIRS, app and Jinja2 template directories, pages/locale.
    assert registered == 3 + 3 + 1 + project.new_template.exists()
    assert modules >= 5  # mysite.settings and .urls, pages.apps, .models and .views at least


# -- what Django's own receivers do ------------------------------------------------------


@pytest.mark.parametrize("kind", ["app_template", "dirs_template", "jinja_template"])
def test_a_template_edit_renders_at_once_without_a_restart(
    sandbox: Sandbox, application: Any, project: DjangoProject, kind: str
) -> None:
    client = served(sandbox, application)
    client.get("/")  # compiled and cached
    edit(getattr(project, kind), f"{kind} edited\n")

    assert client.get("/").json[kind] == f"{kind} edited"
    assert sandbox.restarts.reasons == []


def test_with_live_reload_a_template_edit_makes_open_pages_reload_without_a_restart(
    sandbox: Sandbox, application: Any, project: DjangoProject
) -> None:
    client = served(sandbox, application, live_reload=True)
    client.get("/")
    before = client.get("/__reloadmw__/live").json
    edit(project.app_template, "live edit\n")

    assert client.get("/").json["app_template"] == "live edit"  # this request's check took it
    after = client.get("/__reloadmw__/live").json
    assert after["version"] > before["version"] and not after["pending"]  # client.js reloads
    assert sandbox.restarts.reasons == []


def test_a_new_template_file_in_a_watched_directory_renders_without_a_restart(
    sandbox: Sandbox, application: Any, project: DjangoProject
) -> None:
    client = served(sandbox, application)
    assert client.get("/").json["new_template"] == "missing"  # the missing template is cached

    edit(project.new_template, "brand new\n")

    assert client.get("/").json["new_template"] == "brand new"
    assert sandbox.restarts.reasons == []


def test_a_recompiled_translation_catalog_shows_at_once_without_a_restart(
    sandbox: Sandbox, application: Any, project: DjangoProject
) -> None:
    client = served(sandbox, application)
    project.set_translation("Salut in process")
    before = client.get("/").json["hello"]  # maybe already new: the check runs first
    project.set_translation("Bonjour in process")

    assert client.get("/").json["hello"] == "Bonjour in process"
    assert before in ("Salut in process", "Bonjour in process")
    assert sandbox.restarts.reasons == []


def test_a_py_edit_still_restarts(
    sandbox: Sandbox, application: Any, project: DjangoProject
) -> None:
    client = served(sandbox, application)
    edit(project.views, project.views.read_text())

    client.get("/")

    assert sandbox.restarts.reasons == [[str(project.views)]]


# -- what an app's receivers do ------------------------------------------------------------


def test_a_directory_registered_in_ready_is_watched_and_its_edit_restarts(
    sandbox: Sandbox, application: Any, project: DjangoProject
) -> None:
    client = served(sandbox, application)
    greeting = edit(project.data / "greeting.json", '{"greeting": "data 2"}\n')
    later = edit(project.data / "later.json", "{}\n")  # created after the registration
    edit(project.data / "ignored.txt", "no glob matches it\n")

    client.get("/")

    assert sandbox.restarts.reasons == [sorted([str(greeting), str(later)])]


def test_a_file_changed_receiver_that_returns_true_prevents_the_restart(
    sandbox: Sandbox, application: Any, project: DjangoProject
) -> None:
    client = served(sandbox, application)
    edit(project.data / "flag.keep", "2\n")

    client.get("/")

    assert sandbox.restarts.reasons == []
    assert f"{os.getpid()} flag.keep" in project.handled()


def test_a_file_changed_receiver_that_raises_is_logged_and_the_change_restarts(
    sandbox: Sandbox, application: Any, project: DjangoProject, caplog: pytest.LogCaptureFixture
) -> None:
    client = served(sandbox, application)
    caplog.set_level(logging.INFO, logger="reloadmw")
    boom = edit(project.data / "flag.boom", "2\n")

    assert client.get("/").status_int == 200

    assert sandbox.restarts.reasons == [[str(boom)]]
    [error] = [r for r in caplog.records if r.name == "reloadmw" and r.levelno == logging.ERROR]
    assert "pages.apps.data_changed raised RuntimeError" in error.getMessage()
    assert str(boom) in error.getMessage()
    assert error.exc_info is not None
    assert "receiver failed on purpose for flag.boom" in str(error.exc_info[1])


def test_the_sender_offers_what_djangos_reloaders_offer(
    sandbox: Sandbox, application: Any, project: DjangoProject
) -> None:
    extra = write(sandbox.root / "extra.cfg", "a = 1\n")
    senders: list[Any] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        senders.append(sender)
        sender.extra_files.add(extra)

    autoreload_started.connect(receiver, dispatch_uid="test_sender")
    try:
        client = served(sandbox, application)
    finally:
        autoreload_started.disconnect(dispatch_uid="test_sender")
    [sender] = senders
    assert isinstance(sender, BaseReloader)
    watched = set(sender.watched_files())
    assert {extra, project.data / "greeting.json", project.views} <= watched

    edit(extra, "a = 2\n")
    client.get("/")
    assert sandbox.restarts.reasons == [[str(extra)]]


def test_file_changed_gets_the_sender_and_a_path(
    sandbox: Sandbox, application: Any, project: DjangoProject
) -> None:
    calls: list[tuple[Any, Any]] = []

    def receiver(sender: Any, file_path: Any, **kwargs: Any) -> None:
        calls.append((sender, file_path))

    file_changed.connect(receiver, dispatch_uid="test_file_changed")
    try:
        client = served(sandbox, application)
        edit(project.data / "flag.keep", "3\n")
        client.get("/")
    finally:
        file_changed.disconnect(dispatch_uid="test_file_changed")
    [(sender, path)] = calls
    assert isinstance(sender, BaseReloader)
    assert path == project.data / "flag.keep"
    assert isinstance(path, Path)


# -- the whole app loaded up front -------------------------------------------------------


def test_the_urlconf_and_its_views_are_imported_when_the_middleware_is_made(
    sandbox: Sandbox, application: Any, project: DjangoProject
) -> None:
    write(project.app / "lazy_views.py", "def view(request):\n    return None\n")
    write(
        project.app / "lazy_urls.py",
        "from django.urls import path\nfrom pages import lazy_views\n\n"
        "urlpatterns = [path('', lazy_views.view)]\n",
    )
    with override_settings(ROOT_URLCONF="pages.lazy_urls"):
        assert "pages.lazy_views" not in sys.modules
        sandbox.middleware("django.core.wsgi:get_wsgi_application", factory=True)
        assert "pages.lazy_views" in sys.modules


def test_a_broken_urlconf_at_load_is_a_failed_load_with_its_files_watched(
    sandbox: Sandbox, application: Any, project: DjangoProject
) -> None:
    broken = write(project.app / "broken_urls.py", "urlpatterns = [undefined_view]\n")
    with override_settings(ROOT_URLCONF="pages.broken_urls"):
        client = served(sandbox, "django.core.wsgi:get_wsgi_application", factory=True)
        page = client.get("/", status=500)
        assert "failed to load" in page.text
        edit(broken, "urlpatterns = []\n")
        client.get("/", status=500)

    assert sandbox.restarts.reasons == [[str(broken)]]


def test_an_autoreload_started_receiver_that_raises_is_logged_and_the_others_still_register(
    sandbox: Sandbox, application: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise LookupError("no such directory setting")

    caplog.set_level(logging.INFO, logger="reloadmw")
    autoreload_started.connect(broken, dispatch_uid="test_broken")
    try:
        served(sandbox, application)
    finally:
        autoreload_started.disconnect(dispatch_uid="test_broken")

    [error] = [r for r in caplog.records if r.name == "reloadmw" and r.levelno == logging.ERROR]
    assert "autoreload_started receiver" in error.getMessage()
    assert "broken raised LookupError" in error.getMessage()
    assert "in 6 directories registered by Django" in start_line(caplog)


def test_a_file_changed_receiver_may_register_a_directory_during_the_check(
    sandbox: Sandbox, application: Any, project: DjangoProject
) -> None:
    later = sandbox.root / "later"

    def receiver(sender: Any, file_path: Any, **kwargs: Any) -> bool:
        sender.watch_dir(later, "*.txt")  # under the middleware's scan lock
        return True

    file_changed.connect(receiver, dispatch_uid="test_register_late")
    # Not the sandbox's: closing a middleware whose lock is held forever would hang teardown.
    middleware = ReloadMiddleware(
        application, interval=0, quiet=0, restart=sandbox.restarts, ignore=IGNORE
    )
    client = sandbox.client(middleware)
    try:
        edit(project.data / "flag.keep", "4\n")
        request = threading.Thread(target=client.get, args=("/",), daemon=True)
        request.start()
        request.join(10)
    finally:
        file_changed.disconnect(dispatch_uid="test_register_late")
    assert not request.is_alive(), "the check deadlocked on its own lock"

    note = edit(later / "note.txt", "new\n")
    client.get("/")
    middleware.close()
    assert sandbox.restarts.reasons == [[str(note)]]

"""A real Django project for the tests: ``django-admin startproject mysite`` + ``startapp pages``.

The view at ``/`` answers JSON with its pid and one field per kind of file a
developer edits, so that a test sees at once which edits a process shows:

- ``app_template``: ``pages/templates/pages/home.html`` (the app's ``templates/``);
- ``dirs_template``: ``templates/site.html`` (``TEMPLATES['DIRS']``);
- ``jinja_template``: ``pages/jinja2/pages/jinja.html`` (the Jinja2 backend);
- ``new_template``: ``pages/templates/pages/new.html``, missing at first;
- ``hello``: ``gettext("Hello")`` in French, from ``pages/locale/fr/.../django.mo``;
- ``data``: ``data/greeting.json``, read once at import: only a restart shows an edit;
- ``version``: ``VERSION`` in ``pages/views.py``.

``PagesConfig.ready()`` connects to ``autoreload_started`` and registers
``data/`` for ``*.json``, ``*.keep`` and ``*.boom``; its ``file_changed``
receiver returns True for a ``.keep`` file (and notes the pid in
``state/handled.log``) and raises for a ``.boom`` file. Each process that
loads the WSGI script notes its pid in ``state/loaded.log``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import edit, read_lines
from tests.rig import backdate, make_world_writable_file

DJANGO_ADMIN = Path(sys.executable).with_name("django-admin")

SETTINGS = """
# -- added by tests/django_project.py
DEBUG = {debug!r}
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["pages.apps.PagesConfig", *INSTALLED_APPS]
TEMPLATES[0]["DIRS"] = [BASE_DIR / "templates"]
TEMPLATES.append(
    {{"BACKEND": "django.template.backends.jinja2.Jinja2", "DIRS": [], "APP_DIRS": True}}
)
DATA_DIR = BASE_DIR / "data"
STATE_DIR = BASE_DIR / "state"
"""

APPS = """
import os

from django.apps import AppConfig
from django.conf import settings
from django.utils.autoreload import autoreload_started, file_changed


def watch_data(sender, **kwargs):
    for glob in ("*.json", "*.keep", "*.boom"):
        sender.watch_dir(settings.DATA_DIR, glob)


def data_changed(sender, file_path, **kwargs):
    if file_path.suffix == ".keep":
        with open(settings.STATE_DIR / "handled.log", "a") as log:
            log.write(f"{os.getpid()} {file_path.name}\\n")
        return True
    if file_path.suffix == ".boom":
        raise RuntimeError(f"receiver failed on purpose for {file_path.name}")
    return None


class PagesConfig(AppConfig):
    name = "pages"

    def ready(self):
        autoreload_started.connect(watch_data, dispatch_uid="pages_watch_data")
        file_changed.connect(data_changed, dispatch_uid="pages_data_changed")
"""

VIEWS = """
import json
import os
import time

from django.conf import settings
from django.http import JsonResponse
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.utils import translation

VERSION = "1"
DATA = json.loads((settings.DATA_DIR / "greeting.json").read_text())


def rendered(name, using):
    try:
        return render_to_string(name, using=using).strip()
    except TemplateDoesNotExist:
        return "missing"


def index(request):
    time.sleep(float(request.GET.get("seconds", 0)))
    with translation.override("fr"):
        hello = translation.gettext("Hello")
    return JsonResponse({
        "pid": os.getpid(),
        "version": VERSION,
        "data": DATA["greeting"],
        "app_template": rendered("pages/home.html", "django"),
        "dirs_template": rendered("site.html", "django"),
        "jinja_template": rendered("pages/jinja.html", "jinja2"),
        "new_template": rendered("pages/new.html", "django"),
        "hello": hello,
    })
"""

PO = """\
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"
"Language: fr\\n"

msgid "Hello"
msgstr "{text}"
"""


class DjangoProject:
    """The project's files under ``root``, and the edits the tests make to them."""

    def __init__(self, root: Path, *, debug: bool = True) -> None:
        self.root = root
        django_admin("startproject", "mysite", str(root))
        django_admin("startapp", "pages", cwd=root)
        self.settings = root / "mysite" / "settings.py"
        self.app = root / "pages"
        self.views = self.app / "views.py"
        self.app_template = self.app / "templates" / "pages" / "home.html"
        self.dirs_template = root / "templates" / "site.html"
        self.jinja_template = self.app / "jinja2" / "pages" / "jinja.html"
        self.new_template = self.app / "templates" / "pages" / "new.html"
        self.po = self.app / "locale" / "fr" / "LC_MESSAGES" / "django.po"
        self.data = root / "data"
        self.state = root / "state"
        self.state.mkdir()
        self.state.chmod(0o777)
        self.loaded_log = make_world_writable_file(self.state / "loaded.log")
        self.handled_log = make_world_writable_file(self.state / "handled.log")

        with self.settings.open("a") as settings:
            settings.write(SETTINGS.format(debug=debug))
        urls = root / "mysite" / "urls.py"
        urls.write_text(
            urls.read_text().replace(
                "urlpatterns = [",
                "from pages.views import index\n\nurlpatterns = [\n    path('', index),",
            )
        )
        (self.app / "apps.py").write_text(APPS)
        self.views.write_text(VIEWS)
        for path, text in [
            (self.app_template, "app template 1"),
            (self.dirs_template, "dirs template 1"),
            (self.jinja_template, "jinja template 1"),
            (self.data / "greeting.json", '{"greeting": "data 1"}'),
            (self.data / "flag.keep", "1"),
            (self.data / "flag.boom", "1"),
        ]:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n")
        self.po.parent.mkdir(parents=True)
        self.set_translation("Bonjour 1")
        for path in [root, *root.rglob("*")]:
            if path.parent != self.state and path != self.state:
                path.chmod(0o755 if path.is_dir() else 0o644)
        backdate(root)

    def wsgi_script(self, application: str, interval: float) -> Path:
        """``app.wsgi`` at the root: ``application = ReloadMiddleware(<application>, ...)``.

        ``application`` is the Python expression of the middleware's first
        arguments, e.g. ``'"django.core.wsgi:get_wsgi_application", factory=True'``.
        """
        script = self.root / "app.wsgi"
        script.write_text(
            "import logging\n"
            "import os\n\n"
            "from reloadmw import ReloadMiddleware\n\n"
            "logging.basicConfig(level=logging.INFO)\n"
            'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")\n'
            f"application = ReloadMiddleware({application}, interval={interval!r})\n"
            "reload_required = application.reload_required\n"
            f"with open({str(self.loaded_log)!r}, 'a') as log:\n"
            "    log.write(f'{os.getpid()}\\n')\n"
        )
        script.chmod(0o644)
        backdate(self.root)
        return script

    def set_translation(self, text: str) -> None:
        """Save the French ``.po`` and compile it with ``msgfmt``, as ``compilemessages`` does."""
        edit(self.po, PO.format(text=text))
        mo = self.po.with_suffix(".mo")
        subprocess.run(["msgfmt", "-o", str(mo), str(self.po)], check=True)
        mo.chmod(0o644)

    def loaded(self) -> list[int]:
        """Pids of the processes that loaded the WSGI script, in order."""
        return [int(line) for line in read_lines(self.loaded_log)]

    def handled(self) -> list[str]:
        """``<pid> <file>`` for each ``.keep`` change the app's receiver took."""
        return read_lines(self.handled_log)


def django_admin(*args: str, cwd: Path | None = None) -> None:
    """Run the venv's ``django-admin``."""
    subprocess.run([str(DJANGO_ADMIN), *args], check=True, cwd=cwd)

"""A real Django project whose settings.py is broken and then fixed, under Apache daemon mode.

The project is made by ``django-admin startproject`` at test time. The WSGI
script wraps it by import string, ``ReloadMiddleware("mysite.wsgi:application")``,
so Django is set up on the first request of each process. While settings.py
is broken the processes answer 500; once it is fixed, the first request after
``interval`` is served by Django again. Apache is never restarted, and no
process ever gets stuck on "populate() isn't reentrant".
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import edit, wait_until
from tests.rig import RESTART_TIMEOUT, Response, StartApache, http_burst

INTERVAL = 0.3
QUIET = 0.2
REENTRANT = "populate() isn't reentrant"

VIEW = """
import os
from django.conf import settings
from django.http import JsonResponse


def version(request):
    return JsonResponse({"pid": os.getpid(), "version": settings.APP_VERSION})
"""

SCRIPT = f"""\
import logging
from reloadmw import ReloadMiddleware

logging.basicConfig(level=logging.INFO)
application = ReloadMiddleware("mysite.wsgi:application", interval={INTERVAL!r}, debug=True)
reload_required = application.reload_required
"""

#: Two broken settings that compile: an app name typo breaks apps.populate()
#: half-way (the classic "populate() isn't reentrant" trap on a retry), a
#: NameError breaks the import of settings.py itself.
BREAKAGES = {
    "installed_apps_typo": (
        ("'django.contrib.auth',", "'django.contrib.authz',"),
        "No module named 'django.contrib.authz'",
    ),
    "name_error": (
        ("DEBUG = True", "DEBUG = True\nTIME_ZONE = UNDEFINED_ZONE"),
        "NameError: name 'UNDEFINED_ZONE' is not defined",
    ),
}


def start_project(directory: Path) -> Path:
    """``django-admin startproject mysite`` with a view answering pid and APP_VERSION."""
    admin = Path(sys.executable).with_name("django-admin")
    subprocess.run([str(admin), "startproject", "mysite", str(directory)], check=True)
    package = directory / "mysite"
    (package / "views.py").write_text(VIEW)
    urls = package / "urls.py"
    urls.write_text(
        urls.read_text().replace(
            "urlpatterns = [",
            'from mysite.views import version\n\nurlpatterns = [\n    path("", version),',
        )
    )
    settings = package / "settings.py"
    settings.write_text(settings.read_text() + '\nAPP_VERSION = "1"\n')
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return settings


def set_app_version(settings: Path, old: str, new: str) -> None:
    text = settings.read_text()
    assert f'APP_VERSION = "{old}"' in text
    edit(settings, text.replace(f'APP_VERSION = "{old}"', f'APP_VERSION = "{new}"'))


@pytest.mark.server
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_django_recovers_from_broken_settings_without_an_apache_restart(
    app_dir: Path, start_apache: StartApache, breakage: str
) -> None:
    settings = start_project(app_dir)
    script = app_dir / "django.wsgi"
    script.write_text(SCRIPT)
    server = start_apache(script)
    apache_pid = server.process.pid if server.process else None
    working = http_burst(server.port, "/")
    assert {r.json()["version"] for r in working} == {"1"}
    first_pids = {r.json()["pid"] for r in working}

    (old, new), error = BREAKAGES[breakage]
    good_settings = settings.read_text()
    assert old in good_settings
    edit(settings, good_settings.replace(old, new).replace('"1"', '"2"'))

    def broken_everywhere() -> list[Response]:
        answers = http_burst(server.port, "/")
        return answers if all(r.status == 500 for r in answers) else []

    broken = wait_until(broken_everywhere, RESTART_TIMEOUT, server.describe)
    broken += http_burst(server.port, "/")  # every later request: still the first error
    assert all(r.status == 500 for r in broken)
    assert all(error in r.body.decode() for r in broken), broken[0].body.decode()
    assert not any(REENTRANT in r.body.decode() for r in broken)

    edit(settings, good_settings.replace('"1"', '"3"'))
    time.sleep(INTERVAL + QUIET + 0.3)  # the next check in every process is due

    fixed = http_burst(server.port, "/")
    assert [r.status for r in fixed] == [200] * len(fixed), fixed[0].body.decode()
    assert {r.json()["version"] for r in fixed} == {"3"}
    assert not {r.json()["pid"] for r in fixed} & first_pids
    log = server.error_log.read_text(errors="replace")
    assert error in log
    assert REENTRANT not in log
    assert server.process is not None and server.process.pid == apache_pid


def test_without_the_import_string_a_retried_django_setup_is_stuck(app_dir: Path) -> None:
    """The trap the import-string form avoids: retrying setup in the same process."""
    settings = start_project(app_dir)
    (old, new), _ = BREAKAGES["installed_apps_typo"]
    good = settings.read_text()
    settings.write_text(good.replace(old, new))
    retry = (
        "from django.core.wsgi import get_wsgi_application\n"
        "for attempt in range(2):\n"
        "    try:\n"
        "        get_wsgi_application()\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
        "    if attempt == 0:\n"
        f"        open({str(settings)!r}, 'w').write({good!r})\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "mysite.settings", "PYTHONPATH": str(app_dir)}
    result = subprocess.run(
        [sys.executable, "-c", retry], capture_output=True, text=True, env=env, check=True
    )

    first, second = result.stdout.splitlines()
    assert "No module named 'django.contrib.authz'" in first
    assert REENTRANT in second  # fixed on disk, yet this process can never load it again

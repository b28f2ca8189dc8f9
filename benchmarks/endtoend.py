"""Save a file, get the new code: timed under real Apache + mod_wsgi daemon mode.

For examples/hello and for a fresh ``django-admin startproject``, each wrapped
in ReloadMiddleware with ``reload_required`` exported, this prints the median (and range) of:

- cold start: from starting Apache to the first response;
- mod_wsgi's own restart: from touching the WSGI script to the first response
  from a new daemon process (no reloadmw involved: the floor for a restart);
- reloadmw: from saving an imported module to the first response with its new
  code, with ``interval=0, quiet=0`` (with the defaults add up to ``interval``
  for the next check and ``quiet`` = 0.2 s for the burst window);
- for Django, from saving a template to the first response that shows it
  (handled in the process through ``file_changed``: no restart), and what that
  first response cost against a normal request (target: at most 10 ms more).

Run by ``run.py``, or alone: ``benchmarks/.venv/bin/python benchmarks/endtoend.py``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.rig import (  # noqa: E402
    ApacheServer,
    http_get,
    make_world_readable_dir,
)

REPEATS = 7
DEADLINE = 60.0
SETTINGS = "interval=0, quiet=0"


class App:
    """An app directory served by Apache, with a module to edit and its marker."""

    name = "app"
    #: The middleware's keyword arguments, as Python source.
    settings = SETTINGS

    def __init__(self, root: Path) -> None:
        self.root = root
        self.edits = 0

    @property
    def script(self) -> Path:
        raise NotImplementedError

    @property
    def python_path(self) -> list[Path]:
        return []

    def edit(self) -> str:
        """Save a new version of the module; return the text the new code answers."""
        raise NotImplementedError

    #: Whether :meth:`edit_template` exists: the app renders a template.
    has_template = False

    def edit_template(self) -> str:
        """Save a new version of the template; return its text."""
        raise NotImplementedError


class Hello(App):
    name = "examples/hello"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        shutil.copytree(REPO / "examples" / "hello", root, dirs_exist_ok=True)
        script = root / "hello.wsgi"
        text, count = re.subn(
            r'ReloadMiddleware\("hello_app:application", [^)]*\)',
            f'ReloadMiddleware("hello_app:application", {self.settings})',
            script.read_text(),
        )
        if count != 1:
            raise SystemExit(f"cannot set {self.settings} in {script}: the example changed")
        script.write_text(text)

    @property
    def script(self) -> Path:
        return self.root / "hello.wsgi"

    def edit(self) -> str:
        self.edits += 1
        marker = f"Hello, edit {self.edits}"
        save(self.root / "greeting.py", f"TEXT = {marker!r}\n")
        return marker


class Django(App):
    name = "django startproject"
    has_template = True

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        admin = Path(sys.executable).parent / "django-admin"
        subprocess.run([str(admin), "startproject", "mysite", str(root)], check=True)
        site = root / "mysite"
        (site / "version.py").write_text("VERSION = 'v0'\n")
        (root / "templates").mkdir()
        (root / "templates" / "bench.html").write_text("template-t0\n")
        with (site / "settings.py").open("a") as settings:
            settings.write("\nTEMPLATES[0]['DIRS'] = [BASE_DIR / 'templates']\n")
        with (site / "urls.py").open("a") as urls:
            urls.write(
                "\nimport os\nfrom django.http import HttpResponse\nfrom django.urls import path\n"
                "from django.template.loader import render_to_string\n"
                "from . import version\n\n\ndef show_version(request):\n"
                "    page = render_to_string('bench.html').strip()\n"
                "    return HttpResponse(\n"
                "        f'<body>{version.VERSION} {page} {os.getpid()}</body>'\n"
                "    )\n\n\n"
                "urlpatterns.append(path('', show_version))\n"
            )
        with (site / "wsgi.py").open("a") as wsgi:
            wsgi.write(
                "\nfrom reloadmw import ReloadMiddleware\n\n"
                f"application = ReloadMiddleware(application, {self.settings})\n"
                "reload_required = application.reload_required\n"
            )
        for path in root.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)

    @property
    def script(self) -> Path:
        return self.root / "mysite" / "wsgi.py"

    @property
    def python_path(self) -> list[Path]:
        return [self.root]

    def edit(self) -> str:
        self.edits += 1
        marker = f"v{self.edits}"
        save(self.root / "mysite" / "version.py", f"VERSION = {marker!r}\n")
        return marker

    def edit_template(self) -> str:
        self.edits += 1
        marker = f"template-t{self.edits}"
        save(self.root / "templates" / "bench.html", f"{marker}\n")
        return marker


def save(path: Path, text: str) -> None:
    """Save as many editors do, by rename: no request ever sees half a file."""
    new = path.with_name(path.name + ".new")
    new.write_text(text)
    new.chmod(0o644)
    os.replace(new, path)


def first_answer(port: int, wanted: Callable[[str], bool]) -> float:
    """Request back to back until an answer satisfies ``wanted``; return when it came."""
    return first_response(port, wanted)[1]


def first_response(port: int, wanted: Callable[[str], bool]) -> tuple[float, float, str]:
    """Like :func:`first_answer`; return when that request was sent, answered, and its body."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, http.client.HTTPException):
            sent = time.monotonic()
            response = http_get(port, "/", timeout=10.0)
            body = response.body.decode()
            if response.status == 200 and wanted(body):
                return sent, response.finished_at, body
    raise SystemExit(f"no such answer from port {port} within {DEADLINE} s")


def request_time(port: int, count: int = 20) -> float:
    """The median time of ``count`` requests one after the other, nothing changed."""
    times = []
    for _ in range(count):
        sent = time.monotonic()
        http_get(port, "/")
        times.append(time.monotonic() - sent)
    return median(times)


def pid_of(body: str) -> int:
    return int(re.findall(r"\d+", body)[-1])


def showing(marker: str) -> Callable[[str], bool]:
    return lambda body: marker in body


def from_new_process(old: set[int]) -> Callable[[str], bool]:
    return lambda body: pid_of(body) not in old


def settle(server: ApacheServer, marker: str) -> set[int]:
    """Wait until both daemon processes answer with ``marker``; return their pids."""
    pids: set[int] = set()
    deadline = time.monotonic() + DEADLINE
    while len(pids) < server.processes and time.monotonic() < deadline:
        body = http_get(server.port, "/").body.decode()
        if marker in body:
            pids.add(pid_of(body))
    return pids


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def measure(app: App) -> dict[str, list[float]]:
    server = ApacheServer(app.script, python_path=app.python_path)
    cold, native, reloaded = [], [], []
    template, first_cost, normal = [], [], []
    try:
        t0 = time.monotonic()
        server.start()
        cold.append(first_answer(server.port, showing("")) - t0)
        marker = app.edit()
        settle(server, marker)
        for _ in range(REPEATS):
            old = settle(server, marker)
            time.sleep(0.5)
            t0 = time.monotonic()
            app.script.touch()
            native.append(first_answer(server.port, from_new_process(old)) - t0)
            settle(server, marker)
            time.sleep(0.5)
            t0 = time.monotonic()
            marker = app.edit()
            reloaded.append(first_answer(server.port, showing(marker)) - t0)
            if app.has_template:
                old = settle(server, marker)
                normal.append(request_time(server.port))
                time.sleep(0.5)
                t0 = time.monotonic()
                shown = app.edit_template()
                sent, done, body = first_response(server.port, showing(f"{shown} "))
                if pid_of(body) not in old:
                    raise SystemExit(f"a template edit restarted a process: {body!r}")
                template.append(done - t0)
                first_cost.append(done - sent)
        for _ in range(REPEATS - 1):  # more cold starts, for a median
            server.stop()
            server = ApacheServer(app.script, python_path=app.python_path)
            t0 = time.monotonic()
            server.start()
            cold.append(first_answer(server.port, showing("")) - t0)
    except BaseException:
        print(server.logs(), file=sys.stderr)
        raise
    finally:
        server.stop()
    results = {
        "cold start (Apache start to first response)": cold,
        "mod_wsgi restart (touch the WSGI script)": native,
        f"reloadmw (save a module; {SETTINGS})": reloaded,
    }
    if template:
        results["reloadmw (save a template: no restart)"] = template
        results["  its first new response, request to answer"] = first_cost
        results["  a request when nothing changed"] = normal
    return results


def template_target(results: dict[str, list[float]]) -> str | None:
    """The PASS/MISS line: a template edit costs its first request at most 10 ms more."""
    first = results.get("  its first new response, request to answer")
    if not first:
        return None
    extra = (median(first) - median(results["  a request when nothing changed"])) * 1e3
    verdict = "PASS" if extra <= 10 else "MISS"
    return f"{verdict}  a template edit costs its first request <= 10 ms more: {extra:+.1f} ms"


@contextlib.contextmanager
def app_dir() -> Iterator[Path]:
    root = make_world_readable_dir("reloadmw-bench-app-")
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def measured(
    makers: tuple[type[App], ...], measure: Callable[[App], dict[str, list[float]]]
) -> Iterator[tuple[App, dict[str, list[float]]]]:
    """Make each app in a fresh directory, ``measure`` it, print its rows; yield the results."""
    for make in makers:
        with app_dir() as root:
            app = make(root)
            results = measure(app)
        for what, samples in results.items():
            ms = sorted(round(s * 1e3) for s in samples)
            print(f"  {app.name:20s} {what:46s} {median(samples) * 1e3:5.0f} ms ({ms[0]}-{ms[-1]})")
        yield app, results


def main() -> None:
    print(
        "end to end under Apache + mod_wsgi daemon mode (2 processes): "
        f"median (min-max) of {REPEATS}"
    )
    for _, results in measured((Hello, Django), measure):
        target = template_target(results)
        if target is not None:
            print(target)


if __name__ == "__main__":
    main()

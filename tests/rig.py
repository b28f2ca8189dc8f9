"""The real-server rig: servers as subprocesses, the probe app, and traffic against them.

Each server (Apache httpd + mod_wsgi daemon mode, mod_wsgi-express, or any
command line: gunicorn, uWSGI, pserve, ``python app.py``) runs as a
subprocess in its own session on a free loopback port, with its own server
root in a world-readable temporary directory, so that the ``www-data`` daemon
processes can read it when the tests run as root. The demo
(``scripts/demo.py``) and the end-to-end benchmark use the same classes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import http.client
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.helpers import REPO, edit, read_lines, settle, wait_until

APACHE = Path("/usr/sbin/apache2")
APACHE_MODULES = Path("/usr/lib/apache2/modules")
DAEMON_USER = "www-data"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
HTTP_TIMEOUT = 30.0
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
RESTART_TIMEOUT = 30.0
#: Seconds a negative check (no further restart) watches a server.
SETTLE = 1.5


def runs_as_root() -> bool:
    """Return True when the servers must drop privileges to ``www-data``."""
    return os.geteuid() == 0


def make_world_readable_dir(prefix: str) -> Path:
    """Create a temporary directory that the daemon user can read."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@contextlib.contextmanager
def bindfs_mount(source: Path, mountpoint: Path, *options: str) -> Iterator[Path]:
    """``source`` mounted at ``mountpoint`` with bindfs (FUSE), unmounted at the end, always.

    As root, bindfs adds ``allow_other``: the ``www-data`` daemons read through
    it. Edits made in ``source`` are behind the mount, where inotify on the
    mount sees none of them, as on a VM's shared folder or an NFS share. A mount
    that cannot be made fails the test (install bindfs with scripts/bootstrap).
    """
    try:
        done = subprocess.run(
            ["bindfs", *options, str(source), str(mountpoint)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError as exc:
        raise AssertionError(f"bindfs is not installed ({exc}); run scripts/bootstrap") from exc
    assert done.returncode == 0, (
        f"bindfs {source} {mountpoint} failed ({done.returncode}): {done.stderr.strip()}; "
        "it needs /dev/fuse (run as root)"
    )
    try:
        wait_until(lambda: os.path.ismount(mountpoint), 10, lambda: f"{mountpoint} never mounted")
        yield mountpoint
    finally:
        unmount(mountpoint)


def unmount(mountpoint: Path) -> None:
    """``fusermount -u``, retried while a process still uses the mount; fail if it stays."""

    def unmounted() -> bool:
        if not os.path.ismount(mountpoint):
            return True
        subprocess.run(["fusermount", "-u", str(mountpoint)], capture_output=True, timeout=30)
        return not os.path.ismount(mountpoint)

    wait_until(unmounted, STOP_TIMEOUT, lambda: f"{mountpoint} is still mounted", poll=0.2)


def make_daemon_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) for the daemon user alone, as the endpoint's state_dir wants."""
    path.mkdir(mode=0o700)
    if runs_as_root():
        entry = pwd.getpwnam(DAEMON_USER)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def make_world_writable_file(path: Path) -> Path:
    """Create an empty file the daemon processes can append to."""
    path.touch()
    path.chmod(0o666)
    return path


def die_with_parent() -> None:
    """In the server's process: get SIGTERM if the test run dies without teardown.

    Linux sends it when the thread that started the server exits: start servers
    from the main thread (or one that outlives them).
    """
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """Return a loopback TCP port that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def mod_wsgi_express() -> Path:
    """Path of the ``mod_wsgi-express`` script of the running environment."""
    return Path(sys.executable).parent / "mod_wsgi-express"


@functools.cache
def mod_wsgi_module() -> Path:
    """Path of the mod_wsgi Apache module built by pip for this Python."""
    output = subprocess.run(
        [str(mod_wsgi_express()), "module-location"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return Path(output.strip())


@dataclass(frozen=True)
class Response:
    """A complete HTTP response, read with timeouts."""

    status: int
    headers: dict[str, str]
    body: bytes
    finished_at: float

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(
    port: int,
    path: str = "/",
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = HTTP_TIMEOUT,
) -> Response:
    """Send one request to 127.0.0.1:``port`` and read the whole answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Connection": "close", **(headers or {})})
        resp = conn.getresponse()
        content = resp.read()
        received = {name.lower(): value for name, value in resp.getheaders()}
        return Response(resp.status, received, content, time.monotonic())
    finally:
        conn.close()


def http_get(port: int, path: str = "/", timeout: float = HTTP_TIMEOUT) -> Response:
    """GET ``path`` from 127.0.0.1:``port`` and read the whole body."""
    return http_request(port, path, timeout=timeout)


def http_burst(port: int, path: str = "/", count: int = 8) -> list[Response]:
    """Send ``count`` concurrent GETs, so that every daemon process gets some."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda _: http_get(port, path), range(count)))


class ServerProcess:
    """A web server subprocess in its own session, with its logs on disk."""

    name = "server"

    def __init__(self, port: int | None, ready_path: str) -> None:
        self.chosen_port = port is not None
        self.port = port or free_port()
        self.ready_path = ready_path
        self.root = make_world_readable_dir(f"reloadmw-{self.name}-")
        self.console_log = self.root / "console.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        raise NotImplementedError

    def log_files(self) -> list[Path]:
        return [self.console_log]

    def logs(self) -> str:
        """All server logs, for assertion messages and failure reports."""
        parts = []
        for path in self.log_files():
            text = path.read_text(errors="replace") if path.exists() else "(missing)"
            parts.append(f"----- {path} -----\n{text}")
        return "\n".join(parts)

    def popen_options(self) -> dict[str, Any]:
        """Extra ``subprocess.Popen`` arguments (``cwd``, ``env``) for :meth:`start`."""
        return {}

    def start(self) -> None:
        with self.console_log.open("wb") as console:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
                **self.popen_options(),
            )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> Response:
        """Poll the readiness URL until it answers 200."""

        def answered() -> Response | None:
            if self.process is not None and self.process.poll() is not None:
                if self.lost_port_race():
                    self.port = free_port()
                    self.start()
                    return None
                raise AssertionError(
                    f"{self.name} exited with status {self.process.returncode} "
                    f"before answering {self.url}\n{self.logs()}"
                )
            with contextlib.suppress(OSError, http.client.HTTPException):
                # Short attempts: the port may belong to someone else for a while.
                response = http_get(self.port, self.ready_path, timeout=5.0)
                if response.status == 200:
                    return response
            return None

        return wait_until(answered, timeout, self.describe)

    def lost_port_race(self) -> bool:
        """True when another process took the free port before the server bound it."""
        return not self.chosen_port and "Address already in use" in self.logs()

    def describe(self) -> str:
        return f"{self.name} on {self.url}\n{self.logs()}"

    def session_processes(self) -> list[int]:
        """Pids still alive in the server's session (parent and daemons)."""
        if self.process is None:
            return []
        sid = self.process.pid
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                # After the command name: state, ppid, pgrp, session.
                if int(fields[3]) == sid and fields[0] != "Z":
                    pids.append(int(stat.parent.name))
        return pids

    def stop(self) -> None:
        """Stop the server, and fail if any of its processes lingers."""
        process = self.process
        try:
            if process is not None:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    self._kill_session()
                    process.wait(STOP_TIMEOUT)
                lingering = self._wait_session_gone()
                if lingering:
                    self._kill_session()
                    raise AssertionError(
                        f"{self.name} left processes {lingering} running after stop\n{self.logs()}"
                    )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_session(self) -> None:
        for pid in self.session_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _wait_session_gone(self) -> list[int]:
        with contextlib.suppress(AssertionError):
            wait_until(lambda: not self.session_processes(), STOP_TIMEOUT)
        return self.session_processes()

    @contextlib.contextmanager
    def running(self, wait: bool = True) -> Iterator[ServerProcess]:
        self.start()
        try:
            if wait:
                self.wait_ready()
            yield self
        finally:
            self.stop()


class ModWsgiServer(ServerProcess):
    """A server running one WSGI script in mod_wsgi daemon processes."""

    def __init__(
        self,
        script: Path,
        port: int | None = None,
        *,
        processes: int = 2,
        threads: int = 4,
        shutdown_timeout: int = 10,
        ready_path: str = "/",
    ) -> None:
        super().__init__(port, ready_path)
        self.script = script
        self.processes = processes
        self.threads = threads
        self.shutdown_timeout = shutdown_timeout


class ApacheServer(ModWsgiServer):
    """Debian's Apache 2.4 serving one WSGI script in mod_wsgi daemon mode."""

    name = "apache"

    def __init__(
        self,
        script: Path,
        port: int | None = None,
        *,
        python_path: Sequence[Path] = (),
        site: str | None = None,
        preload: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(script, port, **options)
        self.python_path = [script.parent, *python_path]
        #: Apache lines that replace the daemon group below (the docs' snippets).
        self.site = site
        #: Load the script when each daemon process starts (the recommended set-up);
        #: False: on each process's first request, which mod_wsgi serves without the hook.
        self.preload = preload
        self.config = self.root / "httpd.conf"
        self.error_log = self.root / "error.log"

    def log_files(self) -> list[Path]:
        return [self.error_log, self.console_log]

    def config_text(self) -> str:
        modules = "\n".join(
            f"LoadModule {name}_module {APACHE_MODULES / f'mod_{name}.so'}"
            for name in ("mpm_event", "authz_core")
        )
        user = f"User {DAEMON_USER}\nGroup {DAEMON_USER}\n" if runs_as_root() else ""
        server = f"""\
ServerRoot "{self.root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{self.port}
PidFile "{self.root}/httpd.pid"
ErrorLog "{self.error_log}"
LogLevel info
DefaultRuntimeDir "{self.root}"
Mutex file:{self.root} default
{modules}
LoadModule wsgi_module "{mod_wsgi_module()}"
{user}
WSGISocketPrefix "{self.root}/wsgi"
"""
        return server + (self.site if self.site is not None else self.site_text())

    def site_text(self) -> str:
        app_dir = self.script.parent
        python_path = ":".join(str(p) for p in self.python_path)
        # process-group and application-group on WSGIScriptAlias preload the
        # script when each daemon process starts, as a production set-up does.
        groups = "process-group=app" + (" application-group=%{GLOBAL}" if self.preload else "")
        return f"""\
WSGIPythonHome "{sys.prefix}"
WSGIRestrictEmbedded On
WSGIDontWriteBytecode On
WSGIDaemonProcess app processes={self.processes} threads={self.threads} \\
    python-home="{sys.prefix}" python-path="{python_path}" \\
    shutdown-timeout={self.shutdown_timeout} display-name=%{{GROUP}}
WSGIProcessGroup app
WSGIApplicationGroup %{{GLOBAL}}
WSGIScriptAlias / "{self.script}" {groups}
<Directory "{app_dir}">
    Require all granted
</Directory>
"""

    def start(self) -> None:
        self.config.write_text(self.config_text())
        self.error_log.unlink(missing_ok=True)
        super().start()

    def command(self) -> list[str]:
        return [str(APACHE), "-f", str(self.config), "-DFOREGROUND"]


class ModWsgiExpress(ModWsgiServer):
    """``mod_wsgi-express start-server`` with two daemon processes."""

    name = "mod_wsgi-express"

    def command(self) -> list[str]:
        app_dir = str(self.script.parent)
        user = ["--user", DAEMON_USER, "--group", DAEMON_USER] if runs_as_root() else []
        return [
            str(mod_wsgi_express()),
            "start-server",
            str(self.script),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--processes", str(self.processes),
            "--threads", str(self.threads),
            "--shutdown-timeout", str(self.shutdown_timeout),
            "--server-root", str(self.root / "express"),
            "--working-directory", app_dir,
            "--python-path", app_dir,
            "--log-level", "info",
            "--lang", "C.UTF-8",
            "--locale", "C.UTF-8",
            "--log-to-terminal",
            *user,
        ]  # fmt: skip


class CommandServer(ServerProcess):
    """Any server started from a command line: gunicorn, uWSGI, pserve, ``python app.py``.

    ``argv`` must make the server listen on ``127.0.0.1:port``; ``env`` is
    added to this process's environment. ``TMPDIR`` is the server's root, so
    whatever the server leaves in its temporary directory goes with it.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        *,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        ready_path: str = "/",
    ) -> None:
        self.name = name
        super().__init__(port, ready_path)
        self.argv = list(argv)
        self.cwd = cwd
        self.env = {**os.environ, "TMPDIR": str(self.root), **(env or {})}

    def command(self) -> list[str]:
        return self.argv

    def popen_options(self) -> dict[str, Any]:
        return {"cwd": self.cwd, "env": self.env}


#: The types of the conftest fixtures that start servers.
StartApache = Callable[..., ApacheServer]
StartExpress = Callable[..., ModWsgiExpress]
StartServer = Callable[..., ServerProcess]


def daemon_pids(server: ServerProcess) -> set[int]:
    """The pids of both daemon processes, found by concurrent requests."""

    def both() -> set[int]:
        pids = {r.json()["pid"] for r in http_burst(server.port, "/?seconds=0.1")}
        return pids if len(pids) == 2 else set()

    return wait_until(both, RESTART_TIMEOUT, server.describe)


def wait_for_new_processes(
    server: ServerProcess, old_pids: set[int], serves: Callable[[dict[str, Any]], bool]
) -> set[int]:
    """Wait until two processes other than ``old_pids`` answer and pass ``serves``."""

    def restarted() -> set[int]:
        answers = [r.json() for r in http_burst(server.port, "/?seconds=0.1")]
        pids = {answer["pid"] for answer in answers}
        fresh = len(pids) == 2 and not pids & old_pids
        return pids if fresh and all(serves(answer) for answer in answers) else set()

    return wait_until(restarted, RESTART_TIMEOUT, server.describe)


class ProbeApp:
    """The probe app's files in a world-readable directory.

    ``app.wsgi`` wraps ``probe.py`` (a copy of ``tests/probe_app.py``) in
    ReloadMiddleware; ``version.py`` holds ``VERSION``, which tests edit.
    With ``import_sleep``, the script marks ``state/importing-<pid>`` after
    importing the app and then sleeps, so a test can edit during start-up.
    """

    def __init__(
        self,
        directory: Path,
        *,
        interval: float = 0.3,
        track: Sequence[str] = (),
        hook: bool = True,
        import_sleep: float = 0.0,
        version: str = "1",
    ) -> None:
        self.directory = directory
        self.script = directory / "app.wsgi"
        self.version_file = directory / "version.py"
        self.config_file = directory / "config.ini"
        self.templates = directory / "templates"
        self.state = directory / "state"
        self.state.mkdir()
        self.state.chmod(0o777)
        self.imports_log = make_world_writable_file(self.state / "imports.log")
        self.set_version(version)
        self.config_file.write_text("[app]\ncolour = red\n")
        self.templates.mkdir()
        (self.templates / "index.html").write_text("<p>hello</p>\n")
        shutil.copy(Path(__file__).with_name("probe_app.py"), directory / "probe.py")
        self.script.write_text(self.script_text(interval, tuple(track), hook, import_sleep))

    @staticmethod
    def script_text(
        interval: float, track: tuple[str, ...], hook: bool, import_sleep: float
    ) -> str:
        lines = [
            "import logging",
            "import time",
            "",
            "import probe",
            "from reloadmw import ReloadMiddleware",
            "",
            "logging.basicConfig(level=logging.INFO)",
        ]
        if import_sleep:
            lines += ['probe.mark("importing")', f"time.sleep({import_sleep!r})"]
        lines.append(
            "application = ReloadMiddleware("
            f"probe.application, interval={interval!r}, track={track!r})"
        )
        if hook:
            lines.append("reload_required = application.reload_required")
        return "\n".join(lines) + "\n"

    def set_version(self, version: str) -> None:
        edit(self.version_file, f"VERSION = {version!r}\n")

    def imports(self) -> list[tuple[int, str]]:
        """``(pid, version)`` for every process that imported the app so far."""
        pairs = (line.split(" ", 1) for line in read_lines(self.imports_log))
        return [(int(pid), version) for pid, version in pairs]

    def marks(self, name: str) -> list[int]:
        """Pids that left ``state/<name>-<pid>``."""
        return [int(path.name.rsplit("-", 1)[1]) for path in self.state.glob(f"{name}-*")]


def served(server: ServerProcess, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll (through restarts) until the server's JSON answer is ``wanted``; return it."""

    def answered() -> dict[str, Any] | None:
        with contextlib.suppress(OSError, http.client.HTTPException):
            answer: dict[str, Any] = http_get(server.port, timeout=5).json()
            if wanted(answer):
                return answer
        return None

    return wait_until(answered, RESTART_TIMEOUT, server.describe)


# -- app directories ---------------------------------------------------------------------


def backdate(directory: Path, seconds: float = 60.0) -> None:
    """Set the mtime of every file under ``directory`` ``seconds`` into the past.

    A server that imports the files at once would otherwise see files saved in
    the same clock tick as its own start, which count as edits made during
    start-up.
    """
    then = time.time_ns() - int(seconds * 1e9)
    for path in directory.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(then, then))


@contextlib.contextmanager
def copied_example(name: str) -> Iterator[Path]:
    """A world-readable copy of ``examples/<name>`` (no caches), removed at the end."""
    parent = make_world_readable_dir(f"reloadmw-{name}-")
    target = parent / name
    ignored = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "examples" / name, target, ignore=ignored)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    try:
        yield target
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def write_probe_module(app: ProbeApp) -> str:
    """Copy the probe's WSGI script as an importable module; return its import string."""
    (app.directory / "probe_wsgi.py").write_text(app.script.read_text())
    backdate(app.directory)
    return "probe_wsgi:application"


def gunicorn(
    directory: Path, app: str, *options: str, worker_class: str = "gthread"
) -> CommandServer:
    """gunicorn with 2 workers serving the import string ``app`` from ``directory``.

    gthread workers get 4 threads. A sync worker gets 1: gunicorn quietly runs
    gthread instead when a sync worker is given more.
    """
    port = free_port()
    threads = 4 if worker_class == "gthread" else 1
    return CommandServer(
        "gunicorn",
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "--workers", "2",
            "--worker-class", worker_class,
            "--threads", str(threads),
            "--bind", f"127.0.0.1:{port}",
            "--graceful-timeout", "20",
            "--no-control-socket",
            "--chdir", str(directory),
            *options,
            app,
        ],
        port,
    )  # fmt: skip


def pserve(project: Path, *options: str) -> CommandServer:
    """``PYTHONPATH=. pserve [options] development.ini`` in ``project``, as the README says."""
    port = free_port()
    argv = [str(Path(sys.executable).parent / "pserve"), *options, "development.ini"]
    return CommandServer(
        "pserve", [*argv, f"http_port={port}"], port, cwd=project, env={"PYTHONPATH": "."}
    )


# -- traffic -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One request of :class:`Traffic`: its JSON answer, or what went wrong."""

    sent: float  # time.monotonic() when it was sent
    status: int  # 0: no HTTP answer at all
    answer: dict[str, Any] | None  # the JSON body of a 200
    error: str = ""


class Traffic:
    """``clients`` threads GETting ``path`` back to back until the block ends.

    Every request's :class:`Outcome` is recorded, so a test can say "no
    request failed while the workers were replaced".
    """

    def __init__(self, port: int, clients: int = 3, path: str = "/") -> None:
        self.port = port
        self.path = path
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, name=f"traffic-{n}", daemon=True)
            for n in range(clients)
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(HTTP_TIMEOUT + 5)

    def _client(self) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                response = http_get(self.port, self.path)
                if response.status == 200:
                    outcome = Outcome(sent, 200, response.json())
                else:
                    outcome = Outcome(sent, response.status, None, repr(response.body[:200]))
            except (OSError, http.client.HTTPException, ValueError) as error:
                outcome = Outcome(sent, 0, None, f"{type(error).__name__}: {error}")
            with self._lock:
                self.outcomes.append(outcome)

    @property
    def answers(self) -> list[dict[str, Any]]:
        """The JSON answers, in the order they came."""
        with self._lock:
            return [o.answer for o in self.outcomes if o.answer is not None]

    @property
    def failures(self) -> list[str]:
        """Every request that got no 200 with a JSON body, described."""
        with self._lock:
            return [f"status {o.status}: {o.error}" for o in self.outcomes if o.answer is None]


def settled_imports(app: ProbeApp, server: ServerProcess) -> list[tuple[int, str]]:
    """Keep requesting for :data:`SETTLE` seconds; return the imports, which must not change.

    A process that kept seeing an old edit as new would restart again here.
    """
    before = app.imports()
    with Traffic(server.port, clients=2) as traffic:
        settle(
            lambda: app.imports() == before,
            SETTLE,
            lambda: f"restarted again: {app.imports()}\n{server.logs()}",
        )
    assert traffic.failures == [], traffic.failures
    return before

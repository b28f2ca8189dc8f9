"""Under load, nothing fails and nothing is lost while the code changes 5 times.

About 16 clients send GETs and POSTs to 127.0.0.1 for a bounded time (about
20 s, and at most a fixed number of requests each). Each POST carries a
unique id that the app appends to an SQLite database in WAL mode. Meanwhile
the test edits the app's version module 5 times. Every response carries the
code version and the pid that served it, and each process logs (with a
timestamp) when it detects a change, so the test checks:

- no connection error, reset or 5xx on any request;
- every POST answered 200 has its id in the database exactly once, and no
  id is stored twice;
- no request sent to a process after that process detected the change is
  answered by old code (with mod_wsgi's ``reload_required`` hook); without
  the hook, only those sent within 500 ms of the detection (they reach the
  process before the SIGINT that follows the detecting response); under
  gunicorn, which replaces all workers together whichever saw the change,
  at most :data:`GUNICORN_OLD_CODE` of them.

Runs against Apache + mod_wsgi daemon mode (2 processes x 4 threads) with and
without the hook, and gunicorn (2 workers x 4 threads). The counts are
printed (``pytest -s``) for the closing note.
"""

from __future__ import annotations

import http.client
import re
import sqlite3
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import edit, read_lines, wait_until
from tests.rig import (
    RESTART_TIMEOUT,
    ServerProcess,
    StartApache,
    StartServer,
    backdate,
    gunicorn,
    http_request,
    make_world_writable_file,
)

pytestmark = [pytest.mark.server, pytest.mark.load]

CLIENTS = 16
EDITS = 5
WARM_UP = 1.5  # seconds of traffic before the first edit
EDIT_EVERY = 2.5  # seconds between edits: each settles and restarts before the next
COOL_DOWN = 2.0  # seconds of traffic after the last edit
MAX_REQUESTS_PER_CLIENT = 4_000
PAUSE = 0.01  # between two requests of a client
INTERVAL = 0.1
QUIET = 0.2
#: gunicorn: at most this many requests sent to a worker after it detected a change are
#: answered by old code (until the arbiter's new workers take over). Measured on the
#: 2-core test machine over 10 runs: 47 to 134 (longest lag 37 to 251 ms); 3x the most.
GUNICORN_OLD_CODE = 400

APP = """\
import json, logging, os, sqlite3, time
from pathlib import Path

import codever

STATE = Path(__file__).with_name("state")
with open(STATE / "imports.log", "a") as log:
    log.write(f"{os.getpid()} {codever.VERSION}\\n")


def application(environ, start_response):
    if environ["REQUEST_METHOD"] == "POST":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        post_id = environ["wsgi.input"].read(size).decode()
        db = sqlite3.connect(STATE / "posts.db", timeout=30, isolation_level=None)
        try:
            db.execute(
                "INSERT INTO posts (id, pid, version) VALUES (?, ?, ?)",
                (post_id, os.getpid(), codever.VERSION),
            )
        except sqlite3.Error as error:
            # Name the SQLite error (SQLITE_IOERR_*) and the files it met, in the log.
            # -wal and -shm come and go as connections close: a stat may find none.
            files = {}
            for path in STATE.glob("posts*"):
                try:
                    info = path.stat()
                except OSError as gone:
                    files[path.name] = gone.strerror
                else:
                    files[path.name] = (info.st_uid, oct(info.st_mode), info.st_ino, info.st_size)
            code = getattr(error, "sqlite_errorcode", "?")
            name = getattr(error, "sqlite_errorname", "?")
            logging.getLogger("loadapp").error(
                "POST %s: %s (%s) %s; %s", post_id, name, code, error, files
            )
            raise
        finally:
            db.close()
    time.sleep(0.005)  # a little work, so that requests overlap the restarts
    body = json.dumps({"pid": os.getpid(), "version": codever.VERSION}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
"""

#: The WSGI script (Apache) or module (gunicorn). Log lines carry their time.
SCRIPT = """\
import logging

import loadapp
from reloadmw import ReloadMiddleware
from reloadmw.watch.patterns import DEFAULT_IGNORE

logging.basicConfig(level=logging.INFO, format="%(created).6f %(message)s")
application = ReloadMiddleware(
    loadapp.application,
    interval={interval!r},
    quiet={quiet!r},
    ignore=(*DEFAULT_IGNORE, "reloadmw/*"),  # not the library (an editable install)
)
{hook}
"""
HOOK = "reload_required = application.reload_required"

DETECTED = re.compile(r"(\d+\.\d+) reloadmw \(pid=(\d+)\): change detected")


@dataclass(frozen=True)
class Outcome:
    client: int
    method: str
    post_id: str | None
    sent: float  # wall clock, comparable with the servers' log lines
    status: int  # 0: no HTTP answer at all
    pid: int
    version: int
    error: str = ""


@dataclass
class LoadApp:
    """The app's files: ``loadapp.py``, ``codever.py`` and the ``state/`` it writes."""

    directory: Path

    def __post_init__(self) -> None:
        self.state = self.directory / "state"
        self.state.mkdir()
        self.state.chmod(0o777)  # SQLite creates -wal and -shm files beside the db
        self.db = self.state / "posts.db"
        with sqlite3.connect(self.db) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE posts (id TEXT, pid INTEGER, version TEXT)")
        db.close()
        self.db.chmod(0o666)
        self.imports_log = make_world_writable_file(self.state / "imports.log")
        (self.directory / "loadapp.py").write_text(APP)
        self.version_file = self.directory / "codever.py"
        self.version_file.write_text("VERSION = '0'\n")

    def write_script(self, name: str, hook: bool) -> Path:
        path = self.directory / name
        path.write_text(SCRIPT.format(interval=INTERVAL, quiet=QUIET, hook=HOOK if hook else ""))
        backdate(self.directory)  # saved well before the servers start
        return path

    def stored_ids(self) -> Counter[str]:
        with sqlite3.connect(self.db) as db:
            rows = db.execute("SELECT id FROM posts").fetchall()
        db.close()
        return Counter(row[0] for row in rows)

    def imports(self) -> list[tuple[int, int]]:
        pairs = (line.split() for line in read_lines(self.imports_log))
        return [(int(pid), int(version)) for pid, version in pairs]


def one_request(port: int, client: int, method: str) -> Outcome:
    post_id = uuid.uuid4().hex if method == "POST" else None
    sent = time.time()
    try:
        response = http_request(
            port,
            "/",
            method=method,
            body=post_id.encode() if post_id else None,
            headers={"Content-Type": "text/plain"} if post_id else None,
        )
    except (OSError, http.client.HTTPException) as error:
        return Outcome(client, method, post_id, sent, 0, 0, -1, f"{type(error).__name__}: {error}")
    if response.status != 200:
        body = response.body[:300].decode(errors="replace")
        return Outcome(client, method, post_id, sent, response.status, 0, -1, body)
    answer = response.json()
    return Outcome(client, method, post_id, sent, 200, answer["pid"], int(answer["version"]))


def run_load(server: ServerProcess, app: LoadApp) -> tuple[list[Outcome], list[float]]:
    """16 clients for the whole run while the version module is edited 5 times."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(number: int) -> None:
        for count in range(MAX_REQUESTS_PER_CLIENT):
            if stop.is_set():
                return
            outcome = one_request(server.port, number, "POST" if count % 2 else "GET")
            with lock:
                outcomes.append(outcome)
            time.sleep(PAUSE)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    edits: list[float] = []
    try:
        time.sleep(WARM_UP)
        for version in range(1, EDITS + 1):
            edits.append(time.time())
            edit(app.version_file, f"VERSION = '{version}'\n")
            time.sleep(EDIT_EVERY)
        time.sleep(COOL_DOWN)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return outcomes, edits


def detections(server: ServerProcess) -> dict[int, list[float]]:
    """When each process logged that it detected a change."""
    found: dict[int, list[float]] = {}
    for match in DETECTED.finditer(server.logs()):
        found.setdefault(int(match.group(2)), []).append(float(match.group(1)))
    return found


def old_code_after_detection(
    outcomes: list[Outcome], server: ServerProcess
) -> dict[int, list[float]]:
    """Per process: how long after it detected a change each later request was sent.

    A process serves only its old code (it restarts on its first detection),
    so these are requests sent after detection and answered by old code.
    """
    late: dict[int, list[float]] = {}
    for pid, times in detections(server).items():
        detected = min(times)
        late[pid] = [o.sent - detected for o in outcomes if o.pid == pid and o.sent > detected]
    return late


def old_code_after_group_detection(
    outcomes: list[Outcome], edits: list[float], server: ServerProcess
) -> int:
    """Requests sent after any process detected edit N, answered with a version below N."""
    first = sorted(t for times in detections(server).values() for t in times)
    stale = 0
    for version, edited in enumerate(edits, start=1):
        detected = next((t for t in first if t > edited), None)
        if detected is not None:
            stale += sum(1 for o in outcomes if o.sent > detected and o.version < version)
    return stale


def check_load(
    name: str, server: ServerProcess, app: LoadApp, old_for: float | None
) -> dict[str, object]:
    """Run the load; check nothing failed or was lost; return the counts.

    With ``old_for`` seconds, every process must detect every edit itself,
    restart exactly once for it, and answer old code only to requests sent
    less than ``old_for`` seconds after it detected the change (0: none at
    all). With None these per-process rules do not apply (gunicorn replaces
    all workers together, whichever saw the change): the caller bounds the
    counts it returns.
    """
    outcomes, edits = run_load(server, app)
    failed = [o for o in outcomes if o.status != 200]
    posts = [o for o in outcomes if o.method == "POST"]
    stored = app.stored_ids()
    late = old_code_after_detection(outcomes, server)
    lags = [lag for per_process in late.values() for lag in per_process]
    restarts = len(app.imports()) - 2
    report = {
        "requests": len(outcomes),
        "posts": len(posts),
        "stored": sum(stored.values()),
        "failed": len(failed),
        "restarts": restarts,
        "detections": len(late),
        "old_code_after_detection": len(lags),
        "max_old_per_process": max(map(len, late.values()), default=0),
        "max_old_lag_ms": round(max(lags, default=0.0) * 1000, 1),
        "old_code_after_first_detection_in_group": old_code_after_group_detection(
            outcomes, edits, server
        ),
        "versions": dict(sorted(Counter(o.version for o in outcomes).items())),
    }
    print(f"\nload {name}: {report}")

    assert failed == [], f"{len(failed)} failed, e.g. {failed[:5]}\n{server.describe()}"
    answered = [o.post_id for o in posts if o.status == 200]
    assert [i for i in answered if stored[i or ""] != 1] == [], (
        "a POST answered 200 is lost or stored twice"
    )
    assert [i for i, n in stored.items() if n > 1] == [], "an id is stored twice"
    assert {o.version for o in outcomes} == set(range(EDITS + 1))
    if old_for is None:
        assert restarts >= 2 * EDITS
    else:
        assert restarts == 2 * EDITS, f"one restart per process per edit\n{server.describe()}"
        assert len(late) == 2 * EDITS, f"each edit must be detected in each process: {late}"
        if old_for == 0:
            assert lags == [], (late, server.describe())
        assert max(lags, default=0.0) < old_for or not lags, (late, server.describe())
    return report


@pytest.mark.parametrize(
    ("hook", "old_for"),
    # Without the hook, requests that reach a process between the detecting
    # request and its SIGINT (sent once that response is complete) still get
    # the old code: a few, all within a fraction of a second.
    [(True, 0.0), (False, 0.5)],
    ids=["with-hook", "without-hook"],
)
def test_apache_daemon_mode_loses_nothing_and_serves_no_old_code_after_detection(
    app_dir: Path, start_apache: StartApache, hook: bool, old_for: float
) -> None:
    app = LoadApp(app_dir)
    server = start_apache(app.write_script("load.wsgi", hook=hook), threads=4, processes=2)
    wait_until(lambda: len(app.imports()) == 2, RESTART_TIMEOUT, server.describe)

    check_load("apache " + ("with the hook" if hook else "without the hook"), server, app, old_for)


def test_gunicorn_loses_nothing_while_its_workers_are_replaced_five_times(
    app_dir: Path, start_server: StartServer
) -> None:
    app = LoadApp(app_dir)
    app.write_script("loadwsgi.py", hook=False)
    server = start_server(gunicorn(app_dir, "loadwsgi:application"))
    wait_until(lambda: len(app.imports()) == 2, RESTART_TIMEOUT, server.describe)

    report = check_load("gunicorn", server, app, old_for=None)

    old = report["old_code_after_detection"]
    assert isinstance(old, int) and old <= GUNICORN_OLD_CODE, (report, server.describe())

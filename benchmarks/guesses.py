"""Password checks made for 40 concurrent wrong guesses from one address, per server.

The endpoint allows 5 failed passwords per address and window; each check
costs one key derivation (0.2 to 0.3 s with the default 600,000 iterations).
This sends 40 wrong guesses at once from 127.0.0.1 and counts the answers:
every 401 is one password check, every 429 was refused before any. It runs
in process (40 threads calling the middleware), under waitress (8 threads),
Apache + mod_wsgi daemon mode (2 processes x 4 threads) and gunicorn (2
workers x 4 threads), with the default hash and the default state directory.

Run alone: ``.venv/bin/python benchmarks/guesses.py [--servers in-process,waitress,...]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from reloadmw import ReloadMiddleware  # noqa: E402
from reloadmw.endpoint.passwords import hash_password  # noqa: E402
from tests.rig import (  # noqa: E402
    ApacheServer,
    CommandServer,
    ProbeApp,
    ServerProcess,
    backdate,
    free_port,
    gunicorn,
    http_request,
    make_world_readable_dir,
)

GUESSES = 40
PASSWORD = "open sesame"
PATH = "/__reload__"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
WRONG = urllib.parse.urlencode({"password": "guess"}).encode()


def in_process() -> Counter[int]:
    """40 threads calling the middleware directly, as a threaded server would."""
    from webob import Request

    state = Path(tempfile.mkdtemp(prefix="reloadmw-guesses-"))
    try:
        middleware = ReloadMiddleware(
            lambda environ, start_response: [],
            password=hash_password(PASSWORD),
            restart=lambda reason: None,
            state_dir=str(state / "state"),
            root=str(state),
            ignore="*",
        )

        def guess(_: int) -> int:
            request = Request.blank(PATH, method="POST", body=WRONG, headers=FORM)
            request.environ["REMOTE_ADDR"] = "127.0.0.1"
            return int(request.get_response(middleware).status_code)

        with ThreadPoolExecutor(max_workers=GUESSES) as pool:
            return Counter(pool.map(guess, range(GUESSES)))
    finally:
        shutil.rmtree(state, ignore_errors=True)


def over_http(server: ServerProcess) -> Counter[int]:
    def guess(_: int) -> int:
        return http_request(server.port, PATH, method="POST", body=WRONG, headers=FORM).status

    with ThreadPoolExecutor(max_workers=GUESSES) as pool:
        return Counter(pool.map(guess, range(GUESSES)))


def script(app: ProbeApp) -> str:
    """The probe app behind the endpoint, with the default cost and state directory."""
    return "\n".join(
        [
            "import logging",
            "import probe",
            "from reloadmw import ReloadMiddleware",
            "logging.basicConfig(level=logging.INFO)",
            "application = ReloadMiddleware(",
            f"    probe.application, interval=60.0, password={hash_password(PASSWORD)!r})",
            "",
        ]
    )


def waitress(app: ProbeApp) -> ServerProcess:
    serve = app.directory / "serve.py"
    port = free_port()
    serve.write_text(
        "import sys\nimport waitress\n"
        + app.script.read_text()
        + "waitress.serve(application, host='127.0.0.1', port=int(sys.argv[1]), threads=8)\n"
    )
    return CommandServer("waitress", [sys.executable, str(serve), str(port)], port)


def apache(app: ProbeApp) -> ServerProcess:
    return ApacheServer(app.script)


def gunicorn_2(app: ProbeApp) -> ServerProcess:
    (app.directory / "probe_wsgi.py").write_text(app.script.read_text())
    return gunicorn(app.directory, "probe_wsgi:application")


SERVERS: dict[str, Callable[[ProbeApp], ServerProcess]] = {
    "waitress (threads=8)": waitress,
    "Apache mod_wsgi daemon 2x4": apache,
    "gunicorn -w 2 (gthread, 4 threads)": gunicorn_2,
}


def served(name: str, make: Callable[[ProbeApp], ServerProcess]) -> tuple[Counter[int], str]:
    directory = make_world_readable_dir("reloadmw-guesses-app-")
    try:
        app = ProbeApp(directory, hook=False)
        app.script.write_text(script(app))
        server = make(app)
        backdate(directory)
        with server.running():
            counts = over_http(server)
            return counts, server.logs()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def report(name: str, counts: Counter[int], logs: str | None = None) -> dict[str, Any]:
    row = {"server": name, "checks (401)": counts.get(401, 0), "refused (429)": counts.get(429, 0)}
    others = {status: n for status, n in counts.items() if status not in (401, 429)}
    if others:
        row["other"] = others
    if logs is not None:
        row["'wrong password' log lines"] = logs.count("wrong password")
        row["'refusing it (429)' log lines"] = logs.count("refusing it (429)")
    print(row, flush=True)
    return row


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--servers", default="in-process,waitress,apache,gunicorn")
    args = parser.parse_args(list(argv) if argv is not None else None)
    wanted = args.servers.split(",")
    for _ in range(args.rounds):
        if "in-process" in wanted:
            report("in-process (40 threads)", in_process())
        for name, make in SERVERS.items():
            if any(name.lower().startswith(w) for w in wanted):
                report(name, *served(name, make))


if __name__ == "__main__":
    main()

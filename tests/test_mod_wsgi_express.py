"""ReloadMiddleware under ``mod_wsgi-express start-server --processes 2``.

mod_wsgi-express's generated handler does not pass the script's
``reload_required`` on, so the change goes through the middleware's own path:
the detecting request is answered, then its process restarts.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.rig import (
    ProbeApp,
    StartExpress,
    daemon_pids,
    http_burst,
    wait_for_new_processes,
)

pytestmark = pytest.mark.server

INTERVAL = 0.3


def test_express_restarts_after_the_detecting_response(
    app_dir: Path, start_express: StartExpress
) -> None:
    app = ProbeApp(app_dir, interval=INTERVAL)
    server = start_express(app.script)
    old_pids = daemon_pids(server)

    app.set_version("2")
    time.sleep(INTERVAL + 0.5)  # the change is due; the next requests detect it
    detecting = http_burst(server.port, "/?seconds=0.1")

    assert {r.status for r in detecting} == {200}
    # The requests that detect the change are still answered by the old code.
    assert "1" in {r.json()["version"] for r in detecting}
    new_pids = wait_for_new_processes(server, old_pids, lambda a: a["version"] == "2")
    assert {pid for pid, version in app.imports() if version == "2"} >= new_pids

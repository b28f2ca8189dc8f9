"""Under a server that reloads on its own, reloadmw restarts each process once, not twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rig import (
    ModWsgiExpress,
    ProbeApp,
    StartServer,
    Traffic,
    backdate,
    daemon_pids,
    settled_imports,
    wait_for_new_processes,
)

pytestmark = pytest.mark.server


class ReloadingExpress(ModWsgiExpress):
    """``mod_wsgi-express start-server --reload-on-changes``: mod_wsgi's own monitor too."""

    def command(self) -> list[str]:
        return [*super().command(), "--reload-on-changes"]


def test_mod_wsgi_express_reload_on_changes_and_reloadmw_restart_each_process_once(
    app_dir: Path, start_server: StartServer
) -> None:
    app = ProbeApp(app_dir, interval=0.2, hook=False)
    backdate(app_dir)
    server = start_server(ReloadingExpress(app.script))
    old = daemon_pids(server)
    assert "Starting change monitor" in server.logs()

    with Traffic(server.port) as traffic:
        app.set_version("2")
        new = wait_for_new_processes(server, old, lambda answer: answer["version"] == "2")

    assert traffic.failures == []
    imports = settled_imports(app, server)
    assert sorted(version for _, version in imports) == ["1", "1", "2", "2"], imports
    assert {pid for pid, version in imports if version == "2"} == new

"""An app served from a mounted folder and edited behind the mount (issue 11), under Apache.

The probe app is written in a source directory and served by Apache +
mod_wsgi daemon mode (2 processes x 4 threads, the hook, preloaded) from a
bindfs (FUSE) mount of it, as from a VM's shared folder, a Docker Desktop
bind mount or an NFS share. The edits are made in the source directory,
behind the mount, where inotify on the mount sees none of them. A tracked
file in a local directory still goes through inotify. If the mount cannot be
made, the test fails.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers import edit, write
from tests.rig import (
    ApacheServer,
    ProbeApp,
    StartApache,
    Traffic,
    backdate,
    bindfs_mount,
    daemon_pids,
    make_world_readable_dir,
    wait_for_new_processes,
)

pytestmark = pytest.mark.server

INTERVAL = 0.3
EDITS = 3
#: FUSE keeps a file's attributes for 1 s: a check sees an edit behind the
#: mount at most that long after it was made, then within one interval.
SEEN_WITHIN = INTERVAL + 1.0
APACHE_TIME = re.compile(r"^\[(\w{3} \w{3} \d\d \d\d:\d\d:\d\d\.\d+ \d{4})\]")


class MountedApp:
    """The probe app in ``source``, mounted at ``mountpoint``; ``settings`` is local, tracked."""

    def __init__(self, source: Path, mountpoint: Path, local: Path) -> None:
        self.settings = write(local / "settings.ini", "[app]\n")
        self.probe = ProbeApp(source, interval=INTERVAL, track=[str(self.settings)])
        backdate(source)
        self.mountpoint = mountpoint
        self.script = mountpoint / "app.wsgi"


@pytest.fixture
def mounted_app() -> Iterator[MountedApp]:
    made = [make_world_readable_dir(f"reloadmw-{name}-") for name in ("source", "mnt", "local")]
    source, mountpoint, local = made
    try:
        app = MountedApp(source, mountpoint, local)
        with bindfs_mount(source, mountpoint):
            yield app
    finally:
        for directory in made:
            shutil.rmtree(directory, ignore_errors=True)


def logged_at(server: ApacheServer, text: str) -> list[float]:
    """Wall times of the error log's lines that hold ``text``."""
    times = []
    for line in server.error_log.read_text(errors="replace").splitlines():
        stamp = APACHE_TIME.match(line)
        if stamp and text in line:
            times.append(datetime.strptime(stamp.group(1), "%a %b %d %H:%M:%S.%f %Y").timestamp())
    return times


def test_edits_behind_a_mounted_folder_are_seen_within_interval_plus_one_second(
    mounted_app: MountedApp, start_apache: StartApache
) -> None:
    server = start_apache(mounted_app.script)
    pids = daemon_pids(server)
    log = server.error_log.read_text()
    # One line per daemon process: the files on the mount are polled, the local one is not.
    polled = re.findall(
        r"(\d+) of (\d+) watched files are stat'ed on every check, since inotify misses edits "
        rf"made on the other side of their mounts: '{re.escape(str(mounted_app.mountpoint))}' "
        r"\(fuse, (\d+) files?\); the other (\d+) are watched with inotify",
        log,
    )
    assert len(polled) == 2, log
    for on_mount, watched, again, local in polled:
        assert int(on_mount) == int(again) >= 2  # app.wsgi, probe.py, version.py
        assert int(local) == 1 and int(watched) == int(on_mount) + 1  # settings.ini
    assert log.count("with the inotify+stat backend") == 2, log

    version_file = str(mounted_app.mountpoint / "version.py")
    seen: dict[int, list[float]] = {}  # edit -> seconds from the save to each detection
    with Traffic(server.port, clients=2) as traffic:  # requests, and so checks, all along
        for n in range(2, 2 + EDITS):
            saved = time.time()
            mounted_app.probe.set_version(str(n))  # behind the mount
            try:
                pids = wait_for_new_processes(server, pids, lambda a, v=str(n): a["version"] == v)
            except AssertionError:
                continue  # not seen: counted below
            detected = logged_at(server, f"change detected in {version_file!r}")
            seen[n] = sorted(t - saved for t in detected if t >= saved - 0.01)
    assert traffic.failures == [], traffic.failures
    assert sorted(seen) == list(range(2, 2 + EDITS)), f"seen {len(seen)} of {EDITS}: {seen}"
    for n, delays in seen.items():
        assert len(delays) == 2, (n, delays, server.logs())  # each daemon process saw it
        assert max(delays) <= SEEN_WITHIN, f"edit {n} seen after {delays} s"

    # The local tracked file: seen through inotify, at once.
    edit(mounted_app.settings, "[app]\ndebug = true\n")
    wait_for_new_processes(server, pids, lambda a: True)
    assert len(logged_at(server, f"change detected in {str(mounted_app.settings)!r}")) == 2

"""Mounted folders: which mount holds a path, and the auto monitor polling where inotify is blind.

The parsing and lookup run on sample ``mountinfo`` text. The auto monitor runs
first on a mount table with one more line (a directory that counts as an NFS
share), then on real FUSE mounts made with bindfs (root and ``/dev/fuse``; a
mount that cannot be made fails the test): edits made behind the mount, a
mount unmounted, replaced, or mounted over a watched directory.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from reloadmw.watch.auto import AutoMonitor
from reloadmw.watch.inotify import InotifyMonitor
from reloadmw.watch.monitor import BACKEND_ENV, make_monitor
from reloadmw.watch.mounts import UNKNOWN, Mount, Mounts, MountTable, parse_mountinfo
from reloadmw.watch.patterns import DEFAULT_IGNORE, IgnoreRules, parse_track
from tests.helpers import (
    edit,
    mountinfo_with,
    never_reported,
    reported_soon,
    write,
)
from tests.rig import bindfs_mount, unmount

SAMPLE = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
45 27 0:40 / /srv/my\040app rw,nosuid,nodev,relatime shared:7 master:3 - fuse.sshfs dev@host:/app rw
46 27 0:41 / /mnt/share rw - nfs4 server:/export rw,vers=4.2
47 46 0:42 / /mnt/share rw - tmpfs tmpfs rw
48 27 0:43 / /mnt/back\134slash\011tab\012line rw - 9p C:\134 rw
not a mount line
49 27 0:44 / /mnt/short rw
"""


def info_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]


# -- mountinfo ---------------------------------------------------------------------


def test_mountinfo_fields_are_read_and_the_kernels_escapes_undone() -> None:
    mounts = parse_mountinfo(SAMPLE)

    assert mounts[2] == Mount(45, 27, "0:40", "/srv/my app", "fuse.sshfs", "dev@host:/app")
    assert mounts[3] == Mount(46, 27, "0:41", "/mnt/share", "nfs4", "server:/export")
    assert mounts[5].point == "/mnt/back\\slash\ttab\nline"
    assert mounts[5].source == "C:\\"
    assert [m.id for m in mounts] == [22, 27, 45, 46, 47, 48]  # odd lines skipped


def test_a_path_is_on_the_longest_mount_point_that_holds_it() -> None:
    table = MountTable(parse_mountinfo(SAMPLE))

    def fstype(path: str) -> str:
        return table.lookup(path).fstype

    assert fstype("/srv/my app/views.py") == "fuse.sshfs"
    assert fstype("/srv/my app") == "fuse.sshfs"
    assert fstype("/srv/my apples/views.py") == "ext4"  # a prefix of a name is not a mount
    assert fstype("/srv") == "ext4"
    assert fstype("/") == "ext4"
    assert fstype("/mnt/share/x") == "tmpfs"  # the mount on top of the stack
    assert MountTable([]).lookup("/srv") == UNKNOWN
    assert not UNKNOWN.polled


@pytest.mark.parametrize(
    ("fstype", "polled"),
    [
        ("fuse", True),
        ("fuse.sshfs", True),
        ("fuse.grpcfuse", True),
        ("nfs", True),
        ("nfs4", True),
        ("cifs", True),
        ("smb3", True),
        ("9p", True),
        ("vboxsf", True),
        ("virtiofs", True),
        ("ceph", True),
        ("glusterfs", True),
        ("ext4", False),
        ("xfs", False),
        ("tmpfs", False),
        ("overlay", False),
        ("fuseblk", False),
    ],
)
def test_network_and_shared_filesystems_are_polled(fstype: str, polled: bool) -> None:
    assert Mount(1, 0, "0:1", "/x", fstype, "src").polled is polled


def test_this_process_mount_table_holds_the_root() -> None:
    mounts = Mounts()
    try:
        root = mounts.table.lookup("/")
        assert root != UNKNOWN and root.point == "/"
        assert not mounts.changed()
    finally:
        mounts.close()


# -- the auto monitor, on a pretended NFS share --------------------------------------


@pytest.fixture
def auto_monitors() -> Iterator[Callable[..., AutoMonitor]]:
    made: list[AutoMonitor] = []

    def make(mountinfo: Callable[[], str] | None = None) -> AutoMonitor:
        made.append(AutoMonitor(time.time_ns(), IgnoreRules(DEFAULT_IGNORE), mountinfo=mountinfo))
        return made[-1]

    yield make
    for monitor in made:
        monitor.close()


def test_files_on_a_polled_mount_are_stated_the_others_watched_with_one_info_line(
    auto_monitors: Callable[..., AutoMonitor], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    share, local = tmp_path / "share", tmp_path / "local"
    shared = [write(share / f"m{i}.py") for i in range(3)]
    local_file = write(local / "settings.ini")
    monitor = auto_monitors(mountinfo_with(share, "nfs4"))
    monitor.add_files([str(f) for f in [*shared, local_file]])
    assert monitor.poll() == {}

    assert monitor.counts() == (1, 3)
    assert monitor.name == "inotify+stat"
    (line,) = info_lines(caplog)
    assert f"pid={os.getpid()}" in line
    assert re.search(r"\b3 of 4 watched files are stat'ed on every check", line), line
    assert f"{str(share)!r} (nfs4, 3 files)" in line
    assert "the other 1 are watched with inotify" in line
    for f in (shared[1], local_file):
        edit(f, "changed")
        assert reported_soon(monitor, f) == {str(f)}
    write(share / "m9.py")  # more files on the same share: no new line
    monitor.add_files([str(share / "m9.py")])
    monitor.poll()
    assert len(info_lines(caplog)) == 1


def test_without_polled_files_there_is_no_line_and_the_name_stays_inotify(
    auto_monitors: Callable[..., AutoMonitor], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    monitor = auto_monitors()
    monitor.add_files([str(write(tmp_path / "app.py"))])
    assert monitor.poll() == {}
    assert monitor.counts() == (1, 0)
    assert monitor.name == "inotify"
    assert info_lines(caplog) == []


def test_a_share_inside_a_tracked_tree_is_polled_and_the_rest_watched(
    auto_monitors: Callable[..., AutoMonitor], tmp_path: Path
) -> None:
    local = write(tmp_path / "site" / "index.html")
    shared = write(tmp_path / "site" / "media" / "a" / "logo.svg")
    monitor = auto_monitors(mountinfo_with(tmp_path / "site" / "media", "cifs"))
    tree = parse_track("site/", str(tmp_path))
    assert not isinstance(tree, str)
    monitor.add_tree(tree)
    assert monitor.poll() == {}
    assert monitor.counts() == (1, 1)
    new = write(tmp_path / "site" / "media" / "a" / "new.svg", age=0)
    assert str(new) in reported_soon(monitor, new)
    for f in (local, shared):
        edit(f, "<svg/>")
        assert str(f) in reported_soon(monitor, f)


def test_a_forked_worker_polls_and_watches_as_its_parent_does(
    auto_monitors: Callable[..., AutoMonitor], tmp_path: Path
) -> None:
    shared, local = write(tmp_path / "share" / "m.py"), write(tmp_path / "local" / "s.ini")
    monitor = auto_monitors(mountinfo_with(tmp_path / "share", "nfs4"))
    monitor.add_files([str(shared), str(local)])
    assert monitor.poll() == {}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            assert monitor.poll() == {}  # its own inotify instance and mount table
            os.write(write_end, b"ready")
            reported_soon(monitor, shared, local)
            os.write(write_end, b"seen" if monitor.counts() == (1, 1) else b"lost")
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        assert os.read(read_end, 5) == b"ready"
        for f in (shared, local):
            edit(f, "changed")
            assert str(f) in reported_soon(monitor, f)
        assert os.read(read_end, 4) == b"seen"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


@pytest.mark.parametrize("backend", ["inotify", "stat"])
def test_a_backend_named_in_the_environment_ignores_mounts(
    monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    monkeypatch.setenv(BACKEND_ENV, backend)
    monitor = make_monitor("auto", time.time_ns(), IgnoreRules(()))
    try:
        assert not isinstance(monitor, AutoMonitor)
        assert monitor.name == backend
    finally:
        monitor.close()


# -- real FUSE mounts (bindfs) ----------------------------------------------------------


@pytest.fixture
def share(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """``(source, mountpoint)``: ``source`` mounted at ``mountpoint`` with bindfs."""
    source, mountpoint = tmp_path / "source", tmp_path / "mnt"
    source.mkdir()
    mountpoint.mkdir()
    write(source / "app.py", "VERSION = 1\n")
    with bindfs_mount(source, mountpoint):
        yield source, mountpoint


def test_edits_behind_a_fuse_mount_are_seen_by_auto_and_missed_by_inotify(
    auto_monitors: Callable[..., AutoMonitor], share: tuple[Path, Path]
) -> None:
    source, mountpoint = share
    watched = [str(mountpoint / "app.py")]
    blind = InotifyMonitor(time.time_ns(), IgnoreRules(()))
    try:
        auto = auto_monitors()
        for monitor in (auto, blind):
            monitor.add_files(watched)
            assert monitor.poll() == {}
        assert auto.counts() == (0, 1)
        edit(source / "app.py", "VERSION = 2\n")  # behind the mount: no event on it
        assert reported_soon(auto, mountpoint / "app.py") == set(watched)
        never_reported(blind, seconds=1.5)  # FUSE shows the new stat within 1 s
    finally:
        blind.close()


@pytest.fixture
def watching_share(
    auto_monitors: Callable[..., AutoMonitor],
    share: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> AutoMonitor:
    """An auto monitor watching ``app.py`` on the share, past its baseline; INFO captured."""
    caplog.set_level(logging.INFO, logger="reloadmw")
    monitor = auto_monitors()
    monitor.add_files([str(share[1] / "app.py")])
    assert monitor.poll() == {}
    return monitor


def test_a_watched_mount_unmounted_counts_as_a_change_and_is_logged(
    watching_share: AutoMonitor, share: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    source, mountpoint = share
    monitor = watching_share
    unmount(mountpoint)
    assert monitor.poll().keys() == {str(mountpoint / "app.py")}
    assert f"{str(mountpoint)!r} (fuse from {str(source)!r}) was unmounted" in caplog.text
    assert monitor.poll() == {}


def test_a_mount_replaced_under_watched_files_counts_and_is_logged(
    watching_share: AutoMonitor, share: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    source, mountpoint = share
    monitor = watching_share
    copy = source.with_name("copy")
    shutil.copytree(source, copy)  # the same files, dates kept
    unmount(mountpoint)
    with bindfs_mount(copy, mountpoint):  # between two checks
        assert monitor.poll().keys() == {str(mountpoint / "app.py")}
        assert (
            f"the mount at {str(mountpoint)!r} was replaced (fuse from {str(source)!r}, "
            f"now fuse from {str(copy)!r})"
        ) in caplog.text
        assert monitor.poll() == {}
        edit(copy / "app.py", "VERSION = 3\n")
        assert str(mountpoint / "app.py") in reported_soon(monitor, mountpoint / "app.py")


def test_a_mount_over_a_watched_directory_counts_and_is_polled_from_then_on(
    auto_monitors: Callable[..., AutoMonitor], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    site = tmp_path / "site"
    watched = write(site / "app.py", "VERSION = 1\n")
    other = write(tmp_path / "other" / "app.py", "VERSION = 2\n")
    monitor = auto_monitors()
    monitor.add_files([str(watched)])
    assert monitor.poll() == {}
    assert monitor.counts() == (1, 0)
    with bindfs_mount(other.parent, site, "-o", "nonempty"):  # inotify on site/ sees none of it
        assert monitor.poll().keys() == {str(watched)}
        assert f"fuse from {str(other.parent)!r} was mounted at {str(site)!r}" in caplog.text
        assert monitor.counts() == (0, 1)
        edit(other, "VERSION = 3\n")
        assert str(watched) in reported_soon(monitor, watched)


def test_a_mount_table_that_cannot_be_read_again_is_logged_and_never_raises(
    auto_monitors: Callable[..., AutoMonitor], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reloadmw")
    reads: list[None] = []

    def mountinfo() -> str:
        reads.append(None)
        if len(reads) > 1:
            raise PermissionError(13, "Permission denied")
        return Path("/proc/self/mountinfo").read_text()

    f = write(tmp_path / "app.py")
    monitor = auto_monitors(mountinfo)
    monitor.add_files([str(f)])
    assert monitor.poll() == {}
    (tmp_path / "source").mkdir()
    (tmp_path / "mnt").mkdir()
    with bindfs_mount(tmp_path / "source", tmp_path / "mnt"):  # a real change of the table
        assert monitor.poll() == {}
    assert "cannot read /proc/self/mountinfo again (Permission denied)" in caplog.text
    edit(f, "changed")
    assert str(f) in reported_soon(monitor, f)

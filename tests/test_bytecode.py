"""A restart never loads a stale .pyc for a file edited in the same second."""

from __future__ import annotations

import importlib.util
import os
import py_compile
from pathlib import Path

from reloadmw.restart.bytecode import forget_bytecode


def test_same_second_same_size_edit_drops_the_cached_bytecode(tmp_path: Path) -> None:
    source = tmp_path / "views.py"
    source.write_text("VALUE = 1\n")
    cached = Path(py_compile.compile(str(source), doraise=True))
    stat = source.stat()
    source.write_text("VALUE = 2\n")  # same size
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))  # same second
    assert cached.exists()

    forget_bytecode([str(source)])

    assert not cached.exists()
    assert source.read_text() == "VALUE = 2\n"


def test_forgetting_bytecode_ignores_other_files_and_missing_caches(tmp_path: Path) -> None:
    config = tmp_path / "config.ini"
    config.write_text("[app]\n")
    # Where a cache of config.ini would be: not bytecode of a changed .py, so it stays.
    config_cache = Path(importlib.util.cache_from_source(str(config)))
    config_cache.parent.mkdir(parents=True, exist_ok=True)
    config_cache.write_bytes(b"not ours")
    never_compiled = tmp_path / "never_compiled.py"
    never_compiled.write_text("X = 1\n")
    stale = tmp_path / "views.py"
    stale.write_text("X = 1\n")
    stale_cache = Path(py_compile.compile(str(stale), doraise=True))
    assert stale_cache.exists()

    # The files without a cache first: they must not stop the stale one from going.
    forget_bytecode([str(config), str(never_compiled), str(tmp_path / "gone.py"), str(stale)])

    assert config.exists() and config_cache.exists()
    assert not stale_cache.exists()

"""Checks on changed source files before the process restarts into them."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterable


def syntax_error(path: str) -> str | None:
    """Describe the syntax error in ``path`` (``file:line: message``), or None if it compiles.

    A file that cannot be read is not a syntax error: its absence is a change
    like any other and the restart goes ahead.
    """
    try:
        with open(path, "rb") as f:
            source = f.read()
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:  # includes IndentationError and TabError
        return f"{path}:{exc.lineno}: {exc.msg}"
    except (OSError, ValueError):
        return None
    return None


def forget_bytecode(paths: Iterable[str]) -> None:
    """Delete the cached ``.pyc`` of each changed ``.py`` file.

    Python trusts a ``.pyc`` whose recorded source mtime (whole seconds) and
    size still match, so an edit in the same second that keeps the size
    would otherwise restart the process into the old code.
    """
    for path in paths:
        if not path.endswith(".py"):
            continue
        for optimization in ("", 1, 2):
            # None cached, or not ours to delete: then there is nothing stale to load.
            with contextlib.suppress(OSError, ValueError, NotImplementedError):
                os.remove(importlib.util.cache_from_source(path, optimization=optimization))

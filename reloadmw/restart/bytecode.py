"""Before a restart: delete the cached bytecode of the changed sources."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterable


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

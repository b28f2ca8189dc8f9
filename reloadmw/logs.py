"""The ``reloadmw`` logger: every line starts with ``reloadmw (pid=N): ``.

Several processes of one app share a log (Apache's error log, gunicorn's
console), so each line says which process wrote it. The prefix is added
here, once, when the record is made: the pid is the writer's, also after a
fork.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    _Adapter = logging.LoggerAdapter[logging.Logger]
else:
    _Adapter = logging.LoggerAdapter


def prefix() -> str:
    """``reloadmw (pid=N): `` for this process, for log lines and error messages."""
    return f"reloadmw (pid={os.getpid()}): "


class _ProcessAdapter(_Adapter):
    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return prefix() + str(msg), kwargs


#: Log through this; handlers and levels belong to the application.
log = _ProcessAdapter(logging.getLogger("reloadmw"), {})


def describe(paths: Sequence[str], limit: int = 3) -> str:
    """``'a.py', 'b.py' and 4 more`` for log lines."""
    shown = ", ".join(repr(p) for p in paths[:limit])
    rest = len(paths) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown

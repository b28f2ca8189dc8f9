"""Under hupper (``pserve --reload``): the supervisor restarts the worker."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence


class HupperReload:
    """Under hupper (``pserve --reload``): ask the supervisor to restart us.

    hupper already restarts the worker when an imported module changes;
    reloadmw adds what hupper does not see (``track`` files, templates) by
    sending it the same request, so the two never restart the process twice.
    """

    name = "hupper"
    exits_process = True

    def __call__(self, reason: Sequence[str]) -> None:
        hupper = importlib.import_module("hupper")
        hupper.get_reloader().trigger_reload()


def under_hupper() -> bool:
    """True in a worker process that a hupper monitor (``pserve --reload``) restarts."""
    hupper = sys.modules.get("hupper")
    return hupper is not None and bool(hupper.is_active())

"""Checks of the middleware's keyword arguments, shared by every way of passing them.

Each raises ValueError that names the option, the value and the fix.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Iterable
from typing import Any


def seconds(option: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"reloadmw: {option}={value!r} is not a number of seconds; pass a float such "
            f"as {option}=1.0"
        )
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"reloadmw: {option}={value!r} must be a finite number of seconds >= 0")
    return float(value)


def patterns(option: str, value: Iterable[str] | str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    elif not isinstance(value, Iterable):
        raise ValueError(
            f"reloadmw: {option}={value!r} is not a list of paths or patterns; pass "
            f"a string or a list such as {option}=('*.swp',)"
        )
    patterns = tuple(value)
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ValueError(
                f"reloadmw: {option} entry {pattern!r} is not a string; pass paths or "
                f"patterns such as {option}=('*.swp',)"
            )
    return patterns


def caller_dir() -> str:
    """Directory of the file that created the middleware (the WSGI script)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get("__name__", "").startswith("reloadmw"):
        frame = frame.f_back  # type: ignore[assignment]
    path = frame.f_globals.get("__file__") if frame is not None else None
    return os.path.dirname(os.path.abspath(path)) if isinstance(path, str) else os.getcwd()

"""The request gate: send each request straight to the app until a check is due.

``Gate`` is the C version from ``reloadmw._gate`` when it was built, else
:class:`PyGate`; both behave the same. In C a request that finds no check due
costs one clock read and the call to the app, without a Python frame of its own.
Set ``RELOADMW_PURE_PYTHON=1`` to use :class:`PyGate` (for tests, for debugging).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["IMPLEMENTATION", "PURE_PYTHON_ENV", "Gate", "PyGate", "pure_python_forced"]

#: Any value but ``""`` or ``"0"`` makes ``Gate`` the pure-Python gate.
PURE_PYTHON_ENV = "RELOADMW_PURE_PYTHON"

_monotonic = time.monotonic


class PyGate:
    """Call ``self._dispatch`` until ``time.monotonic()`` reaches ``self._next_check``.

    From then on each request goes to ``self._checked_call(environ,
    start_response)``, which a subclass defines and which moves
    ``_next_check`` on.
    """

    _next_check: float = 0.0  # monotonic time of the next due check
    _dispatch: WSGIApplication

    if TYPE_CHECKING:

        def _checked_call(
            self, environ: WSGIEnvironment, start_response: StartResponse
        ) -> Iterable[bytes]: ...

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if _monotonic() < self._next_check:
            return self._dispatch(environ, start_response)
        return self._checked_call(environ, start_response)


def pure_python_forced() -> bool:
    """True when ``RELOADMW_PURE_PYTHON`` asks for the pure-Python gate."""
    return os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0")


def _c_gate() -> type[PyGate] | None:
    """The C gate, if it was built and reads the same clock as ``time.monotonic()``."""
    if pure_python_forced():
        return None
    try:
        from . import _gate
    except ImportError:
        return None  # not built: no compiler at install time, or an unsupported platform
    before = _monotonic()
    now = _gate.monotonic()
    after = _monotonic()
    if not before <= now <= after:
        return None  # another clock: _next_check would mean another time
    return _gate.Gate  # type: ignore[return-value]


if TYPE_CHECKING:
    Gate = PyGate
else:
    Gate = _c_gate() or PyGate

#: ``"c"`` or ``"python"``: which gate ``Gate`` is.
IMPLEMENTATION = "python" if Gate is PyGate else "c"

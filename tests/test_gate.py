"""The request gate, in C (``reloadmw._gate``) and in Python (``gate.PyGate``): same behaviour.

Before ``_next_check`` a request goes to ``_dispatch`` and nothing else runs;
from then on it goes to ``_checked_call``. Both gates are called the ways
servers call: from Python code, and from C with an args tuple (``starmap``,
as mod_wsgi calls ``PyObject_Call``). The rest of the in-process suite runs
once more with ``RELOADMW_PURE_PYTHON=1`` (``make test``, tox env ``pure``).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import subprocess
import sys
import time
import tracemalloc
import weakref
from collections import deque
from collections.abc import Callable
from itertools import repeat, starmap
from typing import Any

import pytest

from reloadmw import ReloadMiddleware, gate
from tests.helpers import REPO, c_gate_clock_ahead, c_gate_expected, wait_until

if sys.version_info >= (3, 13):
    import _interpreters as interpreters
else:
    import _xxsubinterpreters as interpreters

FAR = 1e12  # a _next_check no test reaches


@pytest.fixture(params=["c", "python"])
def base(request: pytest.FixtureRequest) -> type[Any]:
    """The gate class under test."""
    return request.getfixturevalue("c_gate") if request.param == "c" else gate.PyGate


class App:
    """A WSGI app that records its calls and returns ``body``, or raises ``error``."""

    def __init__(
        self, body: Any = None, error: BaseException | type[BaseException] | None = None
    ) -> None:
        self.body = [b"app"] if body is None else body
        self.error = error
        self.calls: list[tuple[Any, ...]] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(args + tuple(kwargs.items()))
        if self.error is not None:
            raise self.error
        return self.body


def make_gate(base: type[Any], app: Any, next_check: float, **slow: Any) -> Any:
    """A subclass instance whose ``_checked_call`` records its calls."""

    class Recording(base):  # type: ignore[misc,valid-type]
        def __init__(self) -> None:
            self.slow_calls: list[tuple[Any, ...]] = []
            self.slow_body = slow.get("body", [b"slow"])
            self.slow_error = slow.get("error")
            self._dispatch = app
            self._next_check = next_check

        def _checked_call(self, *args: Any, **kwargs: Any) -> Any:
            self.slow_calls.append(args + tuple(kwargs.items()))
            if self.slow_error is not None:
                raise self.slow_error
            return self.slow_body

    return Recording()


def from_python(callable_: Any, environ: Any, start_response: Any) -> Any:
    return callable_(environ, start_response)


def from_c(callable_: Any, environ: Any, start_response: Any) -> Any:
    """PyObject_Call with an args tuple from C, as mod_wsgi calls the app."""
    return next(starmap(callable_, [(environ, start_response)]))


CALLERS = [from_python, from_c]


def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


# -- which gate -----------------------------------------------------------------------


def test_c_gate_is_built_and_chosen_where_it_can_be() -> None:
    if not c_gate_expected():
        pytest.skip("no compiler or Python headers here: the Python gate is expected")
    from reloadmw import _gate

    pure = os.environ.get(gate.PURE_PYTHON_ENV, "") not in ("", "0")
    expected = "python" if pure else "c"
    assert gate.Gate is (gate.PyGate if pure else _gate.Gate)
    assert expected == gate.IMPLEMENTATION


def test_middleware_gets_its_call_from_the_gate() -> None:
    assert issubclass(ReloadMiddleware, gate.Gate)
    assert "__call__" not in vars(ReloadMiddleware)


@pytest.mark.parametrize(("value", "expected"), [("1", "python"), ("0", None), ("", None)])
def test_env_var_forces_the_python_gate(value: str, expected: str | None) -> None:
    env = {**os.environ, gate.PURE_PYTHON_ENV: value}
    result = subprocess.run(
        [sys.executable, "-c", "import reloadmw.gate as g; print(g.IMPLEMENTATION)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (expected or ("c" if c_gate_expected() else "python"))


def test_c_gate_clock_is_time_monotonic(c_gate: type[Any]) -> None:
    from reloadmw import _gate

    for _ in range(10_000):
        before = time.monotonic()
        now = _gate.monotonic()
        after = time.monotonic()
        assert before <= now <= after


def test_c_gate_is_not_used_with_another_clock(
    c_gate: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    c_gate_clock_ahead(monkeypatch, 3600)
    assert gate._c_gate() is None


# -- the fast path and the slow path ---------------------------------------------------


@pytest.mark.parametrize("caller", CALLERS)
def test_requests_before_the_next_check_go_to_the_app_only(
    base: type[Any], caller: Callable[..., Any]
) -> None:
    app = App()
    g = make_gate(base, app, time.monotonic() + 3600)
    environ: dict[str, Any] = {}
    for _ in range(1000):
        assert caller(g, environ, start_response) is app.body
    assert g.slow_calls == []
    assert len(app.calls) == 1000
    assert all(c[0] is environ and c[1] is start_response for c in app.calls)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("next_check", [-math.inf, 0.0, "now"])
def test_requests_from_the_next_check_on_go_to_checked_call(
    base: type[Any], caller: Callable[..., Any], next_check: Any
) -> None:
    app = App()
    g = make_gate(base, app, time.monotonic() if next_check == "now" else next_check)
    environ: dict[str, Any] = {}
    assert caller(g, environ, start_response) is g.slow_body
    assert caller(g, environ, start_response) is g.slow_body
    assert app.calls == []
    assert [(c[0], c[1]) for c in g.slow_calls] == [(environ, start_response)] * 2
    assert all(c[0] is environ and c[1] is start_response for c in g.slow_calls)


def test_the_gate_opens_when_time_monotonic_reaches_next_check(base: type[Any]) -> None:
    app = App()
    g = make_gate(base, app, time.monotonic() + 0.05)
    g({}, start_response)
    assert (len(app.calls), len(g.slow_calls)) == (1, 0)
    wait_until(lambda: time.monotonic() >= g._next_check, 1.0, poll=0.005)
    g({}, start_response)
    assert (len(app.calls), len(g.slow_calls)) == (1, 1)


def test_next_check_set_at_run_time_is_honoured(base: type[Any]) -> None:
    app = App()
    g = make_gate(base, app, 0.0)
    g({}, start_response)
    g._next_check = time.monotonic() + 3600
    g({}, start_response)
    g._next_check = math.inf
    g({}, start_response)
    g._next_check = 0  # an int is a number of seconds too
    g({}, start_response)
    assert (len(app.calls), len(g.slow_calls)) == (2, 2)


def test_default_next_check_sends_the_first_request_to_checked_call(base: type[Any]) -> None:
    class Plain(base):  # type: ignore[misc,valid-type]
        def _checked_call(self, environ: Any, start_response: Any) -> Any:
            return "slow"

    g = Plain()
    assert g._next_check == 0.0
    assert g({}, start_response) == "slow"


@pytest.mark.parametrize("caller", CALLERS)
def test_dispatch_replaced_at_run_time_is_honoured(
    base: type[Any], caller: Callable[..., Any]
) -> None:
    first, second = App(), App()
    g = make_gate(base, first, FAR)
    caller(g, {}, start_response)
    g._dispatch = second
    caller(g, {}, start_response)
    assert (len(first.calls), len(second.calls)) == (1, 1)


@pytest.mark.parametrize("caller", CALLERS)
def test_app_may_replace_itself_as_dispatch_while_it_runs(
    base: type[Any], caller: Callable[..., Any]
) -> None:
    after = App()

    class ReplacesItself:
        def __call__(self, environ: Any, start_response: Any) -> Any:
            g._dispatch = after  # drops the gate's reference to this app
            gc.collect()
            return [self.__class__.__name__.encode()]

    g = make_gate(base, None, FAR)
    g._dispatch = ReplacesItself()
    alive = weakref.ref(g._dispatch)
    assert caller(g, {}, start_response) == [b"ReplacesItself"]
    assert alive() is None
    caller(g, {}, start_response)
    assert len(after.calls) == 1


def test_base_gate_called_directly(base: type[Any]) -> None:
    """The bare class: the C one takes vectorcalls from Python code, which subclasses may not."""
    g = base()
    app = App()
    g._dispatch = app
    g._next_check = FAR
    environ: dict[str, Any] = {}
    assert g(environ, start_response) is app.body
    assert from_c(g, environ, start_response) is app.body
    assert g(environ=environ, start_response=start_response) is app.body
    assert all(c == (environ, start_response) for c in app.calls)
    g._next_check = 0.0
    with pytest.raises(AttributeError, match="_checked_call"):
        g(environ, start_response)
    with pytest.raises(TypeError):
        base(1)


# -- arguments and errors ---------------------------------------------------------------


@pytest.mark.parametrize("next_check", [FAR, 0.0])
def test_keywords_reach_the_app_or_checked_call_as_positional_arguments(
    base: type[Any], next_check: float
) -> None:
    app = App()
    g = make_gate(base, app, next_check)
    environ: dict[str, Any] = {}
    g(environ=environ, start_response=start_response)
    g(environ, start_response=start_response)
    assert (app.calls or g.slow_calls) == [(environ, start_response)] * 2


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), (({},), {}), (({}, start_response, None), {}), (({}, start_response), {"x": 1})],
)
def test_wrong_arguments_raise_type_error(
    base: type[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    app = App()
    g = make_gate(base, app, FAR)
    with pytest.raises(TypeError):
        g(*args, **kwargs)
    assert app.calls == []


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("next_check", [FAR, 0.0])
def test_exceptions_propagate_unchanged(
    base: type[Any], caller: Callable[..., Any], next_check: float
) -> None:
    error = ValueError("boom")
    g = make_gate(base, App(error=error), next_check, error=error)
    with pytest.raises(ValueError) as raised:
        caller(g, {}, start_response)
    assert raised.value is error


def test_missing_dispatch_raises_attribute_error(base: type[Any]) -> None:
    g = make_gate(base, None, FAR)
    del g._dispatch
    with pytest.raises(AttributeError, match="_dispatch"):
        g({}, start_response)


# -- objects and memory -------------------------------------------------------------------


def test_subclass_has_a_dict_and_weak_references(base: type[Any]) -> None:
    g = make_gate(base, App(), FAR)
    g.anything = 1
    assert vars(g)["anything"] == 1
    assert weakref.ref(g)() is g


def test_reference_cycle_through_dispatch_is_collected(base: type[Any]) -> None:
    g = make_gate(base, None, FAR)
    g._dispatch = g._checked_call  # gate -> bound method -> gate
    dead = weakref.ref(g)
    del g
    gc.collect()
    assert dead() is None


@pytest.mark.parametrize("caller", CALLERS)
def test_calls_leak_no_references_and_no_memory(
    base: type[Any], caller: Callable[..., Any]
) -> None:
    app = App(body=[b"x"])
    app.calls = deque(maxlen=0)  # type: ignore[assignment]
    fast = make_gate(base, app, FAR)
    slow = make_gate(base, app, 0.0)
    slow.slow_calls = deque(maxlen=0)
    # A new exception each time: one raised again keeps the frames of every raise.
    failing = make_gate(base, App(error=ValueError), FAR)
    failing._dispatch.calls = deque(maxlen=0)
    environ: dict[str, Any] = {}
    watched = [environ, start_response, app, app.body, fast, slow, slow.slow_body, failing]

    def run(n: int) -> None:
        args = (environ, start_response)
        deque(starmap(fast, repeat(args, n)), maxlen=0)
        for _ in repeat(None, n):
            caller(fast, environ, start_response)
            fast(environ=environ, start_response=start_response)
        for _ in repeat(None, n // 100):
            caller(slow, environ, start_response)
            with contextlib.suppress(ValueError):
                caller(failing, environ, start_response)

    run(1000)  # warm up caches and free lists
    gc.collect()
    before = [sys.getrefcount(obj) for obj in watched]
    tracemalloc.start()
    try:
        run(100_000)
        gc.collect()
        grown, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [sys.getrefcount(obj) for obj in watched] == before
    assert grown < 64 * 1024, f"{grown} bytes still allocated after 100k calls"


SUBINTERPRETER_CODE = f"""
import sys, time
sys.path.insert(0, {str(REPO)!r})
import reloadmw.gate as g

class Recording(g.Gate):
    def _checked_call(self, environ, start_response):
        return "slow"

gate = Recording()
gate._dispatch = lambda environ, start_response: "fast"
assert gate({{}}, None) == "slow"
gate._next_check = time.monotonic() + 3600
assert gate({{}}, None) == "fast"
"""


def new_subinterpreter() -> Any:
    """A sub-interpreter as mod_wsgi makes them: sharing the GIL, taking any extension."""
    if sys.version_info >= (3, 13):
        return interpreters.create("legacy")  # 3.13 isolates by default
    return interpreters.create()


def test_gate_works_in_sub_interpreters() -> None:
    """As in mod_wsgi's default application groups: one sub-interpreter per app."""
    for _ in range(3):
        interpreter = new_subinterpreter()
        try:
            interpreters.run_string(interpreter, SUBINTERPRETER_CODE)
        finally:
            interpreters.destroy(interpreter)

"""PasteDeploy filter factory: ``[filter:reload]`` with ``use = egg:reloadmw``.

Turns the ini file's strings into the typed keyword arguments of
:class:`~reloadmw.ReloadMiddleware`, strictly: an unknown option or a value
that does not convert raises ``ValueError`` naming it. PasteDeploy is needed
only here (``pip install reloadmw[paste]``)::

    [filter:reload]
    use = egg:reloadmw
    interval = 0.5
    track =
        %(here)s/development.ini
        templates/
    ignore = *.swp *~
    restart = auto

    [pipeline:main]
    pipeline = reload myapp

Relative paths (``track``, ``root``, ``state_dir``) start from the directory
of the ini file (``here``).
``enabled = false`` makes the filter hand back the app untouched, so one ini
works in development and production.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from .middleware import ReloadMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

Filter = Callable[["WSGIApplication"], "WSGIApplication"]
Converter = Callable[[str], Any]

#: Options whose default does not show their type (None means "not set").
_LIST_OPTIONS = frozenset({"track", "ignore", "allow_from"})


def make_filter(global_conf: Mapping[str, str], **local_conf: str) -> Filter:
    """PasteDeploy ``paste.filter_factory``: return a filter wrapping the app."""
    converters = _converters()
    options = {name: _convert(name, value, converters) for name, value in local_conf.items()}
    if not options.pop("enabled", True):
        return _passthrough
    here = global_conf.get("here") or os.getcwd()
    options["root"] = os.path.join(here, options.get("root", ""))
    if "state_dir" in options:
        options["state_dir"] = os.path.join(here, options["state_dir"])

    def filter_app(app: WSGIApplication) -> WSGIApplication:
        return ReloadMiddleware(app, **options)

    return filter_app


def _passthrough(app: WSGIApplication) -> WSGIApplication:
    return app


def _converters() -> dict[str, tuple[Converter, str]]:
    """Per option that ReloadMiddleware takes, plus ``enabled``: converter and hint."""
    from paste.deploy.converters import asbool, aslist  # type: ignore[import-untyped]

    boolean = (asbool, "true or false")
    converters: dict[str, tuple[Converter, str]] = {"enabled": boolean}
    parameters = list(inspect.signature(ReloadMiddleware).parameters.values())[1:]  # not app
    for parameter in parameters:
        default = parameter.default
        if parameter.name in _LIST_OPTIONS:
            converters[parameter.name] = (aslist, "a list")
        elif isinstance(default, bool):
            converters[parameter.name] = boolean
        elif isinstance(default, (int, float)):
            converters[parameter.name] = (float, "a number, such as 1.0")
        else:
            converters[parameter.name] = (str, "text")
    return converters


def _convert(name: str, value: str, converters: Mapping[str, tuple[Converter, str]]) -> Any:
    if name not in converters:
        raise ValueError(
            f"reloadmw: unknown option {name} = {value!r} in the filter section; known "
            f"options: {', '.join(sorted(converters))}"
        )
    converter, expected = converters[name]
    try:
        return converter(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"reloadmw: option {name} = {value!r} in the filter section is not valid; "
            f"write {expected}"
        ) from None

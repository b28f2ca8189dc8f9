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

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable

from .middleware import ReloadMiddleware

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

Filter = Callable[["WSGIApplication"], "WSGIApplication"]
Converter = Callable[[str], Any]


def _bool(value: str) -> bool:
    from paste.deploy.converters import asbool  # type: ignore[import-untyped]

    return bool(asbool(value))


def _list(value: str) -> list[str]:
    from paste.deploy.converters import aslist

    return list(aslist(value))


_NUMBER = "a number of seconds, such as 1.0"
_BOOLEAN = "true or false"
_LIST = "a list, one entry per line or separated by spaces"
_TEXT = "text"

#: Every option the filter section takes: its converter, and what to write.
OPTIONS: dict[str, tuple[Converter, str]] = {
    "enabled": (_bool, _BOOLEAN),
    "interval": (float, _NUMBER),
    "track": (_list, _LIST),
    "ignore": (_list, _LIST),
    "restart": (str, "auto, or a strategy name"),
    "quiet": (float, _NUMBER),
    "precheck": (_bool, _BOOLEAN),
    "watch_site_packages": (_bool, _BOOLEAN),
    "backend": (str, "auto, stat or inotify"),
    "root": (str, "a directory"),
    "factory": (_bool, _BOOLEAN),
    "debug": (_bool, _BOOLEAN),
    "password": (str, "a hash from python -m reloadmw hash-password"),
    "endpoint": (str, "a URL path such as /__reload__"),
    "allow_from": (_list, _LIST),
    "allow_hosts": (_list, _LIST),
    "require_https": (_bool, _BOOLEAN),
    "scope": (str, "group or process"),
    "state_dir": (str, "a directory"),
    "live_reload": (_bool, _BOOLEAN),
}


def make_filter(global_conf: Mapping[str, str], **local_conf: str) -> Filter:
    """PasteDeploy ``paste.filter_factory``: return a filter wrapping the app.

    ``enabled = false``, the one option of the filter alone, makes the filter
    hand back the app itself, so one ini file serves development and
    production. Every other option is a keyword of ``ReloadMiddleware``.
    """
    options = {name: _convert(name, value) for name, value in local_conf.items()}
    if not options.pop("enabled", True):
        return _passthrough
    here = global_conf.get("here") or os.getcwd()
    options["root"] = os.path.join(here, options.get("root", ""))
    if options.get("state_dir"):  # an empty one is refused by the middleware, by name
        options["state_dir"] = os.path.join(here, options["state_dir"])

    def filter_app(app: WSGIApplication) -> WSGIApplication:
        return ReloadMiddleware(app, **options)

    return filter_app


def _passthrough(app: WSGIApplication) -> WSGIApplication:
    return app


def _convert(name: str, value: str) -> Any:
    # The value of an unknown option may be a mistyped password: never show it.
    if name not in OPTIONS:
        raise ValueError(
            f"reloadmw: unknown option {name} in the filter section; known options: "
            f"{', '.join(sorted(OPTIONS))}"
        )
    converter, expected = OPTIONS[name]
    try:
        return converter(value)
    except (ValueError, TypeError):
        raise ValueError(  # never for password, which is kept as text
            f"reloadmw: option {name} = {value!r} in the filter section is not valid; "
            f"write {expected}"
        ) from None

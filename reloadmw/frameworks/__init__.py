"""Frameworks whose own reloading the middleware drives: Django and Flask.

When the wrapped app is a Django or a Flask app, a :class:`Framework` for it
loads up front what the framework would load on its first request, registers
what the framework wants watched (template directories, say), and takes some
changes in the process (a template edit empties a cache) instead of a
restart. Nothing here imports Django, Flask or Jinja unless the app is one:
an app can only be a Django or Flask app if its module is already imported.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Callable, Protocol, Union

from ..logs import describe, log
from ..watch.patterns import Tree

#: What a framework asks to watch: a file, or a :class:`Tree` (``glob_tree``).
Watch = Callable[[Union[str, Tree]], None]
#: Changed path -> wall time of the change, as a monitor's poll returns them.
Changes = dict[str, float]


class Framework(Protocol):
    """What the middleware asks of a framework adapter."""

    #: "Django", "Flask": for log lines.
    name: str
    #: How many directories it registered to be watched.
    directories: int

    def preload(self) -> None:
        """Import now what the framework would import on its first request."""

    def start(self, watch: Watch) -> None:
        """Once the app has loaded: register, with ``watch``, what the framework watches."""

    def handled(self, path: str) -> bool:
        """Let the framework take the change of ``path``; True if it needs no restart."""


def recognise(app: object) -> Framework | None:
    """The adapter for ``app``'s framework, or None: Django's ``WSGIHandler``, or Flask.

    Middleware and bound methods in front of the app are looked through
    (``app.wsgi_app`` is a Flask app's; ``WhiteNoise(application)`` holds
    Django's in ``.application``).
    """
    layers = list(_layers(app))
    django_wsgi = sys.modules.get("django.core.handlers.wsgi")
    if django_wsgi is not None and any(isinstance(a, django_wsgi.WSGIHandler) for a in layers):
        from .django import DjangoFramework

        return DjangoFramework()
    flask_app = sys.modules.get("flask.app")
    if flask_app is not None:
        for layer in layers:
            if isinstance(layer, flask_app.Flask):
                from .flask import FlaskFramework

                return FlaskFramework(layer)
    return None


def unhandled(framework: Framework | None, changes: Changes) -> Changes:
    """The ``changes`` that ``framework`` did not take in the process: those restart."""
    if framework is None or not changes:
        return changes
    left: Changes = {}
    for path, when in changes.items():
        if not framework.handled(path):
            left[path] = when
    taken = [path for path in changes if path not in left]
    if taken:
        log.info(
            "change detected in %s; handled in this process by %s, no restart",
            describe(taken),
            framework.name,
        )
    return left


def watched_files(total: int, tracked: int, registered: int, framework: Framework | None) -> str:
    """``57 files (41 from modules, 2 tracked, 14 in 5 directories registered by Django)``."""
    split = f"{total - tracked - registered} from modules, {tracked} tracked"
    if framework is not None:
        dirs = framework.directories
        split += (
            f", {registered} in {dirs} director{'y' if dirs == 1 else 'ies'} "
            f"registered by {framework.name}"
        )
    return f"{total} files ({split})"


def _layers(app: object, depth: int = 5) -> Iterator[object]:
    """``app``, then the apps it wraps, by the names WSGI middleware keeps them under."""
    for _ in range(depth):
        yield app
        inner = [v for v in map(_attribute(app), _WRAPPED) if v is not app and callable(v)]
        if not inner:
            return
        app = inner[0]


#: The attributes WSGI middleware (and a bound method) keep the wrapped app under.
_WRAPPED = ("__self__", "application", "app")


def _attribute(obj: object) -> Callable[[str], object]:
    """``getattr(obj, name, None)``, also when a property raises: recognising never fails."""

    def get(name: str) -> object:
        try:
            return getattr(obj, name, None)
        except Exception:
            return None

    return get

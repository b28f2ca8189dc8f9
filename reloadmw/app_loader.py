"""Load the wrapped app when the middleware is made, and survive its import failing.

``ReloadMiddleware("mysite.wsgi:application")`` (or ``factory=True``) imports
the app when the middleware is made: under mod_wsgi's preloaded set-up, when
the daemon process starts. A recognised framework then loads what it would
otherwise load on its first request (Django: the URLconf, and with it the
views), so that a process holds all its code before any edit.

If that raises, the process is *not* stranded: it answers 500 and watches the
files named in the traceback, and where each module it could not find would
be, and the middleware restarts it once one of them changes (or appears, as
a deleted module does when ``git checkout`` puts it back).

It never tries to load the app a second time in the same process. A failed
import can leave half-initialised state behind that a retry trips over:
Django's app registry, once ``populate()`` has raised, answers every later
``django.setup()`` with "populate() isn't reentrant", and a module may have
registered signal handlers, atexit hooks or C extension state before it
raised. A fresh process is the only clean retry.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import traceback
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Callable

from .frameworks import Framework, recognise
from .logs import log, prefix

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

#: ``from a import b`` where package ``a`` has no module ``b`` (nor a name ``b``).
_CANNOT_IMPORT = re.compile(r"cannot import name '([\w.]+)'")


class AppLoader:
    """Loads the wrapped app once, in :meth:`load`; a failed load gives a 500 app.

    ``app`` may be a WSGI callable, an import string ``"package.module:name"``,
    or, with ``factory=True``, a callable (or an import string naming one) that
    takes no argument and returns the WSGI app. The arguments are checked when
    the loader is made, before anything is imported.

    If loading raises, the traceback is logged, the files in it are passed to
    ``watch``, and the app returned answers every request with a 500; with
    ``debug``, the page shows the traceback.
    """

    def __init__(
        self,
        app: WSGIApplication | str,
        factory: bool,
        debug: bool,
        watch: Callable[[Sequence[str]], None],
    ) -> None:
        self.name, self._load = _loading(app, factory)
        self._debug = debug
        self._watch = watch
        #: The framework of the loaded app, if recognised; None also after a failed load.
        self.framework: Framework | None = None
        #: After a failed load: the error's last line, and the 500 page's text.
        self.failure: tuple[str, str] | None = None

    def load(self) -> WSGIApplication:
        """Load the app (and what its framework loads on a first request); return it."""
        try:
            app = self._load()
            framework = recognise(app)
            if framework is not None:
                framework.preload()
        except Exception as exc:
            app = self._failed(exc)
        else:
            self.framework = framework
        return app

    def _failed(self, exc: Exception) -> WSGIApplication:
        files = traceback_files(exc)
        log.exception(
            "the application %r failed to load; this process answers "
            "500 until one of the %d files in the traceback (or any watched file) "
            "changes, then it restarts and loads it again. Fix the error and save",
            self.name,
            len(files),
        )
        self._watch(files + missing_module_files(exc))
        page = self._page(exc)
        self.failure = ("".join(traceback.format_exception_only(type(exc), exc)).strip(), page)
        return _failed_app(page.encode("utf-8", "replace"))

    def _page(self, exc: Exception) -> str:
        text = (
            f"500 Internal Server Error\n\n{prefix()}the application "
            f"{self.name!r} failed to load. Fix the error and save: this process restarts "
            "once a watched file changes.\n\n"
        )
        if self._debug:
            text += "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        else:
            text += "The traceback is in the server's error log; debug=True shows it here.\n"
        return text


def import_string(target: tuple[str, str]) -> object:
    """Import ``module`` and return its attribute ``name`` (dotted names allowed)."""
    module_name, attribute = target
    obj: object = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


def _loading(
    app: WSGIApplication | str, factory: bool
) -> tuple[str, Callable[[], WSGIApplication]]:
    """The app's name for messages, and the function that loads it."""
    if isinstance(app, str):
        target = _parse_import_string(app)
        return app, lambda: _built(import_string(target), factory, app)
    if not callable(app):
        raise ValueError(
            f"reloadmw: app={app!r} is neither a WSGI callable nor an import string; "
            "pass the application or a string such as 'mysite.wsgi:application'"
        )
    name = getattr(app, "__qualname__", None) or repr(app)
    return name, (lambda: _built(app, True, name)) if factory else (lambda: app)


def traceback_files(exc: BaseException) -> list[str]:
    """The real files named by ``exc``'s traceback, its causes, and a SyntaxError's file."""
    files: dict[str, None] = {}
    for current in _chain(exc):
        names = [frame.filename for frame in traceback.extract_tb(current.__traceback__)]
        if isinstance(current, SyntaxError) and current.filename:
            names.append(current.filename)
        for name in names:
            if os.path.isabs(name) and os.path.isfile(name):
                files[name] = None
    return list(files)


def missing_module_files(exc: BaseException) -> list[str]:
    """Where each module that ``exc`` (or its causes) could not find would be found.

    For ``a.b`` that is ``b.py`` and ``b/__init__.py`` in each directory of
    package ``a``; for a top-level module, in each directory of ``sys.path``.
    Both ``import a.b`` and ``from a import b`` name it.
    """
    files: dict[str, None] = {}
    for name in filter(None, map(_missing_module, _chain(exc))):
        parent, _, last = name.rpartition(".")
        package = sys.modules.get(parent) if parent else None
        places = getattr(package, "__path__", None) if parent else sys.path
        for place in places or ():
            directory = os.path.abspath(place) if isinstance(place, str) else ""
            if os.path.isdir(directory):
                files[os.path.join(directory, f"{last}.py")] = None
                files[os.path.join(directory, last, "__init__.py")] = None
    return list(files)


def _missing_module(exc: BaseException) -> str | None:
    """The module ``exc`` says is missing: ``a.b`` for ``import a.b`` and ``from a import b``."""
    if isinstance(exc, ModuleNotFoundError):
        return exc.name
    name = getattr(exc, "name", None)
    found = _CANNOT_IMPORT.match(str(exc)) if isinstance(exc, ImportError) and name else None
    return f"{name}.{found[1]}" if found else None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its causes (or contexts), each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _failed_app(page: bytes) -> WSGIApplication:
    def failed(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response(
            "500 Internal Server Error",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(page)))],
        )
        return [page]

    return failed


def _built(obj: object, factory: bool, name: str) -> WSGIApplication:
    app = obj() if factory and callable(obj) else obj
    if not callable(app):
        raise TypeError(
            f"reloadmw: {name!r} gave {app!r}, which is not a WSGI callable; name the "
            "application object, or pass factory=True for a function that returns it"
        )
    return app  # type: ignore[no-any-return]


def _parse_import_string(value: str) -> tuple[str, str]:
    module, sep, attribute = value.partition(":")
    if not sep or not module.strip() or not attribute.strip():
        raise ValueError(
            f"reloadmw: app={value!r} is not an import string; write 'package.module:name', "
            "for Django 'mysite.wsgi:application'"
        )
    return module.strip(), attribute.strip()

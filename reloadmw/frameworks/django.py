"""Django's autoreload protocol, spoken as ``runserver`` speaks it.

Once per process, after the app has loaded, reloadmw sends
``django.utils.autoreload.autoreload_started`` with a :class:`Reloader` as
sender; what receivers register with ``sender.watch_dir(path, glob)`` or
``sender.extra_files`` is watched from then on, with the same detection as
everything else (new files in a registered directory included). For each
changed file it sends ``file_changed(sender=..., file_path=<Path>)``; if a
receiver returns True, the change was handled in the process and does not
restart it.

Django's own receivers do the rest, exactly as under ``runserver``:
``django.template.autoreload`` registers the template directories and resets
the cached template loaders on an edit, and
``django.utils.translation.reloader`` registers the ``locale`` directories and
clears the translation caches when a ``.mo`` file changes. Django leaves its
Jinja2 backend out; reloadmw connects a receiver pair for it, as any
third-party app would.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from django.dispatch import Signal
from django.utils.autoreload import BaseReloader, autoreload_started, file_changed

from ..logs import log
from ..watch.patterns import glob_tree
from . import Watch
from .jinja import forget_templates, is_template, template_dirs


class DjangoFramework:
    """The adapter for an app that is (or wraps) Django's ``WSGIHandler``."""

    name = "Django"

    def __init__(self) -> None:
        self.directories = 0
        self._reloader: Reloader | None = None

    def preload(self) -> None:
        """Import ``ROOT_URLCONF``, and so the views, as runserver's URL checks do.

        Django imports it on the first request that resolves a URL: a process
        that had served nothing yet would import an edit saved meanwhile.
        """
        from django.urls import get_resolver

        get_resolver().url_patterns  # noqa: B018 (a property: imports and checks the URLconf)

    def start(self, watch: Watch) -> None:
        from django.utils import translation

        # Django connects its translation receivers on the first gettext-like call.
        translation.get_language()
        autoreload_started.connect(watch_jinja_templates, dispatch_uid=_JINJA_UID)
        file_changed.connect(jinja_template_changed, dispatch_uid=_JINJA_UID)
        self._reloader = reloader = Reloader(watch)
        _send(autoreload_started, reloader, "what it would have registered is not watched")
        for path in reloader.extra_files:
            watch(os.fspath(Path(path).absolute()))
        self.directories = len(reloader.directory_globs)

    def handled(self, path: str) -> bool:
        return self._reloader is not None and self._reloader.notify_file_changed(Path(path))


class Reloader(BaseReloader):  # type: ignore[misc]  # Django ships no type hints
    """The ``sender`` that receivers of ``autoreload_started`` and ``file_changed`` get.

    It offers what Django's own reloaders offer them: ``watch_dir(path,
    glob)``, ``extra_files`` (a set of paths, read once ``autoreload_started``
    has been sent) and ``watched_files()``. The watching itself is reloadmw's.
    """

    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self._watch = watch

    def watch_dir(self, path: str | os.PathLike[str], glob: str) -> None:
        super().watch_dir(path, glob)  # Django's bookkeeping, which watched_files() lists
        try:
            directory = Path(path).absolute()
        except FileNotFoundError:  # no working directory: Django skipped it too
            return
        self._watch(glob_tree(os.fspath(directory), glob))

    def notify_file_changed(self, path: Path) -> bool:
        """Send ``file_changed`` for ``path``; True if a receiver handled it.

        Django's version restarts the process itself when none did; here the
        middleware restarts it, after the response. A receiver that raises
        is logged, and the change then restarts as any other.
        """
        results = _send(file_changed, self, "restarting as for any change", file_path=path)
        return results is not None and any(result for _, result in results)


def watch_jinja_templates(sender: BaseReloader, **kwargs: Any) -> None:
    """``autoreload_started`` receiver: watch the template directories of Jinja2 backends."""
    for backend in _jinja_backends():
        for directory in template_dirs(backend.env.loader):
            sender.watch_dir(directory, "**/*")


def jinja_template_changed(sender: BaseReloader, file_path: Path, **kwargs: Any) -> bool:
    """``file_changed`` receiver: a Jinja2 backend's template changed; empty its cache."""
    path = os.fspath(file_path)
    handled = False
    for backend in _jinja_backends():
        if is_template(path, template_dirs(backend.env.loader)):
            forget_templates(backend.env)
            handled = True
    return handled


_JINJA_UID = "reloadmw_jinja2_templates"


def _jinja_backends() -> list[Any]:
    from django.template import engines

    backends = engines.all()  # imports the backends' modules
    jinja2 = sys.modules.get("django.template.backends.jinja2")
    return [] if jinja2 is None else [b for b in backends if isinstance(b, jinja2.Jinja2)]


def _send(
    signal: Signal, sender: Reloader, consequence: str, **named: Any
) -> list[tuple[Any, Any]] | None:
    """``signal.send_robust``; None, each exception logged with ``consequence``, if any raised."""
    results: list[tuple[Any, Any]] = signal.send_robust(sender=sender, **named)
    failed = [(receiver, error) for receiver, error in results if isinstance(error, Exception)]
    for receiver, error in failed:
        path = named.get("file_path")
        log.error(
            "the %s receiver %s.%s raised %s%s; %s",
            "file_changed" if signal is file_changed else "autoreload_started",
            getattr(receiver, "__module__", "?"),
            getattr(receiver, "__qualname__", repr(receiver)),
            type(error).__name__,
            "" if path is None else f" for {os.fspath(path)!r}",
            consequence,
            exc_info=(type(error), error, error.__traceback__),
        )
    return None if failed else results

"""Flask: its template folders are watched, and an edit there needs no restart.

The folders are the app's ``template_folder`` and each registered
blueprint's. On an edit reloadmw empties the app's Jinja cache
(:mod:`reloadmw.frameworks.jinja`), so the next render compiles the new
template in the same process, whether or not ``TEMPLATES_AUTO_RELOAD`` is on.
A ``.py`` file there restarts, as everywhere else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..watch.patterns import glob_tree
from . import Watch
from .jinja import forget_templates, is_template, template_dirs

if TYPE_CHECKING:
    from flask import Flask


class FlaskFramework:
    """The adapter for a Flask app (or its ``wsgi_app``)."""

    name = "Flask"

    def __init__(self, app: Flask) -> None:
        self._app = app
        self._dirs: list[str] = []
        self.directories = 0

    def preload(self) -> None:
        """Nothing to load: a Flask app has imported its views once it exists."""

    def start(self, watch: Watch) -> None:
        app = self._app
        loaders = [app.jinja_loader, *(bp.jinja_loader for bp in app.iter_blueprints())]
        self._dirs = list(dict.fromkeys(d for loader in loaders for d in template_dirs(loader)))
        for directory in self._dirs:
            watch(glob_tree(directory, "**/*"))
        self.directories = len(self._dirs)

    def handled(self, path: str) -> bool:
        if not is_template(path, self._dirs):
            return False
        forget_templates(self._app.jinja_env)
        return True

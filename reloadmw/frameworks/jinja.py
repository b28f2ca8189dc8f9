"""Jinja environments, as Flask and Django's Jinja2 backend use them: where the templates
are, and how to make Jinja load them again from source.

Jinja keeps compiled templates in ``Environment.cache``. With
``auto_reload`` it stats each template's source on every render to see
whether it is stale; without it (Flask's default outside debug mode, and
Django's Jinja2 backend with ``DEBUG = False``), an edited template is never
seen. reloadmw already notices the edit on its own check, so it empties the
cache then and Jinja compiles the new source on the next render: the same
result as ``auto_reload``, with no stat per render and no restart.
"""

from __future__ import annotations

import os
from typing import Any


def template_dirs(loader: Any) -> list[str]:
    """The directories a Jinja loader reads from: ``FileSystemLoader`` search paths.

    ``ChoiceLoader`` and ``PrefixLoader`` are looked through; other loaders
    (``PackageLoader``, ``DictLoader``, a custom one) give nothing.
    """
    if loader is None:
        return []
    searchpath = getattr(loader, "searchpath", None)
    if isinstance(searchpath, (list, tuple)):
        return [os.path.abspath(os.fspath(p)) for p in searchpath]
    nested = getattr(loader, "loaders", None) or list(getattr(loader, "mapping", {}).values())
    return [d for inner in nested for d in template_dirs(inner)]


def forget_templates(env: Any) -> None:
    """Drop the compiled templates of ``env``: the next render compiles the source again."""
    cache = getattr(env, "cache", None)
    if cache is not None:
        cache.clear()


def is_template(path: str, dirs: list[str]) -> bool:
    """True for a file under one of ``dirs`` that is not Python source (as Django decides)."""
    return not path.endswith(".py") and any(path.startswith(os.path.join(d, "")) for d in dirs)

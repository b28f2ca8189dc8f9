"""A small Pyramid app; ``development.ini`` serves it behind the reloadmw filter."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator


def main(global_config: dict[str, str], **settings: str) -> Any:
    """The Paste app factory: ``use = call:hello_pyramid:main``."""
    with Configurator(settings=settings) as config:
        config.add_route("home", "/")
        config.scan(".views")
        return config.make_wsgi_app()

"""Edit MESSAGE and reload the page: the process restarts and serves the new text."""

from __future__ import annotations

import os

from pyramid.request import Request
from pyramid.view import view_config

MESSAGE = "Hello from Pyramid"


@view_config(route_name="home", renderer="json")
def home(request: Request) -> dict[str, object]:
    return {
        "message": MESSAGE,
        "greeting": request.registry.settings.get("greeting"),
        "pid": os.getpid(),
    }

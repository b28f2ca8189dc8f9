"""Edit greeting.py and reload the page: every daemon process serves the new text."""

from __future__ import annotations

import os

from django.http import HttpRequest, JsonResponse

from mysite import greeting


def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"greeting": greeting.TEXT, "pid": os.getpid()})

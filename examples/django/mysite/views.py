"""Edit greeting.py and reload the page: every daemon process serves the new text.

Edit templates/banner.html instead: the same processes render it, without a restart.
"""

from __future__ import annotations

import os

from django.http import HttpRequest, JsonResponse
from django.template.loader import render_to_string

from mysite import greeting


def index(request: HttpRequest) -> JsonResponse:
    banner = render_to_string("banner.html").strip()
    return JsonResponse({"greeting": greeting.TEXT, "banner": banner, "pid": os.getpid()})

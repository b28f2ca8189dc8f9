"""WSGI entry point for mod_wsgi daemon mode, wrapped in ReloadMiddleware.

mod_wsgi calls ``reload_required`` before each request: after an edit, the
daemon process restarts first and the request is served by the new code.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from reloadmw import ReloadMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = ReloadMiddleware(get_wsgi_application(), interval=1.0)
reload_required = application.reload_required

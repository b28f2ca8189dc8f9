"""WSGI entry point for mod_wsgi daemon mode, wrapped in ReloadMiddleware.

mod_wsgi calls ``reload_required`` before each request: after an edit, the
daemon process restarts first and the request is served by the new code.

Django is loaded by the middleware when it is made (``factory=True`` with an
import string; the ``WSGIScriptAlias`` line in apache.conf preloads this
script when each daemon process starts) rather than here: if an edit breaks
``settings.py`` or the URLconf, the process answers 500 and restarts once the
file is fixed, instead of failing to import this script or sticking at
"populate() isn't reentrant". Templates, translations and
``autoreload_started`` receivers work as under ``runserver``: see docs/django.rst.
"""

from __future__ import annotations

import os

from reloadmw import ReloadMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = ReloadMiddleware("django.core.wsgi:get_wsgi_application", factory=True, interval=1.0)
reload_required = application.reload_required

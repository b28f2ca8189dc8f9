# WSGI script for Apache + mod_wsgi daemon mode; `make demo` serves it.
# Edit greeting.py and reload the page: the answer comes from a new process.
import html
import logging
import os

import greeting
from reloadmw import ReloadMiddleware

# Send reloadmw's INFO lines ("change detected in ...") to the Apache error log.
logging.basicConfig(level=logging.INFO, format="%(message)s")


def hello(environ, start_response):
    body = "<!doctype html>\n<title>reloadmw demo</title>\n<h1>{}</h1>\n<p>Process {}</p>\n"
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
    return [body.format(html.escape(greeting.TEXT), os.getpid()).encode()]


application = ReloadMiddleware(hello, interval=0.5)
# mod_wsgi calls this before each request: after an edit it restarts the daemon
# process first, so the first response already shows the new code.
reload_required = application.reload_required

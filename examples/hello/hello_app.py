"""The demo's app. Edit greeting.py: the open page shows the new text by itself."""

import html
import os

from greeting import TEXT

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>reloadmw demo</title></head>
<body>
<h1>{}</h1>
<p>Process {}</p>
</body></html>
"""


def application(environ, start_response):
    body = PAGE.format(html.escape(TEXT), os.getpid()).encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]

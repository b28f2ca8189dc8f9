"""A Flask app served by gunicorn; edit greeting.py and reload the page.

Run it with ``gunicorn app:app`` from this directory (``gunicorn.conf.py``
sets two workers). When a file changes, reloadmw sends SIGHUP to the gunicorn
arbiter, which replaces both workers gracefully.
"""

from __future__ import annotations

import logging
import os

import greeting
from flask import Flask

from reloadmw import ReloadMiddleware

logging.basicConfig(level=logging.INFO)

app = Flask(__name__)


@app.route("/")
def index() -> dict[str, object]:
    return {"greeting": greeting.TEXT, "pid": os.getpid()}


# Wrap the WSGI app, not the Flask object, so Flask's own API stays usable.
app.wsgi_app = ReloadMiddleware(app.wsgi_app, interval=0.5, track=["templates/"])

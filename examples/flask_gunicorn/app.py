"""A Flask app served by gunicorn; edit greeting.py or templates/banner.html and reload.

Run it with ``gunicorn app:app`` from this directory (``gunicorn.conf.py``
sets two workers). When ``greeting.py`` changes, reloadmw sends SIGHUP to the
gunicorn arbiter, which replaces both workers gracefully. Flask's template
folder is watched without ``track=``: a template edit shows on the next
request, from the same workers, without a restart.
"""

from __future__ import annotations

import logging
import os

import greeting
from flask import Flask, render_template

from reloadmw import ReloadMiddleware

logging.basicConfig(level=logging.INFO)

app = Flask(__name__)


@app.route("/")
def index() -> dict[str, object]:
    return {
        "greeting": greeting.TEXT,
        "banner": render_template("banner.html").strip(),
        "pid": os.getpid(),
    }


# Wrap the WSGI app, not the Flask object, so Flask's own API stays usable.
app.wsgi_app = ReloadMiddleware(app.wsgi_app, interval=0.5)

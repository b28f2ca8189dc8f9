"""Flask in process: the app's and its blueprints' template folders, watched without ``track``.

Outside debug mode Jinja never looks at a template again once compiled
(``TEMPLATES_AUTO_RELOAD`` follows ``debug``): what shows here after an edit
was reloaded by reloadmw, in the same process, without a restart.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import pytest

from tests.helpers import Sandbox, edit

APP = """\
from flask import Blueprint, Flask, render_template

app = Flask(__name__)
shop = Blueprint("shop", __name__, template_folder="shop_templates")


@app.route("/")
def index():
    return {
        "page": render_template("page.html").strip(),
        "shop": render_template("shop.html").strip(),
    }


app.register_blueprint(shop)
"""


def flask_app(sandbox: Sandbox) -> Any:
    sandbox.write("flaskapp.py", APP)
    sandbox.write("templates/page.html", "page 1\n")
    sandbox.write("shop_templates/shop.html", "shop 1\n")
    return importlib.import_module("flaskapp").app


@pytest.mark.parametrize("form", ["wsgi_app", "app", "import string"])
def test_a_template_edit_renders_at_once_without_a_restart(sandbox: Sandbox, form: str) -> None:
    app = flask_app(sandbox)
    wrapped = {"wsgi_app": app.wsgi_app, "app": app, "import string": "flaskapp:app"}[form]
    client = sandbox.client(sandbox.middleware(wrapped))
    assert client.get("/").json == {"page": "page 1", "shop": "shop 1"}

    sandbox.write("templates/page.html", "page 2\n")
    sandbox.write("shop_templates/shop.html", "shop 2\n")

    assert client.get("/").json == {"page": "page 2", "shop": "shop 2"}
    assert sandbox.restarts.reasons == []


def test_a_py_file_in_a_template_folder_still_restarts(sandbox: Sandbox) -> None:
    app = flask_app(sandbox)
    client = sandbox.client(sandbox.middleware(app.wsgi_app))
    helper = sandbox.root / "templates" / "macros.py"
    edit(helper, "X = 1\n")

    client.get("/")

    assert sandbox.restarts.reasons == [[str(helper)]]


def test_the_start_line_names_the_template_folders_flask_registered(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    app = flask_app(sandbox)
    caplog.set_level(logging.INFO, logger="reloadmw")
    sandbox.middleware(app.wsgi_app)

    [line] = [r.getMessage() for r in caplog.records if "watching" in r.getMessage()]
    assert "2 in 2 directories registered by Flask" in line

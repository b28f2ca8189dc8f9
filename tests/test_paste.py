"""The PasteDeploy filter: every ini form loads, options become typed, bad ones are refused."""

from __future__ import annotations

import inspect
import os
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import webtest  # type: ignore[import-untyped]
from paste.deploy import loadapp  # type: ignore[import-untyped]

from reloadmw import ReloadMiddleware
from reloadmw.endpoint.passwords import hash_password
from reloadmw.paste import OPTIONS, make_filter

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def hello(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def make_app(global_conf: dict[str, str], **settings: str) -> Any:
    """``use = call:tests.test_paste:make_app``."""
    return hello


def load(tmp_path: Path, ini: str, name: str = "main") -> Any:
    path = tmp_path / "app.ini"
    path.write_text(textwrap.dedent(ini))
    return loadapp(f"config:{path}", name=name)


APP = """
[app:hello]
use = call:tests.test_paste:make_app
"""


@pytest.mark.parametrize(
    "ini",
    [
        pytest.param(
            APP + "[filter:reload]\nuse = egg:reloadmw\n[pipeline:main]\npipeline = reload hello\n",
            id="egg:reloadmw in a pipeline",
        ),
        pytest.param(
            APP + "[filter:reload]\nuse = egg:reloadmw#reload\n"
            "[pipeline:main]\npipeline = reload hello\n",
            id="egg:reloadmw#reload",
        ),
        pytest.param(
            "[app:main]\nuse = call:tests.test_paste:make_app\nfilter-with = reload\n"
            "[filter:reload]\nuse = egg:reloadmw\n",
            id="filter-with",
        ),
        pytest.param(
            APP + "[filter-app:main]\nuse = egg:reloadmw\nnext = hello\n",
            id="filter-app",
        ),
    ],
)
def test_every_ini_form_wraps_the_app(tmp_path: Path, ini: str) -> None:
    app = load(tmp_path, ini)

    assert isinstance(app, ReloadMiddleware)
    assert app.app is hello
    assert webtest.TestApp(app).get("/").text == "hello"


def test_options_are_converted_to_typed_values(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    filter_section = textwrap.dedent(
        """
        [filter:reload]
        use = egg:reloadmw
        interval = 0.5
        quiet = 0
        track =
            %(here)s/app.ini
            templates/
        ignore = *.swp *~
        precheck = false
        restart = gunicorn
        [pipeline:main]
        pipeline = reload hello
        """
    )
    app = load(tmp_path, APP + filter_section)

    assert app.interval == 0.5
    assert app.quiet == 0.0
    assert app.precheck is False
    assert app.root == str(tmp_path)
    assert app._restarter.strategy_for({}).name == "gunicorn"
    # The ini (absolute) and the relative directory are watched; both ignore patterns apply.
    os.utime(tmp_path / "app.ini", ns=(0, 10**18))
    for name in ("new.html", "new.html.swp", "new.html~"):
        (tmp_path / "templates" / name).write_text("new")
    assert sorted(app.check()) == [str(tmp_path / "app.ini"), str(tmp_path / "templates/new.html")]


def test_enabled_false_returns_the_app_itself(tmp_path: Path) -> None:
    app = load(
        tmp_path,
        APP + "[filter:reload]\nuse = egg:reloadmw\nenabled = false\ninterval = 2\n"
        "[pipeline:main]\npipeline = reload hello\n",
    )

    assert app is hello


def test_enabled_false_still_refuses_unknown_options() -> None:
    with pytest.raises(ValueError, match="unknown option intervall"):
        make_filter({}, enabled="false", intervall="1")


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("interval", "soon", r"option interval = 'soon' .* not valid; write a number"),
        ("quiet", "", r"option quiet = '' .* not valid; write a number"),
        ("enabled", "maybe", r"option enabled = 'maybe' .* not valid; write true or false"),
        ("precheck", "sometimes", r"option precheck = 'sometimes' .* write true or false"),
        ("watch_site_packages", "2", r"option watch_site_packages = '2'"),
    ],
)
def test_bad_value_names_the_option_and_the_value(option: str, value: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        make_filter({}, **{option: value})


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("interval", "-1", r"interval=-1.0 must be a finite number"),
        ("interval", "nan", r"interval=nan must be a finite number"),
        ("restart", "bogus", r"restart='bogus' is not a known strategy; use 'auto', one of .*exec"),
        ("backend", "kqueue", r"backend='kqueue' is not a known backend"),
    ],
)
def test_value_the_middleware_refuses_fails_at_load(
    tmp_path: Path, option: str, value: str, expected: str
) -> None:
    ini = APP + f"[filter:reload]\nuse = egg:reloadmw\n{option} = {value}\n"
    with pytest.raises(ValueError, match=expected):
        load(tmp_path, ini + "[pipeline:main]\npipeline = reload hello\n")


def test_unknown_option_is_named_with_the_known_ones(tmp_path: Path) -> None:
    ini = APP + "[filter:reload]\nuse = egg:reloadmw\nintervall = 1\n"
    with pytest.raises(ValueError) as error:
        load(tmp_path, ini + "[pipeline:main]\npipeline = reload hello\n")

    message = str(error.value)
    assert "unknown option intervall in the filter section" in message
    assert "'1'" not in message  # the value of an unknown option may be a secret
    for known in ("enabled", "interval", "track", "ignore", "restart", "quiet", "root"):
        assert known in message


def test_every_constructor_option_can_be_set_from_the_ini() -> None:
    parameters = set(inspect.signature(ReloadMiddleware).parameters) - {"app"}
    assert set(OPTIONS) == parameters | {"enabled"}


def test_relative_root_starts_at_the_ini_directory(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    app = load(
        tmp_path,
        APP + "[filter:reload]\nuse = egg:reloadmw\nroot = conf\n"
        "[pipeline:main]\npipeline = reload hello\n",
    )
    assert app.root == str(tmp_path / "conf")


def test_endpoint_options_from_the_ini_protect_the_reload_url(tmp_path: Path) -> None:
    hashed = hash_password("s3cret")
    app = load(
        tmp_path,
        APP
        + textwrap.dedent(
            f"""
            [filter:reload]
            use = egg:reloadmw
            password = {hashed}
            endpoint = /_admin/reload
            allow_from = 127.0.0.1 ::1
            require_https = false
            scope = process
            state_dir = state
            [pipeline:main]
            pipeline = reload hello
            """
        ),
    )
    client = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})

    client.get("/_admin/reload", status=401)
    client.authorization = ("Basic", ("", "s3cret"))
    status = client.get("/_admin/reload").json
    assert status["scope"] == "process"
    assert client.get("/_admin/reload", extra_environ={"REMOTE_ADDR": "10.0.0.1"}, status=403)


# -- secrets in error messages (issue 13, defect 7) -----------------------------------


@pytest.mark.parametrize("option", ["passwd", "pasword", "Password", "secret"])
def test_a_mistyped_option_is_named_but_its_value_is_never_shown(
    tmp_path: Path, option: str
) -> None:
    hashed = hash_password("s3cret", iterations=1000)
    for value in ("hunter2", hashed):
        ini = APP + f"[filter:reload]\nuse = egg:reloadmw\n{option} = {value}\n"
        with pytest.raises(ValueError) as error:
            load(tmp_path, ini + "[pipeline:main]\npipeline = reload hello\n")

        message = str(error.value)
        assert f"unknown option {option}" in message and "password" in message
        for secret in (value, *value.split("$")[1:]):
            assert secret not in message


def test_a_bad_password_value_is_never_shown(tmp_path: Path) -> None:
    hashed = hash_password("s3cret", iterations=1000)
    ini = APP + f'[filter:reload]\nuse = egg:reloadmw\npassword = "{hashed}"\n'
    with pytest.raises(ValueError, match="in quotes") as error:
        load(tmp_path, ini + "[pipeline:main]\npipeline = reload hello\n")

    for secret in hashed.split("$")[2:]:
        assert secret not in str(error.value)


def test_an_empty_state_dir_is_refused_not_taken_as_the_ini_directory(tmp_path: Path) -> None:
    hashed = hash_password("s3cret", iterations=1000)
    ini = APP + f"[filter:reload]\nuse = egg:reloadmw\npassword = {hashed}\nstate_dir =\n"
    with pytest.raises(ValueError, match="state_dir='' is empty; leave it out for the default"):
        load(tmp_path, ini + "[pipeline:main]\npipeline = reload hello\n")
    assert not list(tmp_path.glob("*.generation"))

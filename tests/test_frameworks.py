"""Nothing of Django, Flask or Jinja is imported for an app that is neither."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import json, sys
{before}
from reloadmw import ReloadMiddleware

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]

middleware = ReloadMiddleware(app, interval=0, restart=lambda reason: None)
assert b"".join(middleware({{"PATH_INFO": "/"}}, lambda status, headers: None)) == b"ok"
middleware.check()
print(json.dumps({{
    "adapters": sorted(n for n in sys.modules if n.startswith("reloadmw.frameworks.")),
    "frameworks": sorted(
        n for n in sys.modules if n.split(".")[0] in ("django", "flask", "jinja2", "werkzeug")
    ),
}}))
"""


def imported(before: str = "") -> dict[str, list[str]]:
    """What a process serving a plain app has imported, after ``before`` ran."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(before=before)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answer: dict[str, list[str]] = json.loads(result.stdout)
    return answer


def test_a_plain_app_imports_nothing_of_django_flask_or_jinja() -> None:
    assert imported() == {"adapters": [], "frameworks": []}


@pytest.mark.parametrize("framework", ["django.core.handlers.wsgi", "flask"])
def test_a_framework_imported_next_to_a_plain_app_starts_no_adapter(framework: str) -> None:
    found = imported(f"import {framework}")
    assert found["adapters"] == []
    assert framework.split(".")[0] in found["frameworks"]

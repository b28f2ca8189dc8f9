"""Each option is documented once, in the code the options reference is generated from."""

from __future__ import annotations

import inspect
import re

import reloadmw.paste
from reloadmw import ReloadMiddleware
from reloadmw.paste import OPTIONS


def documented(docstring: str) -> list[str]:
    return re.findall(r"^\s*:param (\w+):", docstring, re.MULTILINE)


def test_every_parameter_of_the_middleware_has_exactly_one_param_entry() -> None:
    parameters = list(inspect.signature(ReloadMiddleware).parameters)
    entries = documented(ReloadMiddleware.__doc__ or "")
    # In signature order, each once, and nothing that is not a parameter.
    assert entries == parameters


def test_every_param_entry_says_something() -> None:
    entries = re.findall(r":param (\w+):(.*)", ReloadMiddleware.__doc__ or "")
    assert [name for name, text in entries if len(text.split()) < 3] == []


def test_the_filter_documents_its_one_option_of_its_own() -> None:
    # The ini table (docs/_ext/paste_options.py) lists OPTIONS; what each does is
    # the middleware's text, except for `enabled`, which only the filter has.
    assert set(OPTIONS) - set(inspect.signature(ReloadMiddleware).parameters) == {"enabled"}
    assert "``enabled = false``" in (reloadmw.paste.make_filter.__doc__ or "")
    assert all(expected for _, expected in OPTIONS.values())

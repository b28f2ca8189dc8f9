"""Sphinx configuration of the reloadmw docs: ``make docs`` or ``tox -e docs`` builds them."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), os.path.join(HERE, "_ext")]

import reloadmw  # noqa: E402

project = "reloadmw"
author = "reloadmw developers"
copyright = "reloadmw developers"
release = version = reloadmw.__version__

extensions = ["sphinx.ext.autodoc", "paste_options"]
exclude_patterns = ["_build"]
# Every cross-reference must resolve: with -W an unknown :doc:, :ref: or
# :class: target fails the build. Internal links are checked that way; the
# linkcheck builder would need the internet, which the CI machine lacks.
nitpicky = True
# Types are written in each option's text; rendered annotations would name
# typing aliases (WSGIApplication, StrategyName) that have no page to link to.
autodoc_typehints = "none"
autodoc_member_order = "bysource"
# A bare "::" block gets no highlighting: the docs name each block's language.
highlight_language = "none"

html_theme = "furo"
html_title = f"reloadmw {release}"

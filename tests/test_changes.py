"""CHANGES.rst: an Unreleased section on top for the next changes, and every release dated."""

from __future__ import annotations

import re

import reloadmw
from tests.helpers import REPO


def headings() -> list[str]:
    lines = (REPO / "CHANGES.rst").read_text().splitlines()
    return [above for above, line in zip(lines, lines[1:]) if line and set(line) == {"-"} and above]


def test_the_changelog_opens_with_unreleased_then_dated_releases_newest_first() -> None:
    first, *releases = headings()
    assert first == "Unreleased"
    assert releases, "no release in CHANGES.rst"
    dated = [re.fullmatch(r"(\d+\.\d+\.\d+) \((\d{4}-\d{2}-\d{2})\)", r) for r in releases]
    assert None not in dated, f"write each release as 'X.Y.Z (YYYY-MM-DD)': {releases}"
    dates = [m.group(2) for m in dated if m]
    assert dates == sorted(dates, reverse=True)


def test_the_version_is_a_released_one_or_the_next() -> None:
    released = [h.split(" ")[0] for h in headings()[1:]]
    assert reloadmw.__version__ == released[0] or reloadmw.__version__ not in released

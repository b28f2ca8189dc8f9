"""``ignore`` rules and ``track`` entries: which paths they match."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reloadmw.watch.patterns import DEFAULT_IGNORE, IgnoreRules, Tree, glob_tree, parse_track


def tree(pattern: str, root: Path) -> Tree:
    parsed = parse_track(pattern, str(root))
    assert isinstance(parsed, Tree), f"{pattern!r} should be a tree, got {parsed!r}"
    return parsed


# -- ignore ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/srv/app/views.py.swp",
        "/srv/app/.views.py.swx",
        "/srv/app/views.py~",
        "/srv/app/.#views.py",
        "/srv/app/#views.py#",
        "/srv/app/__pycache__/views.cpython-311.pyc",
        "/srv/app/.git/HEAD",
        "/srv/app/.git/objects/ab/cdef",
        "/srv/app/.hg/store/data",
    ],
)
def test_default_ignore_rules_skip_editor_and_vcs_files(path: str) -> None:
    assert IgnoreRules(DEFAULT_IGNORE)(path)


@pytest.mark.parametrize(
    "path",
    ["/srv/app/views.py", "/srv/app/templates/index.html", "/srv/app/git/x.py", "/srv/app/a#b.py"],
)
def test_default_ignore_rules_keep_ordinary_files(path: str) -> None:
    assert not IgnoreRules(DEFAULT_IGNORE)(path)


def test_pattern_without_slash_matches_the_file_name_only() -> None:
    rules = IgnoreRules(["*.log"])
    assert rules("/srv/app/logs/today.log")
    assert not rules("/srv/app.log/views.py")


def test_pattern_with_slash_matches_the_end_of_the_path() -> None:
    rules = IgnoreRules(["build/*"])
    assert rules("/srv/app/build/out.py")
    assert not rules("/srv/app/rebuild/out.py")
    assert not rules("/srv/app/build")


def test_directory_is_ignored_when_a_file_directly_inside_would_be() -> None:
    rules = IgnoreRules(DEFAULT_IGNORE)
    assert rules.ignores_dir("/srv/app/__pycache__")
    assert rules.ignores_dir("/srv/app/.git")
    assert not rules.ignores_dir("/srv/app/templates")


def test_no_ignore_patterns_ignore_nothing() -> None:
    rules = IgnoreRules([])
    assert not rules("/srv/app/views.py.swp")


# -- track: files and directories ----------------------------------------------------


def test_relative_file_is_taken_from_root(tmp_path: Path) -> None:
    assert parse_track("config.ini", str(tmp_path)) == str(tmp_path / "config.ini")


def test_absolute_file_ignores_root(tmp_path: Path) -> None:
    assert parse_track("/etc/app/config.ini", str(tmp_path)) == "/etc/app/config.ini"


def test_home_directory_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parse_track("~/app.ini", "/srv") == str(tmp_path / "home" / "app.ini")


def test_trailing_slash_makes_a_tree_even_before_the_directory_exists(tmp_path: Path) -> None:
    templates = tree("templates/", tmp_path)
    assert templates.root == str(tmp_path / "templates")
    assert templates.match(str(tmp_path / "templates" / "a" / "b.html"))


def test_existing_directory_without_slash_is_a_tree(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    assert tree("templates", tmp_path).root == str(tmp_path / "templates")


def test_root_with_glob_characters_in_its_name_is_not_a_glob(tmp_path: Path) -> None:
    root = tmp_path / "site[old]*?"
    root.mkdir()
    assert parse_track("config.ini", str(root)) == str(root / "config.ini")
    css = tree("static/*.css", root)
    assert css.root == str(root / "static")
    assert css.match(str(root / "static" / "a.css"))


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_track_entry_is_refused_with_its_value(bad: str) -> None:
    with pytest.raises(ValueError, match="track entry"):
        parse_track(bad, "/srv")


# -- track: globs ------------------------------------------------------------------


def test_glob_tree_starts_at_the_part_before_the_first_wildcard(tmp_path: Path) -> None:
    assert tree("static/css/**/*.css", tmp_path).root == str(tmp_path / "static" / "css")


def test_double_star_spans_any_number_of_directories(tmp_path: Path) -> None:
    css = tree("static/**/*.css", tmp_path)
    static = tmp_path / "static"
    assert css.match(str(static / "a.css"))
    assert css.match(str(static / "themes" / "a.css"))
    assert css.match(str(static / "themes" / "dark" / "x" / "a.css"))
    assert not css.match(str(static / "themes" / "a.js"))
    assert not css.match(str(static / "a.css.map"))


def test_double_star_in_the_middle_also_matches_no_directory(tmp_path: Path) -> None:
    html = tree("a/**/page.html", tmp_path)
    assert html.match(str(tmp_path / "a" / "page.html"))
    assert html.match(str(tmp_path / "a" / "x" / "y" / "page.html"))
    assert not html.match(str(tmp_path / "a" / "x" / "other.html"))


def test_trailing_double_star_matches_everything_below(tmp_path: Path) -> None:
    everything = tree("conf/**", tmp_path)
    assert everything.match(str(tmp_path / "conf" / "a.ini"))
    assert everything.match(str(tmp_path / "conf" / "x" / "y.yaml"))


def test_star_does_not_cross_a_slash(tmp_path: Path) -> None:
    css = tree("static/*.css", tmp_path)
    assert css.match(str(tmp_path / "static" / "a.css"))
    assert not css.match(str(tmp_path / "static" / "themes" / "a.css"))


def test_star_directory_matches_exactly_one_level(tmp_path: Path) -> None:
    ini = tree("sites/*/site.ini", tmp_path)
    assert ini.match(str(tmp_path / "sites" / "a" / "site.ini"))
    assert not ini.match(str(tmp_path / "sites" / "site.ini"))
    assert not ini.match(str(tmp_path / "sites" / "a" / "b" / "site.ini"))


def test_question_mark_matches_one_character_but_not_a_slash(tmp_path: Path) -> None:
    logs = tree("v?.ini", tmp_path)
    assert logs.match(str(tmp_path / "v1.ini"))
    assert not logs.match(str(tmp_path / "v10.ini"))
    assert not logs.match(str(tmp_path / "v" / ".ini"))


def test_character_classes_and_negation(tmp_path: Path) -> None:
    picked = tree("[ab]*.ini", tmp_path)
    assert picked.match(str(tmp_path / "a1.ini"))
    assert not picked.match(str(tmp_path / "c1.ini"))
    others = tree("[!ab]*.ini", tmp_path)
    assert others.match(str(tmp_path / "c1.ini"))
    assert not others.match(str(tmp_path / "a1.ini"))


def test_glob_special_characters_in_literal_parts_are_literal(tmp_path: Path) -> None:
    css = tree("static/*.min.css", tmp_path)
    assert css.match(str(tmp_path / "static" / "a.min.css"))
    assert not css.match(str(tmp_path / "static" / "a-minXcss"))


def test_glob_tree_matches_below_a_directory_as_pathlib_glob_does(tmp_path: Path) -> None:
    odd = tmp_path / "site[old]"  # the directory is never a glob
    mo = glob_tree(str(odd / "locale"), "**/*.mo")
    top = glob_tree(str(odd / "data"), "*.json")
    assert mo.root == str(odd / "locale")
    assert mo.match(str(odd / "locale" / "fr" / "LC_MESSAGES" / "django.mo"))
    assert mo.match(str(odd / "locale" / "django.mo"))
    assert not mo.match(str(odd / "locale" / "fr" / "LC_MESSAGES" / "django.po"))
    assert top.match(str(odd / "data" / "a.json"))
    assert not top.match(str(odd / "data" / "old" / "a.json"))


def test_absolute_glob_ignores_root(tmp_path: Path) -> None:
    css = tree(os.path.join(str(tmp_path), "static", "*.css"), Path("/elsewhere"))
    assert css.root == str(tmp_path / "static")
    assert css.match(str(tmp_path / "static" / "a.css"))


def reference_match(glob: list[str], path: list[str]) -> bool:
    """The glob rules, spelled out: each segment as fnmatchcase, ``**`` any number of segments.

    A trailing ``**`` takes at least one (a file lies below the directory).
    Exponential, so for small inputs only.
    """
    if not glob:
        return not path
    if glob[0] == "**":
        if len(glob) == 1:
            return bool(path)
        return any(reference_match(glob[1:], path[k:]) for k in range(len(path) + 1))
    return (
        bool(path) and fnmatch.fnmatchcase(path[0], glob[0]) and reference_match(glob[1:], path[1:])
    )


GLOB_SEGMENTS = st.sampled_from(["**", "*", "a", "b", "?", "a*", "*b", "[ab]", "[!a]", "*.css"])
PATH_SEGMENTS = st.sampled_from(["a", "b", "ab", "ba", "c", "x.css", "a.css", ".css", "aa"])


@given(
    glob=st.lists(GLOB_SEGMENTS, min_size=1, max_size=6),
    path=st.lists(PATH_SEGMENTS, min_size=1, max_size=6),
)
def test_glob_matches_as_segment_wise_fnmatch_with_double_star_spanning_directories(
    glob: list[str], path: list[str]
) -> None:
    matched = glob_tree("/srv", "/".join(glob)).match("/srv/" + "/".join(path))

    assert matched == reference_match(glob, path)


MANY_DOUBLE_STARS = """
from reloadmw.watch.patterns import glob_tree
glob = glob_tree("/srv", "/".join(["**", "a"] * 12) + "/*.css")
print([glob.match("/srv/" + "/".join(["a"] * 60) + "/" + name) for name in ("x.js", "x.css")])
"""


def test_many_double_stars_match_without_backtracking() -> None:
    # 12 "**" against 60 segments that nearly match: a backtracking matcher tries
    # about C(60, 12) ways to split the path, and holds the GIL while it does;
    # so a subprocess, with a generous deadline (a guard, not a speed target).
    done = subprocess.run(
        [sys.executable, "-c", MANY_DOUBLE_STARS], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[False, True]"


@pytest.mark.parametrize(
    "needles",
    [{"#", "~"}, {"it's", 'say "hi"'}, {"back\\slash", "\n", "ünï"}, {".#", "#"}],
)
def test_holding_finds_each_needle_and_nothing_else(needles: set[str]) -> None:
    from reloadmw.watch.patterns import _holding

    paths = ["/srv/app/plain/file.py"]
    paths += [f"/srv/app/{needle}/file.py" for needle in sorted(needles)]
    paths += ["/srv/app/plain/other.py"]

    assert _holding(sorted(needles), paths) == set(range(1, len(needles) + 1))


def test_ignore_rules_quote_and_backslash_in_patterns_are_plain_text() -> None:
    rules = IgnoreRules(["it's*", '*"q"', "a\\b*"])

    assert rules("/srv/it's here")
    assert rules('/srv/say "q"')
    assert rules("/srv/a\\b.txt")
    assert not rules("/srv/its here")

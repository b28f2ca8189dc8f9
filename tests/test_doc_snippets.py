"""No drift: every code block a user would paste from the docs is run or loaded.

The blocks come from README.rst, CONTRIBUTING.rst and docs/*.rst, found by
language (``tests/doc_snippets.py``), so a new page is covered as soon as it
exists. Python blocks run and serve one request, ini files load through
PasteDeploy and serve one, Apache lines start a real Apache (marked
``server``) that must answer 200 at the script's URL.
"""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.doc_snippets import SITE, Snippet, all_snippets, apache_site, in_world, lay_out
from tests.helpers import REPO
from tests.rig import StartApache

SNIPPETS = all_snippets()
RUNNER = Path(__file__).with_name("snippet_run.py")
RUN_TIMEOUT = 120


def of(kind: str, *, fragment: bool) -> list[pytest.param]:
    return [
        pytest.param(s, id=s.id)
        for s in SNIPPETS
        if s.runs_as == kind and s.fragment == fragment and not s.problem
    ]


def test_every_code_block_names_a_language_the_harness_knows() -> None:
    problems = [f"{s.id}: {s.problem}" for s in SNIPPETS if s.problem]
    assert problems == [], "\n".join(problems)


def test_the_docs_have_blocks_of_every_kind_the_harness_runs() -> None:
    # A parser that found nothing would pass everything below.
    kinds = {s.runs_as for s in SNIPPETS if not s.fragment}
    assert {"python", "ini", "apache"} <= kinds


def run(snippet: Snippet, kind: str, root: Path) -> str:
    site = lay_out(root, snippet)
    target = in_world(root, snippet.file or f"{SITE}/snippet.{'py' if kind == 'python' else 'ini'}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(snippet.text)
    done = subprocess.run(
        [sys.executable, str(RUNNER), kind, str(target)],
        cwd=site,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert done.returncode == 0, f"{snippet.id} ({kind}) failed:\n{snippet.text}\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize("snippet", of("python", fragment=False))
def test_python_block_runs_and_serves(snippet: Snippet, tmp_path: Path) -> None:
    run(snippet, "python", tmp_path)


@pytest.mark.parametrize("snippet", of("ini", fragment=False))
def test_ini_block_loads_through_pastedeploy_and_serves(snippet: Snippet, tmp_path: Path) -> None:
    assert run(snippet, "ini", tmp_path).startswith(("2", "3", "4"))


def test_fragments_parse() -> None:
    # Marked fragments are not run; Python ones must still compile, ini ones parse.
    for snippet in SNIPPETS:
        if snippet.fragment and snippet.runs_as == "python":
            compile(snippet.text, snippet.id, "exec")
        elif snippet.fragment and snippet.runs_as == "ini":
            configparser.ConfigParser(interpolation=None).read_string(snippet.text, snippet.id)


@pytest.mark.server
@pytest.mark.parametrize("snippet", of("apache", fragment=False))
def test_apache_block_starts_a_real_apache_that_serves_the_script(
    snippet: Snippet, app_dir: Path, start_apache: StartApache
) -> None:
    lay_out(app_dir, snippet)
    mount = re.search(r"^\s*WSGIScriptAlias\s+(\S+)\s+(\S+)", snippet.text, re.MULTILINE)
    assert mount, f"{snippet.id}: Apache lines that serve nothing; mark them fragment"
    script = in_world(app_dir, mount.group(2).strip('"'))
    assert script.exists(), (
        f"{snippet.id} serves {mount.group(2)}, which no block of the page shows: "
        f"mark the block that does '.. snippet: file {mount.group(2)}'"
    )
    # It starts, and answers 200 at the script's URL (wait_ready fails otherwise).
    start_apache(script, site=apache_site(app_dir, snippet.text), ready_path=mount.group(1))


def test_the_relative_links_of_readme_and_contributing_name_files_that_exist() -> None:
    # On GitHub and in the sdist they open the docs' sources; a renamed page breaks them.
    broken = []
    for document in (REPO / "README.rst", REPO / "CONTRIBUTING.rst"):
        for target in re.findall(r"`[^`<]*<([^>`]+)>`_", document.read_text()):
            if "://" not in target and not (REPO / target).exists():
                broken.append(f"{document.name}: {target}")
    assert broken == []

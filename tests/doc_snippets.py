"""The code blocks of the user docs, found by language, and the world they run in.

Every ``.. code-block:: LANGUAGE`` (or ``code``/``sourcecode``) in README.rst,
CONTRIBUTING.rst and docs/*.rst is a :class:`Snippet`. Python, ini and Apache
blocks are run by ``tests/test_doc_snippets.py``; the other known languages
(commands and their output) are shown, not run. A block is marked by a reST
comment on the line before it, which neither GitHub nor Sphinx shows::

    .. snippet: file /srv/site/site.wsgi
    .. snippet: fragment

``file PATH``: the block is also that file in the snippets' world, for the
blocks after it on the page (the Apache lines that serve a WSGI script, the
ini that loads an app), until another block shows the same file.
``fragment``: the block is deliberately incomplete, or for another platform:
it is only parsed (Python compiled, ini read), not run. Stacked markers add up.
Anything the harness cannot classify (a bare ``::`` literal block, a block
without a language or with an unknown one, a marker without a block) is a
:data:`Snippet.problem` that fails the suite.
"""

from __future__ import annotations

import re
import shutil
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import REPO

#: Languages whose blocks are run, by the name that runs them.
RUN = {
    "python": "python",
    "py": "python",
    "python3": "python",
    "ini": "ini",
    "apache": "apache",
    "apacheconf": "apache",
}
#: Languages shown and not run: shell commands and what programs print.
SHOWN = {
    "console", "shell", "bash", "sh", "text", "none", "json", "http", "pycon", "rst",
    "html", "html+jinja", "html+django", "javascript",
}  # fmt: skip
CODE_DIRECTIVES = {"code-block", "code", "sourcecode"}
WORLD = Path(__file__).with_name("snippet_world")
#: Where the docs put the user's project, in the snippets' world.
SITE = "/srv/site"

_DIRECTIVE = re.compile(r"(\s*)\.\.\s+([\w:-]+)::(.*)$")
_MARK = re.compile(r"(\s*)\.\.\s+snippet:(.*)$")
_COMMENT = re.compile(r"(\s*)\.\.(\s|$)")


def documents() -> list[Path]:
    """The files a user reads: README, CONTRIBUTING and every page under docs/."""
    return [REPO / "README.rst", REPO / "CONTRIBUTING.rst", *sorted((REPO / "docs").glob("*.rst"))]


@dataclass(frozen=True)
class Snippet:
    """One code block of a document."""

    document: Path
    line: int  # of the directive, 1-based
    language: str
    text: str
    fragment: bool = False
    file: str | None = None  # ``file PATH``: the world path this block is
    problem: str = ""  # why the harness cannot classify it

    @property
    def id(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.line}"

    @property
    def runs_as(self) -> str | None:
        """``python``, ``ini`` or ``apache``; None for shown-only blocks."""
        return RUN.get(self.language)


@dataclass
class _Marks:
    line: int
    fragment: bool = False
    file: str | None = None
    problems: list[str] = field(default_factory=list)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _body(lines: list[str], start: int, indent: int) -> int:
    """Index after the block whose lines from ``start`` are blank or indented past ``indent``."""
    end = start
    while end < len(lines) and (not lines[end].strip() or _indent(lines[end]) > indent):
        end += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return end


def _marks(text: str, line: int) -> _Marks:
    marks = _Marks(line)
    for item in filter(None, (part.strip() for part in text.split(","))):
        word, _, argument = item.partition(" ")
        if word == "fragment" and not argument:
            marks.fragment = True
        elif word == "file" and argument.strip():
            marks.file = argument.strip()
        else:
            marks.problems.append(
                f"unknown snippet marker {item!r}; write 'fragment' or 'file PATH'"
            )
    return marks


def parse(document: Path) -> list[Snippet]:
    """Every code block and literal block of ``document``, with its markers."""
    lines = document.read_text(encoding="utf-8").splitlines()
    found: list[Snippet] = []
    pending: _Marks | None = None

    def add(line: int, language: str, text: str, problem: str = "") -> None:
        nonlocal pending
        marks = pending or _Marks(line)
        problems = [*marks.problems, problem] if problem else marks.problems
        found.append(
            Snippet(document, line, language, text, marks.fragment, marks.file, "; ".join(problems))
        )
        pending = None

    i = 0
    while i < len(lines):
        line = lines[i]
        mark = _MARK.match(line)
        directive = _DIRECTIVE.match(line)
        is_code = directive is not None and directive.group(2) in CODE_DIRECTIVES
        if pending is not None and line.strip() and not is_code and not mark:
            # Markers belong to the code block right after them, blank lines apart.
            add(pending.line, "", "", "a snippet marker without a code block after it")
        if mark:
            marks = _marks(mark.group(2), i + 1)
            if pending is not None:  # stacked markers add up
                marks.fragment |= pending.fragment
                marks.file = marks.file or pending.file
                marks.problems[:0] = pending.problems
            pending = marks
            i += 1
        elif directive and is_code:
            indent = _indent(line)
            end = _body(lines, i + 1, indent)
            body = lines[i + 1 : end]
            options = 0
            while options < len(body) and re.match(r"\s+:[\w-]+:", body[options]):
                options += 1
            text = textwrap.dedent("\n".join(body[options:])).strip("\n") + "\n"
            language = directive.group(3).strip()
            problem = ""
            if language not in RUN and language not in SHOWN:
                problem = (
                    f"code block language {language!r} is not known; use one of "
                    f"{sorted(RUN)} (run) or {sorted(SHOWN)} (shown, not run)"
                )
            add(i + 1, language, text, problem)
            i = end
        elif directive:
            i += 1  # the body of a note or a table is text: read on inside it
        elif _COMMENT.match(line):
            i = _body(lines, i + 1, _indent(line))  # a comment, or a link target
        elif line.rstrip().endswith("::"):
            end = _body(lines, i + 1, _indent(line))
            if end > i + 1:
                add(
                    i + 2,
                    "",
                    "",
                    "a bare '::' literal block: say its language with '.. code-block:: "
                    "python' (or ini, apache, console, text)",
                )
            i = max(end, i + 1)
        else:
            i += 1
    if pending is not None:
        add(pending.line, "", "", "a snippet marker without a code block after it")
    return found


def all_snippets() -> list[Snippet]:
    return [snippet for document in documents() for snippet in parse(document)]


def in_world(root: Path, path: str) -> Path:
    """Where the world path ``path`` is under ``root``; relative paths start at the site."""
    absolute = path if path.startswith("/") else f"{SITE}/{path}"
    return root / absolute.lstrip("/")


def lay_out(root: Path, snippet: Snippet) -> Path:
    """The world under ``root``: the stand-ins, then the page's ``file`` blocks up to ``snippet``.

    A file block serves the blocks after it, until another block shows the same
    file. Returns the site directory, where the blocks run.
    """
    shutil.copytree(WORLD, root, dirs_exist_ok=True)
    for other in parse(snippet.document):
        if other.file is not None and other.line <= snippet.line:
            target = in_world(root, other.file)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(other.text)
    return in_world(root, SITE)


def apache_site(root: Path, text: str) -> str:
    """Apache lines of a snippet, with the world's paths under ``root``.

    ``/srv/<name>/venv`` is the virtualenv the tests run in, which the daemon
    user can read; every other ``/srv/...`` path lies under ``root``.
    """
    text = re.sub(r"/srv/[\w.-]+/venv\b", sys.prefix, text)
    return re.sub(r"(?<![\w/.])/srv/", f"{root}/srv/", text)

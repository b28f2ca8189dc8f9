"""Turn ``track`` and ``ignore`` patterns into things a monitor can test quickly."""

from __future__ import annotations

import fnmatch
import os
import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Callable

DEFAULT_IGNORE = ("*.swp", "*.swx", "*~", ".#*", "#*#", "__pycache__/*", ".git/*", ".hg/*")

_MAGIC = re.compile(r"[*?\[]")


class IgnoreRules:
    """Decides which paths are ignored.

    A pattern without ``/`` is matched against the file name (``*.swp``); one
    with ``/`` against the end of the path (``__pycache__/*``). A directory is
    ignored when a file directly inside it would be.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        names = [p for p in self.patterns if "/" not in p]
        tails = ["*/" + p.lstrip("/") for p in self.patterns if "/" in p]
        self._name = _compile_any(names)
        self._tail = _compile_any(tails)
        # The pattern regexes cost microseconds on a long path. Text that each
        # pattern requires (".swp", "/__pycache__/") appears in few paths: only
        # paths holding some of it are matched. None: every path is matched.
        clues = {_required_text(p) for p in names + tails}
        self._clues = _shortest(clues) if self.patterns and "" not in clues else None

    def __call__(self, path: str) -> bool:
        return not self.kept((path,))

    def ignores_dir(self, path: str) -> bool:
        return self(os.path.join(path, "x"))

    def kept(self, paths: Iterable[str]) -> list[str]:
        """The paths not ignored, in order."""
        paths = list(paths)
        if not self.patterns:
            return paths
        normal = paths if os.sep == "/" else [p.replace(os.sep, "/") for p in paths]
        suspects = range(len(normal)) if self._clues is None else _holding(self._clues, normal)
        ignored = {i for i in suspects if self._matches(normal[i])}
        if not ignored:
            return paths
        return [path for i, path in enumerate(paths) if i not in ignored]

    def _matches(self, path: str) -> bool:
        return bool(self._name(path.rpartition("/")[2]) or self._tail(path))


def _required_text(pattern: str) -> str:
    """The longest literal run that every path matching ``pattern`` contains ("" if unsure)."""
    if "[" in pattern:
        return ""  # a bracket set is not literal text
    return max(re.split(r"[*?]", pattern), key=len)


def _holding(clues: Sequence[str], paths: list[str]) -> set[int]:
    """The indices of the paths that contain any of ``clues``.

    One ``str.find`` per clue runs over all the paths joined (by NUL, which
    no path holds), in C; most clues are in no path, and cost just that.
    """
    text = "\0".join(paths)
    found: set[int] = set()
    ends: list[int] | None = None  # where each path's text ends, plus one
    for clue in clues:
        at = text.find(clue)
        if at >= 0 and ends is None:
            ends = list(accumulate(len(p) + 1 for p in paths))
        while at >= 0 and ends is not None:
            i = bisect_right(ends, at)
            found.add(i)
            at = text.find(clue, ends[i])
    return found


def _shortest(needles: set[str]) -> tuple[str, ...]:
    """The needles that hold no shorter one: a path holding the longer holds the shorter."""
    return tuple(sorted(n for n in needles if not any(m != n and m in n for m in needles)))


def _compile_any(patterns: list[str]) -> Callable[[str], object]:
    if not patterns:
        return lambda _path: False
    regex = re.compile("|".join(fnmatch.translate(p) for p in patterns))
    return regex.match


@dataclass(frozen=True)
class Tree:
    """A directory watched recursively; ``match`` picks which files in it count."""

    root: str
    match: Callable[[str], bool]


def parse_track(pattern: str, root: str) -> str | Tree:
    """Resolve one ``track`` entry against ``root``: a file path or a :class:`Tree`."""
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValueError(
            f"reloadmw: track entry {pattern!r} is not a path; give a file, a directory "
            "ending in '/', or a glob such as 'static/**/*.css'"
        )
    pattern = os.path.expanduser(pattern.strip())
    path = os.path.join(root, pattern)
    if _MAGIC.search(pattern):  # only the entry is a glob, never the root it starts from
        relative_base, glob = _split_glob(os.path.normpath(pattern))
        return glob_tree(os.path.join(root, relative_base), glob)
    if pattern.endswith(("/", os.sep)) or os.path.isdir(path):
        return Tree(os.path.normpath(path), lambda _p: True)
    return os.path.normpath(path)


def glob_tree(directory: str, glob: str) -> Tree:
    """The files under ``directory`` that ``glob`` matches (relative; ``**`` spans directories).

    The same rules as a ``track`` glob, and as ``pathlib.Path.glob``: ``*.json``
    only directly inside ``directory``, ``**/*.mo`` at any depth.
    """
    base = os.path.normpath(directory)
    prefix = os.path.join(base, "")
    match = _glob_matcher(glob.replace(os.sep, "/"))

    def matches(path: str) -> bool:
        relative = path[len(prefix) :] if path.startswith(prefix) else os.path.relpath(path, base)
        return match(relative.split(os.sep))

    return Tree(base, matches)


def _split_glob(path: str) -> tuple[str, str]:
    parts = path.split(os.sep)
    first_magic = next(i for i, part in enumerate(parts) if _MAGIC.search(part))
    # The trailing "" keeps "/" for a glob at the filesystem root and "" for one at ``root``.
    return os.sep.join([*parts[:first_magic], ""]), "/".join(parts[first_magic:])


def _glob_matcher(glob: str) -> Callable[[list[str]], bool]:
    """A test of a relative path's segments against ``glob``, without backtracking.

    Each segment is matched as ``fnmatch`` does (``*`` and ``?`` never cross a
    ``/``); ``**`` is zero or more whole segments in the middle, one or more at
    the end. The segments run through the glob as through a small automaton,
    keeping the set of glob positions reached so far: the work is at most the
    path's segments times the glob's, however many ``**`` it holds.
    """
    parts: list[str] = []
    for part in glob.split("/"):
        if part != "**" or parts[-1:] != ["**"]:  # "**/**" is "**"
            parts.append(part)
    if parts[-1] == "**":
        parts[-1:] = ["*", "**"]  # at the end, at least one segment
    # None stands for "**".
    steps = [None if p == "**" else _segment_matcher(p) for p in parts]
    end = len(steps)
    # From each position, those reached without taking a segment (skipping a "**").
    reach = [frozenset({i, i + 1} if i < end and steps[i] is None else {i}) for i in range(end + 1)]

    def match(segments: list[str]) -> bool:
        states = reach[0]
        for segment in segments:
            after: set[int] = set()
            for i in states:
                if i == end:
                    continue
                step = steps[i]
                if step is None:
                    after |= reach[i]  # "**" takes the segment and stays
                elif step(segment):
                    after |= reach[i + 1]
            if not after:
                return False
            states = frozenset(after)
        return end in states

    return match


def _segment_matcher(part: str) -> Callable[[str], bool]:
    """One path segment, matched as ``fnmatch.fnmatchcase`` does."""
    if not _MAGIC.search(part):
        return part.__eq__
    match = re.compile(fnmatch.translate(part)).match
    return lambda segment: match(segment) is not None

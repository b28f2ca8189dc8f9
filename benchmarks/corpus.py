"""Generate importable module files, as an app's own code, and import them."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

#: Modules per package directory: one inotify watch covers this many files.
PER_PACKAGE = 50


class Corpus:
    """``count`` modules under ``root``/``name``, importable as ``name.pkgK.modI``."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.batches = 0
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
        package = root / name
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text("")

    def write(self, count: int, package_prefix: str = "pkg") -> list[str]:
        """Write ``count`` modules in packages of PER_PACKAGE; return their dotted names."""
        names = []
        for i in range(count):
            package = f"{package_prefix}{i // PER_PACKAGE}"
            directory = self.root / self.name / package
            if i % PER_PACKAGE == 0:
                directory.mkdir(exist_ok=True)
                (directory / "__init__.py").write_text("")
            (directory / f"mod{i}.py").write_text(
                f"VALUE = {i}\n\n\ndef value():\n    return VALUE\n"
            )
            names.append(f"{self.name}.{package}.mod{i}")
        importlib.invalidate_caches()
        return names

    def new_batch(self, count: int) -> list[str]:
        """Write ``count`` more modules in a package of their own (not imported yet)."""
        self.batches += 1
        return self.write(count, package_prefix=f"batch{self.batches}_")


def import_all(names: list[str]) -> list[str]:
    """Import the modules; return their source files (the floor's prebuilt list)."""
    files = []
    for name in names:
        module = importlib.import_module(name)
        assert module.__file__ is not None
        files.append(os.path.abspath(module.__file__))
    return files

"""Find the files behind imported modules, resolving only modules new since the last look."""

from __future__ import annotations

import importlib.util
import os
import site
import sys
import sysconfig
import zipimport
from types import ModuleType

from .patterns import IgnoreRules

#: reloadmw's own package directory.
_OWN_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ModuleFiles:
    """Yields the watchable file of each module that appears in ``sys.modules``.

    The standard library is never watched, nor reloadmw itself (an editable
    install would otherwise count as the app's own code; ``track`` it to watch
    it). Installed packages (site-packages) are watched only when
    ``site_packages`` is true; editable installs live in the project tree, not
    site-packages, so they count as the app's own code.
    """

    def __init__(self, site_packages: bool, ignored: IgnoreRules) -> None:
        self._ignored = ignored
        self._seen: set[str] = set()
        self._last: tuple[int, str | None] = (-1, None)  # size and newest name of sys.modules
        stdlib, installed = _install_prefixes()
        self._skip = stdlib if site_packages else stdlib + installed
        self._keep = installed if site_packages else ()
        self._own = _with_real({_OWN_PACKAGE})

    def new_files(self) -> list[str]:
        """Files of modules imported since the last call (cheap when none were)."""
        modules = sys.modules
        # Imports append to the dict: a swap (one removed, one imported) changes the newest name.
        try:
            last = (len(modules), next(reversed(modules), None))
        except RuntimeError:  # another thread imported between reversed() and next()
            last = (-1, None)
        if last == self._last:
            return []
        self._last = last
        found = []
        # A snapshot, as other threads import while we walk. Not list(items()): each
        # (name, module) tuple it makes can start the garbage collector, whose
        # finalizers can let another thread import mid-copy ("dictionary changed size
        # during iteration"). dict.copy() makes no object per entry.
        for name, module in modules.copy().items():
            if name in self._seen:
                continue
            self._seen.add(name)
            path = module_file(module)
            if path is not None:
                found.append(path)
        return self.wanted(found)

    def wanted(self, paths: list[str]) -> list[str]:
        """The ``paths`` to watch: not the standard library, nor reloadmw, nor ignored."""
        keep, skip, own = self._keep, self._skip, self._own
        return self._ignored.kept(
            [
                p
                for p in paths
                if not p.startswith(own)
                and ((keep and p.startswith(keep)) or not p.startswith(skip))
            ]
        )


def module_file(module: ModuleType | object) -> str | None:
    """The file to watch for ``module``: its source, extension or zip archive, or None."""
    # Read the module's own namespace: getattr() would load a lazy module (LazyLoader)
    # or run an odd object's __getattr__.
    try:
        namespace = object.__getattribute__(module, "__dict__")
    except AttributeError:
        return None
    loader = namespace.get("__loader__")
    if isinstance(loader, zipimport.zipimporter):
        return os.path.abspath(loader.archive)
    path = namespace.get("__file__")
    if not isinstance(path, str) or not os.path.isabs(path):
        return None  # builtins, frozen modules, namespace packages
    if path.endswith(".pyc") and "__pycache__" in path:
        try:
            return importlib.util.source_from_cache(path)
        except ValueError:
            return path
    return path


def _install_prefixes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(stdlib dirs, site-packages dirs), each with a trailing separator, also resolved."""
    stdlib: set[str] = set()
    installed = set(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        installed.add(site.getusersitepackages())
    for base in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        paths = sysconfig.get_paths(vars={"base": base, "platbase": base})
        stdlib.update((paths["stdlib"], paths["platstdlib"]))
        installed.update((paths["purelib"], paths["platlib"]))
    return _with_real(stdlib), _with_real(installed)


def _with_real(dirs: set[str]) -> tuple[str, ...]:
    out: set[str] = set()
    for d in dirs:
        out.add(os.path.join(os.path.abspath(d), ""))
        out.add(os.path.join(os.path.realpath(d), ""))
    return tuple(sorted(out))

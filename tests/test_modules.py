"""Which file is watched for each imported module, and which modules are skipped."""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import py_compile
import sys
import types
import zipfile
from pathlib import Path

import markupsafe._speedups
import pytest
import webtest

import reloadmw
import reloadmw.middleware
from reloadmw.watch.modules import ModuleFiles, module_file
from reloadmw.watch.patterns import DEFAULT_IGNORE, IgnoreRules
from tests.helpers import Sandbox, write


def module_files(site_packages: bool = False) -> ModuleFiles:
    return ModuleFiles(site_packages, IgnoreRules(DEFAULT_IGNORE))


# -- module_file -------------------------------------------------------------------


def test_source_module_is_watched_by_its_py_file(sandbox: Sandbox) -> None:
    source = write(sandbox.root / "rmw_plain.py", "A = 1\n")
    assert module_file(importlib.import_module("rmw_plain")) == str(source)


def test_package_is_watched_by_its_init_file(sandbox: Sandbox) -> None:
    init = write(sandbox.root / "rmw_pkg" / "__init__.py", "")
    assert module_file(importlib.import_module("rmw_pkg")) == str(init)


def test_module_loaded_from_pycache_is_watched_by_its_source(tmp_path: Path) -> None:
    source = tmp_path / "views.py"
    module = types.ModuleType("views")
    module.__file__ = importlib.util.cache_from_source(str(source))
    assert "__pycache__" in module.__file__
    assert module_file(module) == str(source)


def test_sourceless_pyc_is_watched_itself(sandbox: Sandbox) -> None:
    source = write(sandbox.root / "rmw_sourceless.py", "A = 1\n")
    compiled = sandbox.root / "rmw_sourceless.pyc"
    py_compile.compile(str(source), cfile=str(compiled), doraise=True)
    source.unlink()
    assert module_file(importlib.import_module("rmw_sourceless")) == str(compiled)


def test_extension_module_is_watched_by_its_shared_object() -> None:
    path = module_file(markupsafe._speedups)
    assert path is not None
    assert path.endswith(".so")
    assert Path(path).is_file()


def test_module_imported_from_a_zip_is_watched_by_the_archive(sandbox: Sandbox) -> None:
    archive = sandbox.root / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("rmw_zipped.py", "A = 1\n")
    sys.path.insert(0, str(archive))
    try:
        module = importlib.import_module("rmw_zipped")
    finally:
        sys.path.remove(str(archive))
    assert module_file(module) == str(archive)
    assert str(archive) in module_files().new_files()


def test_namespace_package_has_no_file(sandbox: Sandbox) -> None:
    (sandbox.root / "rmw_namespace").mkdir()
    write(sandbox.root / "rmw_namespace" / "inner.py", "")
    namespace = importlib.import_module("rmw_namespace")
    assert module_file(namespace) is None
    assert module_file(importlib.import_module("rmw_namespace.inner")) is not None


@pytest.mark.parametrize("name", ["sys", "builtins", "_imp"])
def test_builtin_module_has_no_file(name: str) -> None:
    assert module_file(sys.modules[name]) is None


def test_module_with_a_relative_file_has_no_file() -> None:
    module = types.ModuleType("odd")
    module.__file__ = "odd.py"
    assert module_file(module) is None


def test_lazy_module_is_watched_without_being_loaded(sandbox: Sandbox) -> None:
    source = write(
        sandbox.root / "rmw_lazy.py", "raise ImportError('optional dependency missing')\n"
    )
    spec = importlib.util.find_spec("rmw_lazy")
    assert spec is not None and spec.loader is not None
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["rmw_lazy"] = module
    spec.loader.exec_module(module)
    assert module_file(module) == str(source)
    assert str(source) in module_files().new_files()


# -- ModuleFiles: which modules are watched --------------------------------------------


def test_standard_library_is_never_watched() -> None:
    import _bz2  # an extension module in lib-dynload

    for site_packages in (False, True):
        found = module_files(site_packages).new_files()
        assert json.__file__ not in found
        assert _bz2.__file__ not in found
        assert not [p for p in found if p.startswith(sys.base_prefix + "/lib/python")]


def test_installed_packages_are_not_watched_by_default() -> None:
    found = module_files().new_files()
    assert webtest.__file__ not in found
    assert markupsafe._speedups.__file__ not in found


def test_installed_packages_are_watched_when_asked() -> None:
    found = module_files(site_packages=True).new_files()
    assert webtest.__file__ in found
    assert markupsafe._speedups.__file__ in found


def test_reloadmws_own_files_are_not_watched_even_from_an_editable_install() -> None:
    import tests.helpers  # the project tree, outside site-packages: the app's own code

    for site_packages in (False, True):
        found = module_files(site_packages).new_files()
        assert tests.helpers.__file__ in found
        assert reloadmw.middleware.__file__ not in found
        assert not [p for p in found if p.startswith(str(Path(reloadmw.__file__).parent))]


def test_ignored_module_files_are_not_watched(sandbox: Sandbox) -> None:
    write(sandbox.root / "rmw_skipped.py", "")
    importlib.import_module("rmw_skipped")
    found = ModuleFiles(False, IgnoreRules(["rmw_skip*"])).new_files()
    assert str(sandbox.root / "rmw_skipped.py") not in found


def test_only_modules_imported_since_the_last_look_are_returned(sandbox: Sandbox) -> None:
    modules = module_files()
    assert modules.new_files()
    assert modules.new_files() == []
    source = write(sandbox.root / "rmw_later.py", "")
    importlib.import_module("rmw_later")
    assert modules.new_files() == [str(source)]


def test_module_imported_while_another_is_removed_is_found(sandbox: Sandbox) -> None:
    write(sandbox.root / "rmw_gone.py", "")
    importlib.import_module("rmw_gone")
    modules = module_files()
    modules.new_files()
    del sys.modules["rmw_gone"]  # sys.modules keeps its size across the swap
    source = write(sandbox.root / "rmw_swapped_in.py", "")
    importlib.import_module("rmw_swapped_in")
    assert modules.new_files() == [str(source)]


def test_odd_object_in_sys_modules_does_not_hide_other_modules(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Exploding:
        def __getattr__(self, name: str) -> object:
            raise RuntimeError(f"no {name} here")

    modules = module_files()
    modules.new_files()
    monkeypatch.setitem(sys.modules, "rmw_exploding", Exploding())
    source = write(sandbox.root / "rmw_after.py", "")
    importlib.import_module("rmw_after")
    assert modules.new_files() == [str(source)]


def test_import_during_the_walk_over_sys_modules_causes_no_error(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deterministic stand-in for another thread importing in the middle of a scan.
    source = write(sandbox.root / "rmw_imported_mid_walk.py", "")

    class ImportsWhenInspected:
        @property
        def __dict__(self) -> dict[str, object]:  # type: ignore[override]
            importlib.import_module("rmw_imported_mid_walk")
            return {}

    modules = module_files()
    modules.new_files()
    monkeypatch.setitem(sys.modules, "rmw_inspected", ImportsWhenInspected())
    assert modules.new_files() == []
    assert modules.new_files() == [str(source)]


def test_an_import_a_garbage_collection_runs_mid_scan_is_no_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A collection can start at any allocation, and its callbacks and finalizers run
    # Python code: here, an import (another thread's, when the finalizer switches).
    files = module_files()
    imported: list[str] = []

    def import_during_a_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and len(imported) < 3:
            name = f"rmw_gc_import_{len(imported)}"
            imported.append(name)
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))

    threshold = gc.get_threshold()
    gc.callbacks.append(import_during_a_collection)
    gc.set_threshold(1)  # a collection at nearly every allocation
    try:
        files.new_files()
    finally:
        gc.set_threshold(*threshold)
        gc.callbacks.remove(import_during_a_collection)
    assert imported

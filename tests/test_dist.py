"""The release artifacts: built, checked, tagged right, and installable without a compiler.

``scripts/dist.py`` builds the sdist, the platform wheel, its manylinux repair
and the pure wheel, and runs ``twine check --strict`` (it exits non-zero when
any step fails). These tests run it once and then look at what it made; the
last one installs the sdist the way a user without a compiler would.
Marked ``dist``: about 30 s, part of ``make test``, not of the matrix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import reloadmw
from tests.helpers import REPO

pytestmark = pytest.mark.dist

BUILD_TIMEOUT = 600


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The directory ``scripts/dist.py`` built and checked every artifact into."""
    outdir = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "dist.py"), "--outdir", str(outdir)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "twine check --strict: PASSED" in done.stdout, done.stdout
    yield outdir


def names(outdir: Path) -> list[str]:
    return sorted(path.name for path in outdir.iterdir())


def test_dist_builds_an_sdist_a_platform_wheel_a_manylinux_wheel_and_a_pure_wheel(
    dist: Path,
) -> None:
    version = reloadmw.__version__
    tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    assert names(dist) == sorted(
        [
            f"reloadmw-{version}.tar.gz",
            f"reloadmw-{version}-{tag}-{tag}-linux_x86_64.whl",
            f"reloadmw-{version}-{tag}-{tag}-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
            f"reloadmw-{version}-py3-none-any.whl",
        ]
    ), "a new Python or glibc symbol may change the manylinux tag; read auditwheel's output"


def test_every_wheel_holds_every_subpackage_and_the_live_reload_script(dist: Path) -> None:
    packages = sorted(
        str(path.parent.relative_to(REPO)) + "/__init__.py"
        for path in (REPO / "reloadmw").rglob("__init__.py")
    )
    packages.append("reloadmw/live/client.js")  # package data: the live-reload script
    for wheel in dist.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            held = set(archive.namelist())
        assert [p for p in packages if p not in held] == [], wheel.name


def test_the_sdist_holds_the_c_source_and_the_whole_test_suite(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        held = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    wanted = ["reloadmw/_gate.c", "tests/helpers.py", "tests/conftest.py", "CHANGES.rst"]
    assert [name for name in wanted if name not in held] == []
    assert [name for name in held if name.endswith((".so", ".pyc"))] == []


def test_cibuildwheel_builds_every_supported_cpython_for_linux() -> None:
    """The configuration parses, and selects what CONTRIBUTING.rst says a release holds."""
    listed = subprocess.run(
        [str(Path(sys.executable).parent / "cibuildwheel"), "--print-build-identifiers",
         "--platform", "linux", str(REPO)],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    assert sorted(listed) == sorted(
        f"cp3{minor}-{libc}linux_{arch}"
        for minor in range(9, 15)
        for libc in ("many", "musl")
        for arch in ("x86_64", "aarch64")
    )


#: Run inside the fresh venv: the installed reloadmw serves one request.
REQUEST = """
import json, wsgiref.util
import reloadmw, reloadmw.gate

def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]

app = reloadmw.ReloadMiddleware(hello, interval=0)
environ = {}
wsgiref.util.setup_testing_defaults(environ)
statuses = []
body = b"".join(app(environ, lambda status, headers, exc_info=None: statuses.append(status)))
print(json.dumps({
    "gate": reloadmw.gate.IMPLEMENTATION,
    "file": reloadmw.__file__,
    "status": statuses,
    "body": body.decode(),
}))
"""


def test_the_sdist_installs_where_no_compiler_works_and_serves_through_the_python_gate(
    dist: Path, tmp_path: Path
) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("RELOADMW_", "PYTHON", "VIRTUAL_ENV"))
    }
    # CC and CXX name a "compiler" that always fails; no cache, so no wheel built
    # earlier (with a compiler) is reused, and never a wheel for reloadmw itself.
    env.update(CC="false", CXX="false", PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--no-binary", "reloadmw", "-v", str(sdist)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=BUILD_TIMEOUT,
    )
    assert install.returncode == 0, install.stdout[-6000:] + install.stderr[-6000:]
    # The build did try the C gate, with the broken compiler, and went on without it.
    log = install.stdout + install.stderr
    assert 'building extension "reloadmw._gate" failed' in log, log[-6000:]
    site = venv / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    assert sorted(p.name for p in (site / "reloadmw").glob("_gate*")) == ["_gate.pyi"]

    served = subprocess.run(
        [str(venv / "bin" / "python"), "-c", REQUEST],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert served.returncode == 0, served.stderr
    answer = json.loads(served.stdout)
    assert answer["file"] == str(site / "reloadmw" / "__init__.py")
    assert answer == {**answer, "gate": "python", "status": ["200 OK"], "body": "hello"}

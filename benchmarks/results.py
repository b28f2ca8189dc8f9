"""Keep what a benchmark run prints, and write it where the docs include it.

``benchmarks/run`` prints its table as it goes; :class:`Recorder` copies that
output, and :func:`write` saves it as reST: ``benchmarks/results/latest.rst``
(included by ``docs/performance.rst``) and a dated copy beside it, so that the
history of runs stays in the repository.
"""

from __future__ import annotations

import datetime
import io
import os
import platform
import sys
from typing import TextIO

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


class Recorder(io.TextIOBase):
    """A stdout that prints and also keeps everything printed."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self.out = out
        self.kept = io.StringIO()

    def write(self, text: str) -> int:
        self.out.write(text)
        return self.kept.write(text)

    def flush(self) -> None:
        self.out.flush()


def write(output: str, command: list[str], seconds: float, directory: str = RESULTS) -> str:
    """Write ``output`` as ``latest.rst`` and ``<UTC date and time>.rst``; return the latter."""
    now = datetime.datetime.now(datetime.timezone.utc)
    # Progress lines ("  N=1000 ...") say nothing once the run is over.
    kept = [line for line in output.splitlines() if not line.rstrip().endswith(" ...")]
    body = "\n".join(f"   {line}".rstrip() for line in kept).strip("\n")
    text = (
        f"Run on {now:%Y-%m-%d %H:%M} UTC ({platform.platform()}, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} CPUs), by ``{' '.join(command)}``; "
        f"it took {seconds / 60:.0f} min {seconds % 60:.0f} s.\n\n"
        f".. code-block:: text\n\n{body}\n"
    )
    os.makedirs(directory, exist_ok=True)
    dated = os.path.join(directory, f"{now:%Y-%m-%d-%H%M}.rst")
    for path in (dated, os.path.join(directory, "latest.rst")):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return dated

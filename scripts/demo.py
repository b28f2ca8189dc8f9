"""Serve examples/hello under Apache + mod_wsgi daemon mode, with live reload, until Ctrl-C.

Run through ``make demo`` (``PORT=8080 make demo`` picks the port). It uses
the test rig's ApacheServer, so the demo runs exactly what the tests run.
examples/hello/hello.wsgi turns ``live_reload`` on: the open page follows
each save by itself, and shows a save that does not compile.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.rig import ApacheServer  # noqa: E402

HELLO = REPO / "examples" / "hello"


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def follow(path: Path) -> None:
    """Echo what the app writes to stderr (reloadmw's log, tracebacks) as it comes.

    mod_wsgi puts a daemon's stderr in the error log as ``[wsgi:error]`` lines.
    """
    with path.open(errors="replace") as log:
        while True:
            line = log.readline()
            if not line:
                time.sleep(0.2)
            elif "[wsgi:error]" in line:
                print(line.rstrip().rpartition("] ")[2], flush=True)


def main() -> int:
    port = int(os.environ["PORT"]) if os.environ.get("PORT") else None
    server = ApacheServer(HELLO / "hello.wsgi", port)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    server.start()
    try:
        server.wait_ready()
        print(
            f"\nreloadmw demo: Apache + mod_wsgi daemon mode (2 processes x 4 threads), "
            f"live reload on\n"
            f"  open      {server.url}\n"
            f"  then      edit examples/hello/greeting.py and watch the page change\n"
            f"            ({HELLO / 'greeting.py'}: change TEXT and save; no click needed.\n"
            f"            A syntax error shows on the page, and so does a broken import)\n"
            f"  error log {server.error_log}\n"
            f"Press Ctrl-C to stop. The app's log follows:\n",
            flush=True,
        )
        follow(server.error_log)
    except KeyboardInterrupt:
        print("\nstopping Apache ...", flush=True)
    finally:
        server.stop()
    print("Apache stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

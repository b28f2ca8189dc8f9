"""Command line: ``python -m reloadmw hash-password``.

The password is read from a prompt without echo (or from stdin when stdin is
not a terminal), never from the command line, where ``ps`` and the shell
history would show it. The hash goes to stdout, ready for ``password=``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from .endpoint.passwords import DEFAULT_ITERATIONS, MIN_ITERATIONS, hash_password


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reloadmw", description="reloadmw command line")
    commands = parser.add_subparsers(dest="command", required=True)
    hashing = commands.add_parser(
        "hash-password",
        help="read a password (prompt or stdin) and print its hash for password=",
    )
    hashing.add_argument(
        "--iterations",
        type=int,
        default=DEFAULT_ITERATIONS,
        help=f"PBKDF2 iterations (default {DEFAULT_ITERATIONS}; below {MIN_ITERATIONS} warns)",
    )
    args = parser.parse_args(argv)
    if args.iterations < MIN_ITERATIONS:
        print(
            f"reloadmw: warning: --iterations {args.iterations} is below {MIN_ITERATIONS:,}: "
            f"a leaked hash would be cheap to crack. The default is {DEFAULT_ITERATIONS:,}.",
            file=sys.stderr,
        )
    try:
        password = _read_password()
        print(hash_password(password, iterations=args.iterations))
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        print("reloadmw: no password given", file=sys.stderr)
        return 1
    return 0


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise ValueError("reloadmw: the two passwords differ; nothing was hashed")
        return password
    # One line from a pipe or a file; only its line ending is not part of it.
    return sys.stdin.readline().rstrip("\r\n")


if __name__ == "__main__":
    sys.exit(main())

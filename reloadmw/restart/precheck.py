"""Before a restart: do not restart into a ``.py`` file that does not compile."""

from __future__ import annotations


def syntax_error(path: str) -> str | None:
    """Describe the syntax error in ``path`` (``file:line: message``), or None if it compiles.

    A file that cannot be read is not a syntax error: its absence is a change
    like any other and the restart goes ahead.
    """
    try:
        with open(path, "rb") as f:
            source = f.read()
        compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:  # includes IndentationError and TabError
        return f"{path}:{exc.lineno}: {exc.msg}"
    except (OSError, ValueError):
        return None
    return None

"""reloadmw: restart a WSGI app's process when its source changes, inside the real server."""

from .middleware import ReloadMiddleware

# The one place the version is written: pyproject.toml reads it (dynamic metadata).
__version__ = "0.1.0"

__all__ = ["ReloadMiddleware"]

"""reloadmw: restart a WSGI app's process when its source changes, inside the real server."""

from .middleware import ReloadMiddleware

__all__ = ["ReloadMiddleware"]

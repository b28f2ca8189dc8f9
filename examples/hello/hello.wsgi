# WSGI script for Apache + mod_wsgi daemon mode; `make demo` serves it.
# Edit greeting.py and save: the open page reloads itself with the new text.
import logging

from reloadmw import ReloadMiddleware

# Send reloadmw's INFO lines ("change detected in ...") to the Apache error log.
logging.basicConfig(level=logging.INFO, format="%(message)s")

# The import string: a save that breaks the import answers reloadmw's 500 page,
# with the error, instead of failing the script; the next good save restarts.
application = ReloadMiddleware("hello_app:application", interval=0.5, live_reload=True)
# mod_wsgi calls this before each request: after an edit it restarts the daemon
# process first, so the first response already shows the new code.
reload_required = application.reload_required

"""Build the optional C request gate; all other metadata is in pyproject.toml.

The extension is optional: where it cannot be compiled (no compiler, no Python
headers) the install still succeeds and reloadmw uses the pure-Python gate.
Set RELOADMW_NO_EXTENSIONS=1 to build a pure-Python wheel on purpose.
"""

import os
import sys
import sysconfig

from setuptools import Extension, setup

ext_modules = []
# Only where time.monotonic() reads clock_gettime(), the clock _gate.c reads:
# not Windows or macOS; not PyPy, whose JIT runs the Python gate faster; and
# not free-threaded CPython, for which _gate.c is not written.
if (
    sys.implementation.name == "cpython"
    and sys.platform not in ("win32", "cygwin", "darwin")
    and not sysconfig.get_config_var("Py_GIL_DISABLED")
    and os.environ.get("RELOADMW_NO_EXTENSIONS", "") in ("", "0")
):
    ext_modules.append(Extension("reloadmw._gate", ["reloadmw/_gate.c"], optional=True))

setup(ext_modules=ext_modules)

"""Change detection: which files are watched, and how a change in one is found.

:mod:`~reloadmw.watch.monitor` holds the ``Monitor`` contract and the choice of
backend; :mod:`~reloadmw.watch.stat` and :mod:`~reloadmw.watch.inotify` are the
backends, siblings over the :mod:`~reloadmw.watch.stamps` table. The files come
from :mod:`~reloadmw.watch.modules` (imported modules) and
:mod:`~reloadmw.watch.patterns` (``track`` and ``ignore``);
:mod:`~reloadmw.watch.start_time` says when the process started.
"""

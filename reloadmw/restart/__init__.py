"""Restarting: one strategy module per server family, and one owner of the restart state.

:mod:`~reloadmw.restart.registry` names every strategy and chooses one for the
server at hand; :mod:`~reloadmw.restart.restarter` claims, fires and counts
restarts; :mod:`~reloadmw.restart.precheck` and :mod:`~reloadmw.restart.bytecode`
run before a restart.
"""

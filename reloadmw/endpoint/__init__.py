"""The password-protected ``/__reload__`` endpoint.

:mod:`~reloadmw.endpoint.options` checks the options without WebOb;
:mod:`~reloadmw.endpoint.router` (which needs WebOb) answers the endpoint,
with :mod:`~reloadmw.endpoint.credentials`, :mod:`~reloadmw.endpoint.passwords`,
:mod:`~reloadmw.endpoint.ratelimit` and the group :mod:`~reloadmw.endpoint.marker`.
"""

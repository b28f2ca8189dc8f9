"""Live reload: the open page reloads itself once new code serves, and shows broken saves.

With ``ReloadMiddleware(app, live_reload=True)`` the middleware puts one
``<script>`` tag into each HTML page (:mod:`.inject`). The script asks the
middleware about once a second whether the code that rendered the page is
still current (:mod:`.answer`, :mod:`.version`); those requests run the
middleware's usual check, so they are what restarts the process after a
save. While a saved file does not compile, the page shows an overlay with
the error; while the app fails to load, its 500 page carries the script.

Nothing here imports the middleware or the endpoint: the middleware hands
:class:`~reloadmw.live.wrapper.LiveReload` the state it reads.
"""

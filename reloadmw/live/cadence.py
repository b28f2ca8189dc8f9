"""When a page polls next: about once a second, and under mod_wsgi on Apache's beat.

Apache's parent process looks for dead daemon processes once a second
(``ap_wait_or_timeout``: ``waitpid(WNOHANG)``, then ``apr_sleep(1 s)``) and
only then starts new ones. A daemon that exits just after such a pass waits
up to a second for its successor, with the page's poll waiting in the
daemon socket's queue. A daemon process is forked in one of those passes,
so its own start time gives their phase: the poll is timed to reach the
daemon :data:`AHEAD` seconds before a pass, so that a restart it triggers
(mod_wsgi's ``reload_required``) has exited by the pass, which respawns it
at once.
"""

from __future__ import annotations

from collections.abc import Mapping

#: Milliseconds between two polls of one page, where no server beat is known.
PERIOD_MS = 1000
#: Seconds before Apache's parent pass that a poll should arrive.
AHEAD = 0.15
#: Apache's parent pass period, in seconds.
BEAT = 1.0


def next_poll_ms(
    environ: Mapping[str, object], start_ns: int, now_ns: int, settling: float | None = None
) -> int:
    """Milliseconds until the page should poll again: 0.5 to 1.5 s, one second on average.

    ``settling``: seconds until a save has been quiet for ``quiet``; then the
    next poll comes as soon as it has (on Apache's beat: the first after it).
    """
    soonest = BEAT / 2 if settling is None else settling + 0.05
    if not environ.get("mod_wsgi.process_group"):
        return PERIOD_MS if settling is None else round(soonest * 1000)
    since_pass = (now_ns - start_ns) / 1e9 % BEAT
    wait = (BEAT - AHEAD - since_pass) % BEAT
    while wait < soonest:
        wait += BEAT
    return round(wait * 1000)

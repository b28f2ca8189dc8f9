"""Who may use the endpoint: the checks a request passes, in order, before it is answered.

403 (``allow_from``, ``require_https``, ``allow_hosts``, a cross-site
``POST``), 429 (too many failed passwords from the address), 405, 413,
415, 400 (a body that could not be read), then the password: 401 unless it
is right. The attempt is counted before the password is checked (the check
costs a key derivation of 0.2 s or more), so concurrent guesses cannot pass
the limit together; a right password gives it back.
"""

from __future__ import annotations

from webob import Request

from ..logs import log
from .credentials import CHALLENGE, MAX_BODY, Refused, content_length, password_sent
from .options import EndpointOptions, IPAddress, rate_key
from .origin import cross_site_refusal, host_refusal
from .ratelimit import FailureLimiter
from .statedir import StateDirError, described

ALLOW = "GET, POST"


def admit(
    request: Request, client: IPAddress | None, options: EndpointOptions, limiter: FailureLimiter
) -> None:
    """Raise Refused unless the request may use the endpoint and carries the right password."""
    if not options.allows(client):
        raise Refused(403, "client address not in allow_from")
    if not options.secure_enough(request.scheme, client):
        raise Refused(403, "plain http from a non-loopback client and require_https=True")
    refusal = host_refusal(request.environ, options.allow_hosts)
    if not refusal and request.method == "POST":
        refusal = cross_site_refusal(request.environ, options.allow_hosts)
    if refusal:
        raise Refused(403, refusal)
    key = rate_key(client)
    try:
        _check_password(request, key, options, limiter)
    except (StateDirError, OSError) as error:
        raise Refused(503, f"cannot keep count of failed passwords: {described(error)}") from None


def _check_password(
    request: Request, key: str, options: EndpointOptions, limiter: FailureLimiter
) -> None:
    retry_after = limiter.retry_after(key)
    if retry_after is not None:
        raise Refused(429, "too many failed passwords", [("Retry-After", str(retry_after))])
    if request.method not in ("GET", "POST"):
        raise Refused(405, "method not allowed", [("Allow", ALLOW)])
    length = content_length(request)
    if length is not None and length > MAX_BODY:
        raise Refused(413, f"body of {length} bytes is over {MAX_BODY}")
    candidate, problem = password_sent(request, length)
    attempt = limiter.reserve(key)  # counted now, as a failure, until it proves right
    if attempt.retry_after is not None:
        raise Refused(429, "too many failed passwords", [("Retry-After", str(attempt.retry_after))])
    if options.checker.verify(candidate):
        limiter.forget(key)
        return
    if attempt.last:  # one line per lockout, whichever process and thread made it
        log.warning(
            "%d failed passwords from %s within %gs; refusing it (429) for %gs",
            limiter.limit,
            key,
            limiter.window,
            limiter.window,
        )
    raise Refused(401, problem, [CHALLENGE])

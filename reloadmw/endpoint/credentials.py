"""Reading the password a request to the endpoint carries, and the endpoint's refusals.

The password comes with HTTP Basic (any user name) or as the one field
``password`` of an ``application/x-www-form-urlencoded`` POST body. WebOb
gives the method, the content type, the ``Authorization`` header and the
body stream; the declared length and the Basic token are checked here more
strictly than WebOb does (it takes ``Content-Length: -5`` as a number, and
only ``Basic`` spelled so as the scheme).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from urllib.parse import parse_qsl

from webob import Request, Response
from webob.exc import status_map

MAX_BODY = 8192
MAX_AUTHORIZATION = 4096
FORM_TYPE = "application/x-www-form-urlencoded"
#: The 401 challenge; RFC 7617's charset says the Basic credentials are UTF-8.
CHALLENGE = ("WWW-Authenticate", 'Basic realm="reloadmw", charset="UTF-8"')

_PUBLIC_REASONS = {
    400: "the request body could not be read",
    401: "a valid password is required",
    403: "forbidden",
    405: "method not allowed; use GET or POST",
    413: f"request body over {MAX_BODY} bytes",
    415: f"send the password with HTTP Basic or in a {FORM_TYPE} body",
    429: "too many failed passwords; retry later",
    503: "the endpoint cannot use its state directory; see the server log",
}


class Refused(Exception):
    """A request the endpoint turns down: its status, the log reason, extra headers."""

    def __init__(self, status: int, reason: str, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers

    def answer(self) -> Response:
        """The error answer: a short public reason, never the logged one."""
        return json_answer(
            self.status, {"error": _PUBLIC_REASONS.get(self.status, "refused")}, self.headers
        )


def json_answer(status: int, body: object, headers: Sequence[tuple[str, str]] = ()) -> Response:
    """A JSON answer that no cache keeps; error statuses are ``webob.exc`` responses."""
    error = status_map.get(status) if status >= 400 else None
    response: Response = (
        error(json_body=body) if error is not None else Response(status=status, json_body=body)
    )
    response.cache_control = "no-store"
    for name, value in headers:
        response.headers[name] = value
    return response


def content_length(request: Request) -> int | None:
    """The declared body length; None when absent or not a number (the body is then unknown)."""
    value = str(request.environ.get("CONTENT_LENGTH") or "").strip()
    if not (value.isdecimal() and value.isascii()):
        return None
    return int(value) if len(value) < 19 else MAX_BODY + 1  # int() refuses 4300+ digits


def password_sent(request: Request, length: int | None) -> tuple[str | None, str]:
    """The password sent (None if none), and what is wrong if it is not the right one."""
    header = request.environ.get("HTTP_AUTHORIZATION")
    if request.method == "POST":
        body = _read_body(request, length)
        if header is None:
            media_type = (request.content_type or "").strip().lower()
            if body and media_type != FORM_TYPE:
                raise Refused(415, f"form post that is not {FORM_TYPE}")
            return _form_password(body)
    if header is None:
        return None, "no password"
    return _basic_password(request)


def _read_body(request: Request, length: int | None) -> bytes:
    """Read at most ``MAX_BODY`` bytes; 413 as soon as a chunked body goes past it, 400 if cut."""
    stream = request.body_file_raw
    if stream is None or (length is None and not request.environ.get("wsgi.input_terminated")):
        return b""  # WSGI: without a length the input may not be read
    wanted = MAX_BODY + 1 if length is None else length
    chunks: list[bytes] = []
    received = 0
    while received < wanted:
        try:
            chunk = stream.read(wanted - received)
        except OSError as error:  # mod_wsgi's when the client goes away mid-upload
            raise Refused(400, f"reading the request body failed ({error})") from None
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    if received > MAX_BODY:
        raise Refused(413, f"chunked body over {MAX_BODY} bytes")
    return b"".join(chunks)


def _form_password(body: bytes) -> tuple[str | None, str]:
    try:
        fields = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, errors="strict", max_num_fields=32
        )
    except (UnicodeDecodeError, ValueError):
        return None, "malformed form body"
    passwords = [value for name, value in fields if name == "password"]
    if len(passwords) != 1:
        return None, "no password" if not passwords else "several password fields"
    return passwords[0], "wrong password"


def _basic_password(request: Request) -> tuple[str | None, str]:
    if len(request.environ["HTTP_AUTHORIZATION"]) > MAX_AUTHORIZATION:
        return None, f"Authorization header over {MAX_AUTHORIZATION} characters"
    authorization = request.authorization
    if authorization is None:
        return None, "no password"
    scheme, token = authorization
    if scheme.lower() != "basic" or not isinstance(token, str):
        return None, "Authorization header is not Basic"
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None, "Authorization header is not base64 of UTF-8 text"
    _, colon, password = decoded.partition(":")
    if not colon:
        return None, "Authorization header has no ':' between user and password"
    return password, "wrong password"

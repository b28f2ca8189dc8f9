"""Password hashes for the ``/__reload__`` endpoint.

A hash looks like ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (PBKDF2-HMAC-SHA256
from :mod:`hashlib`, salt and hash in URL-safe base64 without padding); make one
with ``python -m reloadmw hash-password``. :class:`PasswordChecker` compares a
candidate with :func:`hmac.compare_digest` after one key derivation, so right,
wrong and missing passwords cost the same.

A configured value with a ``$`` in it must be such a hash: one that does not
parse (quotes or spaces kept from an ini file, another spelling or algorithm)
raises ValueError instead of quietly becoming a plain-text password. Passwords
are compared in Unicode NFC, as RFC 7613 (OpaqueString) asks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import unicodedata

from ..logs import log

ALGORITHM = "pbkdf2_sha256"
#: OWASP's 2023 figure for PBKDF2-HMAC-SHA256; about 0.2 s per check here.
DEFAULT_ITERATIONS = 600_000
#: Refuse hashes that would make every check take minutes.
MAX_ITERATIONS = 10_000_000
#: ``hash-password`` warns below this: a leaked hash would be cheap to crack.
MIN_ITERATIONS = 100_000
#: A plaintext password sits in the configuration anyway: stretching it only
#: keeps one code path and a constant cost.
PLAINTEXT_ITERATIONS = 10_000
SALT_BYTES = 16
_HASH_BYTES = 32
_FIELD = re.compile(r"[A-Za-z0-9_-]+")
_FIX = "make a new one with: python -m reloadmw hash-password"


def hash_password(
    password: str, *, iterations: int = DEFAULT_ITERATIONS, salt: bytes | None = None
) -> str:
    """Return ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` for ``password``."""
    _check_password(password)
    if isinstance(iterations, bool) or not isinstance(iterations, int):
        raise ValueError(f"reloadmw: iterations={iterations!r} is not an integer")
    if not 1 <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"reloadmw: iterations={iterations} must be from 1 to {MAX_ITERATIONS}")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    derived = _derive(_utf8(password), salt, iterations)
    return f"{ALGORITHM}${iterations}${_b64(salt)}${_b64(derived)}"


class PasswordChecker:
    """Check candidates against a hash or, with a warning, a plaintext password."""

    def __init__(self, password: str) -> None:
        _check_password(password)
        if "$" in password:  # a hash, or an error: never a plain-text password
            self._iterations, self._salt, self._expected = _parse(password)
        else:
            log.warning(
                "the endpoint password is given in plain text; store a "
                "hash instead, made with: python -m reloadmw hash-password",
            )
            self._iterations = PLAINTEXT_ITERATIONS
            self._salt = os.urandom(SALT_BYTES)
            self._expected = _derive(_utf8(password), self._salt, self._iterations)

    def verify(self, candidate: str | None) -> bool:
        """True if ``candidate`` is the password; None (no password sent) is wrong.

        The key derivation runs whatever the candidate, so the answer takes the
        same time for a right, a wrong and a missing password.
        """
        given = _utf8(candidate) if candidate is not None else b""
        derived = _derive(given, self._salt, self._iterations)
        return hmac.compare_digest(derived, self._expected) and candidate is not None


def _check_password(password: object) -> None:
    if not isinstance(password, str):
        raise ValueError(
            f"reloadmw: password must be a string (a hash from python -m reloadmw "
            f"hash-password), not {type(password).__name__}"
        )
    if not password.strip():
        raise ValueError(
            "reloadmw: password is empty; pass a hash made with: python -m reloadmw hash-password"
        )


def _utf8(password: str) -> bytes:
    return unicodedata.normalize("NFC", password).encode("utf-8")


def _parse(value: str) -> tuple[int, bytes, bytes]:
    # The value is a secret: messages name the faulty field, never the value.
    fields = value.split("$")
    if fields[0] != ALGORITHM or value != value.strip():
        raise ValueError(
            f"reloadmw: password has a '$' in it, so it must be a {ALGORITHM} hash, but "
            f"{_near_miss(value)}; {_FIX} (a plain-text password may not contain '$')"
        )
    if len(fields) != 4:
        raise ValueError(
            f"reloadmw: password looks like a {ALGORITHM} hash but has {len(fields)} "
            f"'$'-separated fields instead of 4; {_FIX}"
        )
    _, iterations, salt, derived = fields
    if not iterations.isdecimal() or not 1 <= int(iterations) <= MAX_ITERATIONS:
        raise ValueError(
            f"reloadmw: the iterations field of the password hash must be a number between "
            f"1 and {MAX_ITERATIONS}; {_FIX}"
        )
    decoded = [_unb64(name, text) for name, text in (("salt", salt), ("hash", derived))]
    if len(decoded[1]) != _HASH_BYTES:
        raise ValueError(
            f"reloadmw: the hash field of the password hash is not {_HASH_BYTES} bytes; {_FIX}"
        )
    return int(iterations), decoded[0], decoded[1]


def _near_miss(value: str) -> str:
    """What keeps ``value`` from being a hash, said without any of its text."""
    if value != value.strip():
        return "it has spaces or a line break around it: remove them"
    if value[0] in "\"'" and value[-1] == value[0]:
        return "it is in quotes (an ini file keeps them): remove them"
    algorithm = value.split("$", 1)[0]
    if algorithm.lower().replace("-", "_") == ALGORITHM:
        return f"its algorithm is spelled another way: write {ALGORITHM} exactly"
    if algorithm.lower().startswith("pbkdf2"):
        return f"its algorithm is not {ALGORITHM}, the only algorithm known"
    return f"the text before its first '$' is not {ALGORITHM}"


def _derive(password: bytes, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password, salt, iterations)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(name: str, text: str) -> bytes:
    error = f"reloadmw: the {name} field of the password hash is not URL-safe base64; {_FIX}"
    if not _FIELD.fullmatch(text):
        raise ValueError(error)
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError(error) from None

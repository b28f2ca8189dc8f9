"""Password hashes and ``python -m reloadmw hash-password``."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reloadmw import __main__ as cli
from reloadmw.endpoint.passwords import (
    DEFAULT_ITERATIONS,
    MIN_ITERATIONS,
    PasswordChecker,
    hash_password,
)
from tests.helpers import counting_derivations

ROOT = Path(__file__).resolve().parent.parent
FAST = 1000  # iterations for tests; the default costs about 0.2 s per check


def test_hash_has_algorithm_iterations_salt_and_hash_fields() -> None:
    algorithm, iterations, salt, derived = hash_password("s3cret", iterations=FAST).split("$")

    assert (algorithm, iterations) == ("pbkdf2_sha256", str(FAST))
    assert len(salt) == 22 and len(derived) == 43  # 16 and 32 bytes of unpadded base64


def test_default_hash_uses_600000_iterations() -> None:
    assert hash_password("s3cret").split("$")[1] == "600000"


def test_same_password_hashes_differently_each_time() -> None:
    assert hash_password("s3cret", iterations=FAST) != hash_password("s3cret", iterations=FAST)


def test_checker_accepts_only_the_hashed_password() -> None:
    checker = PasswordChecker(hash_password("s3cret", iterations=FAST))

    assert checker.verify("s3cret")
    assert not checker.verify("s3cret ")
    assert not checker.verify("S3cret")
    assert not checker.verify("")
    assert not checker.verify(None)


def test_non_ascii_passwords_round_trip() -> None:
    assert PasswordChecker(hash_password("pässwörd✓", iterations=FAST)).verify("pässwörd✓")


def test_verify_derives_once_with_the_same_cost_for_right_wrong_and_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checker = PasswordChecker(hash_password("s3cret", iterations=FAST))
    calls = counting_derivations(monkeypatch)
    for candidate in ("s3cret", "wrong", "x" * 10_000, "", None):
        checker.verify(candidate)

    assert len(calls) == 5
    assert len(set(calls)) == 1


def test_plaintext_password_works_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="reloadmw"):
        checker = PasswordChecker("plain-secret")
        checker.verify("plain-secret")
        checker.verify("other")

    assert checker.verify("plain-secret")
    assert not checker.verify("plain-secret!")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "hash-password" in warnings[0].getMessage()
    assert "plain-secret" not in caplog.text


@pytest.mark.parametrize("password", ["", "   ", "\n"])
def test_empty_password_is_refused(password: str) -> None:
    with pytest.raises(ValueError, match="password is empty"):
        PasswordChecker(password)


@pytest.mark.parametrize("password", [None, b"bytes", 123])
def test_non_string_password_is_refused(password: object) -> None:
    with pytest.raises(ValueError, match="password must be a string"):
        PasswordChecker(password)  # type: ignore[arg-type]


GOOD = hash_password("s3cret", iterations=FAST)
_, _, GOOD_SALT, GOOD_HASH = GOOD.split("$")


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ("pbkdf2_sha256$1000$abc", "fields"),
        (f"pbkdf2_sha256$x$${GOOD_SALT}${GOOD_HASH}", "fields"),
        (f"pbkdf2_sha256$abc${GOOD_SALT}${GOOD_HASH}", "iterations"),
        (f"pbkdf2_sha256$0${GOOD_SALT}${GOOD_HASH}", "iterations"),
        (f"pbkdf2_sha256$-5${GOOD_SALT}${GOOD_HASH}", "iterations"),
        (f"pbkdf2_sha256$99999999999${GOOD_SALT}${GOOD_HASH}", "iterations"),
        (f"pbkdf2_sha256$1000$not base64!${GOOD_HASH}", "salt"),
        (f"pbkdf2_sha256$1000$${GOOD_HASH}", "salt"),
        (f"pbkdf2_sha256$1000${GOOD_SALT}$AAAA", "hash field"),
        (f"pbkdf2_sha256$1000${GOOD_SALT}${GOOD_HASH}=", "hash field"),
    ],
)
def test_malformed_hash_is_refused_without_echoing_it(value: str, field: str) -> None:
    with pytest.raises(ValueError, match=field) as error:
        PasswordChecker(value)

    assert GOOD_SALT not in str(error.value)
    assert GOOD_HASH not in str(error.value)
    assert "hash-password" in str(error.value)


@pytest.mark.parametrize("iterations", [0, -1, 10**8, True, 1.5])
def test_hash_password_refuses_bad_iterations(iterations: int) -> None:
    with pytest.raises(ValueError, match="iterations"):
        hash_password("s3cret", iterations=iterations)


# -- the command line ---------------------------------------------------------


def run_cli(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reloadmw", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_cli_reads_the_password_from_stdin_and_prints_a_hash() -> None:
    result = run_cli("hash-password", "--iterations", str(FAST), stdin="s3cret\n")

    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()
    assert printed.startswith(f"pbkdf2_sha256${FAST}$")
    assert PasswordChecker(printed).verify("s3cret")
    assert "s3cret" not in result.stdout + result.stderr


def test_cli_never_takes_the_password_from_argv() -> None:
    result = run_cli("hash-password", "s3cret", stdin="")

    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr
    assert not result.stdout


def test_cli_refuses_an_empty_password() -> None:
    result = run_cli("hash-password", stdin="\n")

    assert result.returncode == 2
    assert "password is empty" in result.stderr
    assert not result.stdout


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_prompts_twice_without_echo_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts: list[str] = []

    def getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return "s3cret"

    monkeypatch.setattr(sys, "stdin", FakeTty())
    monkeypatch.setattr("getpass.getpass", getpass)

    assert cli.main(["hash-password", "--iterations", str(FAST)]) == 0
    assert prompts == ["Password: ", "Again: "]
    assert PasswordChecker(capsys.readouterr().out.strip()).verify("s3cret")


def test_cli_refuses_two_different_passwords_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = iter(["s3cret", "s3cert"])
    monkeypatch.setattr(sys, "stdin", FakeTty())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))

    assert cli.main(["hash-password"]) == 2
    captured = capsys.readouterr()
    assert "differ" in captured.err
    assert not captured.out


# -- near misses: anything with a '$' is a hash or an error (issue 13, defect 5) --------


@pytest.mark.parametrize(
    ("value", "said"),
    [
        (" " + GOOD, "spaces or a line break around it"),
        (GOOD + "\n", "spaces or a line break around it"),
        (f'"{GOOD}"', "in quotes"),
        (f"'{GOOD}'", "in quotes"),
        ("PBKDF2_SHA256" + GOOD[len("pbkdf2_sha256") :], "spelled"),
        ("pbkdf2-sha256" + GOOD[len("pbkdf2_sha256") :], "spelled"),
        ("pbkdf2_sha512" + GOOD[len("pbkdf2_sha256") :], "only algorithm"),
        ("hunter$2", "may not contain '$'"),
    ],
    ids=["leading-space", "trailing-newline", "double-quotes", "single-quotes", "upper-case",
         "dash", "sha512", "plain-with-dollar"],
)  # fmt: skip
def test_a_near_miss_hash_raises_at_start_instead_of_becoming_the_password(
    value: str, said: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(said)) as error:
        PasswordChecker(value)

    message = str(error.value)
    assert "hash-password" in message
    for secret in (GOOD_SALT, GOOD_HASH, "hunter"):
        assert secret not in message


def test_only_text_without_a_dollar_is_a_plain_text_password() -> None:
    assert PasswordChecker("no dollar here").verify("no dollar here")


# -- Unicode: passwords are compared in NFC (RFC 7613's OpaqueString) -----------------

NFC = "caf\u00e9"  # é as one code point
NFD = "cafe\u0301"  # e and a combining acute accent


@pytest.mark.parametrize(("hashed", "sent"), [(NFC, NFD), (NFD, NFC), (NFD, NFD)])
def test_passwords_are_compared_after_nfc_normalisation(hashed: str, sent: str) -> None:
    assert PasswordChecker(hash_password(hashed, iterations=FAST)).verify(sent)
    assert PasswordChecker(hashed).verify(sent)  # plain text too


def test_cli_warns_below_the_iterations_floor_and_still_prints_the_hash() -> None:
    result = run_cli("hash-password", "--iterations", "1", stdin="s3cret\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pbkdf2_sha256$1$")
    assert f"below {MIN_ITERATIONS:,}" in result.stderr
    assert f"default is {DEFAULT_ITERATIONS:,}" in result.stderr


def test_cli_is_quiet_at_or_above_the_floor() -> None:
    result = run_cli("hash-password", "--iterations", str(MIN_ITERATIONS), stdin="s3cret\n")

    assert result.returncode == 0 and result.stderr == ""

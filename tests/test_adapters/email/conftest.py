"""Fixtures of the email channel's tests: a private Dovecot (one per session, a fresh IMAP
user per test) and an SMTP server that collects what the gateway sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dovecot import NOT_FOUND, Dovecot, find_dovecot
from mailserver import SmtpSink


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[Dovecot]:
    if find_dovecot() is None:
        pytest.skip(NOT_FOUND)
    server = Dovecot().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def imap_user(dovecot_server: Dovecot) -> tuple[str, str]:
    """A mailbox of this test's own on the session's Dovecot: (user, password)."""
    return dovecot_server.add_user()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()

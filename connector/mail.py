"""Sending email: every message the connector sends goes through `send_safe_mail`.

Subjects are built from names people typed (a workspace's name), and a newline in a
header makes Django raise BadHeaderError, so the message would be lost; worse, a
header value is no place for anything that looks like another header. A subject is
therefore made one line first. Sending blocks the caller, so the server gets a
timeout even when EMAIL_TIMEOUT is not set.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.mail import get_connection, send_mail

# Whitespace of every kind (\r, \n, \t, U+2028 ...) and the C0 and C1 control characters.
_NOT_ONE_LINE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")
DEFAULT_TIMEOUT_S = 30


def clean_subject(subject: str) -> str:
    """The subject on one line: each run of whitespace or control characters becomes
    one space, and the ends are trimmed."""
    return _NOT_ONE_LINE.sub(" ", subject).strip()


def send_safe_mail(*, subject: str, body: str, to: list[str]) -> int:
    """Send one plain-text message; raises what the backend raises (smtplib errors
    are OSErrors: callers that retry catch those). Returns the number sent."""
    connection = get_connection(timeout=settings.EMAIL_TIMEOUT or DEFAULT_TIMEOUT_S)
    return send_mail(
        clean_subject(subject),
        body,
        settings.DEFAULT_FROM_EMAIL,
        to,
        fail_silently=False,
        connection=connection,
    )

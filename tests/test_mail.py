"""Every email's subject is one line, whatever a workspace's name holds."""

import pytest

from connector.mail import clean_subject, send_safe_mail


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("[Acme]\r\nBcc: x@example.com", "[Acme] Bcc: x@example.com"),
        ("tab\there  and\n\n\nlines", "tab here and lines"),
        ("nul\x00and\x7fdel\x85next-line\u2028separator", "nul and del next-line separator"),
        ("  \n[Acme] ok\n", "[Acme] ok"),
        ("Ünïcödé stays, so does 😀", "Ünïcödé stays, so does 😀"),
    ],
)
def test_clean_subject__whitespace_and_control_characters__one_space(subject, expected):
    assert clean_subject(subject) == expected


def test_send_safe_mail__newline_in_subject__sent_on_one_line(mailoutbox):
    sent = send_safe_mail(subject="[Acme\nInc] hello", body="body\nlines\n", to=["a@example.com"])
    assert sent == 1
    assert mailoutbox[0].subject == "[Acme Inc] hello"
    assert mailoutbox[0].body == "body\nlines\n"  # the body keeps its lines

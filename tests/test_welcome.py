"""The end of `make run`: one block, printed once the web server and the sandbox answer,
whose URLs and sign-ins work as printed."""

import re
from io import StringIO

import pytest
import requests
from django.core.management import CommandError, call_command


def printed(label, block):
    match = re.search(rf"^\s*{label}\s{{2,}}(\S+)(?: / (\S+))?", block, re.M)
    assert match, block
    return match.groups()


@pytest.mark.django_db(transaction=True)
def test_welcome__after_seed__every_printed_sign_in_works(live_server, ld, settings, client):
    settings.PUBLIC_URL = live_server.url
    call_command("seed_demo", stdout=StringIO())
    out = StringIO()

    call_command("welcome", wait=10, stdout=out)

    block = out.getvalue()
    assert len(block.splitlines()) <= 14  # one short block
    (url, _) = printed("Open", block)
    email, password = printed("Sign in as", block)
    sandbox_email, sandbox_password = printed("Its sign-in", block)
    (overview, _) = printed("Its overview", block)
    assert url == f"{live_server.url}/"
    assert requests.get(url, timeout=5).status_code == 200
    assert requests.get(overview, timeout=5).status_code == 200
    # The connector's sign-in, as printed, signs in (through the sign-in page).
    signed_in = client.post("/signin/", {"username": email, "password": password})
    assert signed_in.status_code == 302, signed_in.content.decode()[:500]
    # The sandbox's, as printed, is its demo member's.
    assert any(
        m["email"] == sandbox_email and m["password"] == sandbox_password
        for account in ld.state()["accounts"]
        for m in account["members"]
    )


def test_welcome__nothing_answers__says_so_instead_of_printing_dead_urls(settings):
    settings.PUBLIC_URL = "http://127.0.0.1:9"  # the discard port: nothing listens
    settings.LAUNCHDARKLY_BASE_URL = "http://127.0.0.1:9"

    with pytest.raises(CommandError, match="nothing answered"):
        call_command("welcome", wait=0.5, stdout=StringIO())

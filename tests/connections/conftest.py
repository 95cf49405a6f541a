"""Helpers for driving LaunchDarkly's consent page and reading the sandbox's log.
(The `ld` and `ld_with` sandbox fixtures live in tests/conftest.py.)"""

import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import requests

from sandbox.state import DEMO_EMAIL, DEMO_PASSWORD


def consent(authorize_url, *, decision="approve"):
    """Do what a person does on LaunchDarkly's consent page; answer the redirect's query."""
    with requests.Session() as browser:
        page = browser.get(authorize_url, timeout=5)
        assert page.status_code == 200, page.text
        form = {
            name: unescape(value)
            for name, value in re.findall(r"name='([^']+)' value='([^']*)'", page.text)
        }
        form.update(email=DEMO_EMAIL, password=DEMO_PASSWORD, decision=decision)
        answer = browser.post(
            authorize_url.split("?")[0], data=form, allow_redirects=False, timeout=5
        )
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def token_endpoint_calls(sandbox, grant_type=None):
    return [
        r
        for r in sandbox.requests_since(0)
        if r["path"].split("?")[0] == "/trust/oauth/token"
        and (grant_type is None or r.get("grant_type") == grant_type)
    ]


def local_path(url):
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def query_of(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}

"""OAuthClient against the sandbox's authorization server, driving its consent form
over HTTP as a browser would."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from connector.launchdarkly.client import LaunchDarklyClient
from connector.launchdarkly.errors import (
    InvalidGrant,
    MalformedResponse,
    OAuthError,
    Unauthorized,
    UnexpectedRedirect,
)
from connector.launchdarkly.oauth import OAuthClient, new_pkce_pair, new_state
from sandbox.testing import TEST_CLIENT


class FormFields(HTMLParser):
    """The named inputs of a page's form, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "input" and named.get("type") == "hidden" and named.get("name"):
            self.fields[named["name"]] = named.get("value") or ""


@pytest.fixture
def oauth(sandbox) -> OAuthClient:
    return OAuthClient(
        base_url=sandbox.base_url,
        client_id=TEST_CLIENT.client_id,
        client_secret=TEST_CLIENT.client_secret,
        redirect_uri=TEST_CLIENT.redirect_uri,
    )


def approve(sandbox, authorization_url: str) -> dict[str, str]:
    """Open the consent page, sign in as the demo member and approve; the query
    LaunchDarkly redirects back with (code and state)."""
    browser = requests.Session()
    page = browser.get(authorization_url, timeout=10)
    assert page.status_code == 200
    form = FormFields()
    form.feed(page.text)
    member = sandbox.state()["accounts"][0]["members"][0]
    answer = browser.post(
        f"{sandbox.base_url}/trust/oauth/authorize",
        data={
            **form.fields,
            "email": member["email"],
            "password": member["password"],
            "decision": "approve",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(TEST_CLIENT.redirect_uri)
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


@pytest.fixture
def authorized(sandbox, oauth) -> tuple[str, str]:
    """(code, verifier) of an approved authorization request."""
    verifier, _ = new_pkce_pair()
    state = new_state()
    redirect = approve(sandbox, oauth.authorization_url(state=state, code_verifier=verifier))
    assert redirect["state"] == state
    return redirect["code"], verifier


def test_pkce_and_state__random_and_s256():
    verifier, challenge = new_pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert challenge == create_s256_code_challenge(verifier)
    assert new_pkce_pair()[0] != verifier
    assert len(new_state()) >= 32 and new_state() != new_state()


def test_oauth__authorization_url__carries_pkce_scope_and_state(sandbox, oauth):
    url = oauth.authorization_url(state="st-1", code_verifier="v" * 43)
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}"
        == f"{sandbox.base_url}/trust/oauth/authorize"
    )
    assert query == {
        "response_type": "code",
        "client_id": TEST_CLIENT.client_id,
        "redirect_uri": TEST_CLIENT.redirect_uri,
        "scope": "writer",
        "state": "st-1",
        "code_challenge": create_s256_code_challenge("v" * 43),
        "code_challenge_method": "S256",
    }


def test_oauth__exchange_code__tokens_work_as_bearer(sandbox, oauth, authorized):
    code, verifier = authorized
    tokens = oauth.exchange_code(code=code, code_verifier=verifier)

    assert tokens.scope == ["writer"]
    assert tokens.refresh_token and tokens.expires_at is not None
    assert tokens.access_token not in repr(tokens) and tokens.refresh_token not in repr(tokens)
    client = LaunchDarklyClient(
        base_url=sandbox.base_url, token=tokens.access_token, auth_kind="oauth"
    )
    identity = client.get_caller_identity()
    assert identity["clientId"] == TEST_CLIENT.client_id
    token_calls = [r for r in sandbox.requests_since() if r["path"] == "/trust/oauth/token"]
    assert token_calls[0]["user_agent"].startswith("MetricSync-Acme-int/")


def test_oauth__replayed_code__raises_invalid_grant(oauth, authorized):
    code, verifier = authorized
    oauth.exchange_code(code=code, code_verifier=verifier)
    with pytest.raises(InvalidGrant) as raised:
        oauth.exchange_code(code=code, code_verifier=verifier)
    assert (raised.value.error, raised.value.status, raised.value.retryable) == (
        "invalid_grant",
        400,
        False,
    )


def test_oauth__wrong_verifier__raises_invalid_grant(oauth, authorized):
    code, _ = authorized
    with pytest.raises(InvalidGrant):
        oauth.exchange_code(code=code, code_verifier=new_pkce_pair()[0])


def test_oauth__refresh__rotates_and_refuses_the_old_refresh_token(sandbox, oauth, authorized):
    code, verifier = authorized
    first = oauth.exchange_code(code=code, code_verifier=verifier)

    second = oauth.refresh(refresh_token=first.refresh_token)

    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token
    with pytest.raises(InvalidGrant):
        oauth.refresh(refresh_token=first.refresh_token)
    oauth.refresh(refresh_token=second.refresh_token)


def test_oauth__revoke__access_token_stops_working(sandbox, oauth, authorized):
    code, verifier = authorized
    tokens = oauth.exchange_code(code=code, code_verifier=verifier)
    client = LaunchDarklyClient(
        base_url=sandbox.base_url, token=tokens.access_token, auth_kind="oauth"
    )
    client.get_caller_identity()

    oauth.revoke(token=tokens.access_token)
    oauth.revoke(token="never-issued")  # RFC 7009: unknown tokens answer 200 too

    with pytest.raises(Unauthorized):
        client.get_caller_identity()


def test_oauth__revoke_refresh_token__refresh_raises_invalid_grant(oauth, authorized):
    code, verifier = authorized
    tokens = oauth.exchange_code(code=code, code_verifier=verifier)
    oauth.revoke(token=tokens.refresh_token)
    with pytest.raises(InvalidGrant):
        oauth.refresh(refresh_token=tokens.refresh_token)


def test_oauth__wrong_client_secret__raises_oauth_error_not_invalid_grant(sandbox, authorized):
    code, verifier = authorized
    oauth = OAuthClient(
        base_url=sandbox.base_url,
        client_id=TEST_CLIENT.client_id,
        client_secret="wrong",
        redirect_uri=TEST_CLIENT.redirect_uri,
    )
    with pytest.raises(OAuthError) as raised:
        oauth.exchange_code(code=code, code_verifier=verifier)
    assert type(raised.value) is OAuthError
    assert (raised.value.error, raised.value.status) == ("invalid_client", 401)


def test_oauth__html_from_token_endpoint__raises_malformed_response(sandbox, oauth):
    sandbox.set_faults(rate=1, kinds=["html"], routes=["/trust/oauth/token"])
    with pytest.raises(MalformedResponse):
        oauth.refresh(refresh_token="anything")


def test_oauth__redirect_from_token_endpoint__not_followed(make_fake_server):
    server = make_fake_server()
    server.answer = (307, {"Location": "http://127.0.0.1:9/steal"}, {})
    oauth = OAuthClient(
        base_url=server.base_url, client_id="c", client_secret="s", redirect_uri="https://x/cb"
    )
    with pytest.raises(UnexpectedRedirect):
        oauth.refresh(refresh_token="r")

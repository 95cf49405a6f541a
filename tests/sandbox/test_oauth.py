"""The OAuth authorization-code flow with PKCE, over real HTTP, as the connector runs it."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.state import DEMO_EMAIL, DEMO_PASSWORD
from sandbox.testing import TEST_CLIENT

REDIRECT_URI = TEST_CLIENT.redirect_uri


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorize(sandbox, *, challenge: str | None, decision: str = "approve", scope: str = "writer"):
    """Open the consent page, submit it, and answer the redirect's query parameters."""
    params = {
        "response_type": "code",
        "client_id": TEST_CLIENT.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": scope,
        "state": "st-123",
    }
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    with requests.Session() as browser:
        page = browser.get(f"{sandbox.base_url}/trust/oauth/authorize", params=params, timeout=5)
        assert page.status_code == 200
        assert TEST_CLIENT.name in page.text and scope in page.text
        form = {
            name: unescape(value)
            for name, value in re.findall(r"name='([^']+)' value='([^']*)'", page.text)
        }
        form.update(email=DEMO_EMAIL, password=DEMO_PASSWORD, decision=decision)
        answer = browser.post(
            f"{sandbox.base_url}/trust/oauth/authorize", data=form, allow_redirects=False, timeout=5
        )
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token_call(sandbox, **form):
    return requests.post(
        f"{sandbox.base_url}/trust/oauth/token",
        data=form,
        auth=(TEST_CLIENT.client_id, TEST_CLIENT.client_secret),
        timeout=5,
    )


def exchange(sandbox, code: str, verifier: str, redirect_uri: str = REDIRECT_URI):
    return token_call(
        sandbox,
        grant_type="authorization_code",
        code=code,
        code_verifier=verifier,
        redirect_uri=redirect_uri,
    )


def identity(sandbox, access_token: str):
    return requests.get(
        f"{sandbox.base_url}/api/v2/caller-identity",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=5,
    )


# Contract OAUTH-1, AUTH-1: the code flow with PKCE S256; OAuth tokens go as Bearer.
def test_oauth__pkce_code_flow__tokens_work_as_bearer(sandbox):
    verifier, challenge = pkce_pair()
    redirect = authorize(sandbox, challenge=challenge)
    assert redirect["state"] == "st-123"

    tokens = exchange(sandbox, redirect["code"], verifier)

    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "bearer" and body["scope"] == "writer"
    assert body["expires_in"] == 3600 and body["refresh_token"]
    me = identity(sandbox, body["access_token"])
    assert me.status_code == 200
    assert me.json()["authKind"] == "oauth"
    assert me.json()["clientId"] == TEST_CLIENT.client_id
    assert me.json()["scopes"] == ["writer"]


def test_oauth__code_replayed__invalid_grant_and_tokens_revoked(sandbox):
    verifier, challenge = pkce_pair()
    code = authorize(sandbox, challenge=challenge)["code"]
    first = exchange(sandbox, code, verifier).json()

    replay = exchange(sandbox, code, verifier)

    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert identity(sandbox, first["access_token"]).status_code == 401


def test_oauth__wrong_code_verifier__invalid_grant(sandbox):
    _, challenge = pkce_pair()
    code = authorize(sandbox, challenge=challenge)["code"]
    answer = exchange(sandbox, code, "x" * 50)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_oauth__wrong_redirect_uri_at_token__invalid_grant(sandbox):
    verifier, challenge = pkce_pair()
    code = authorize(sandbox, challenge=challenge)["code"]
    answer = exchange(sandbox, code, verifier, redirect_uri="http://evil.example/cb")
    assert answer.json()["error"] == "invalid_grant"


def test_oauth__wrong_redirect_uri_at_authorize__error_page_without_redirect(sandbox):
    answer = requests.get(
        f"{sandbox.base_url}/trust/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": TEST_CLIENT.client_id,
            "redirect_uri": "http://evil.example/cb",
            "scope": "writer",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 400 and "Location" not in answer.headers
    assert "redirect_uri" in answer.text


def test_oauth__unknown_client__error_page(sandbox):
    answer = requests.get(
        f"{sandbox.base_url}/trust/oauth/authorize",
        params={"response_type": "code", "client_id": "nobody", "scope": "writer"},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 400 and "Unknown client_id" in answer.text


# Contract OAUTH-1: only S256.
def test_oauth__plain_pkce_method__refused_by_redirect(sandbox):
    answer = requests.get(
        f"{sandbox.base_url}/trust/oauth/authorize",
        params={
            "response_type": "code",
            "client_id": TEST_CLIENT.client_id,
            "scope": "writer",
            "code_challenge": "a" * 43,
            "code_challenge_method": "plain",
            "state": "s",
        },
        allow_redirects=False,
        timeout=5,
    )
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["error"] == ["invalid_request"] and query["state"] == ["s"]


def test_oauth__unknown_scope__invalid_scope_redirect(sandbox):
    answer = requests.get(
        f"{sandbox.base_url}/trust/oauth/authorize",
        params={"response_type": "code", "client_id": TEST_CLIENT.client_id, "scope": "admin"},
        allow_redirects=False,
        timeout=5,
    )
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["error"] == ["invalid_scope"]


def test_oauth__expired_code__invalid_grant(make_sandbox):
    sandbox = make_sandbox(code_ttl=0.2)
    verifier, challenge = pkce_pair()
    code = authorize(sandbox, challenge=challenge)["code"]
    time.sleep(0.4)
    answer = exchange(sandbox, code, verifier)
    assert (
        answer.json()["error"] == "invalid_grant"
        and "expired" in answer.json()["error_description"]
    )


def test_oauth__deny__redirects_with_access_denied(sandbox):
    redirect = authorize(sandbox, challenge=None, decision="deny")
    assert redirect == {
        "error": "access_denied",
        "error_description": "The member denied access",
        "state": "st-123",
    }


# Contract OAUTH-2: a refresh rotates the refresh token.
def test_oauth__refresh__rotates_and_old_refresh_token_refused(sandbox):
    verifier, challenge = pkce_pair()
    first = exchange(sandbox, authorize(sandbox, challenge=challenge)["code"], verifier).json()

    second = token_call(sandbox, grant_type="refresh_token", refresh_token=first["refresh_token"])

    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert identity(sandbox, second.json()["access_token"]).status_code == 200
    reuse = token_call(sandbox, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"


def test_oauth__access_token_expires__401(make_sandbox):
    sandbox = make_sandbox(token_ttl=0.3)
    verifier, challenge = pkce_pair()
    tokens = exchange(sandbox, authorize(sandbox, challenge=challenge)["code"], verifier).json()
    assert identity(sandbox, tokens["access_token"]).status_code == 200
    time.sleep(0.5)
    expired = identity(sandbox, tokens["access_token"])
    assert expired.status_code == 401 and expired.json()["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("form", "auth", "status", "error"),
    [
        (
            {"grant_type": "authorization_code", "code": "x"},
            ("test-client", "wrong"),
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "password"},
            ("test-client", "test-client-secret"),
            400,
            "unsupported_grant_type",
        ),
        ({}, ("test-client", "test-client-secret"), 400, "invalid_request"),
        (
            {"grant_type": "authorization_code", "code": "nope"},
            ("test-client", "test-client-secret"),
            400,
            "invalid_grant",
        ),
    ],
)
def test_oauth__token_endpoint_errors__rfc6749_bodies(sandbox, form, auth, status, error):
    answer = requests.post(
        f"{sandbox.base_url}/trust/oauth/token", data=form or {"x": "1"}, auth=auth, timeout=5
    )
    assert answer.status_code == status
    assert answer.json()["error"] == error and answer.json()["error_description"]


def test_oauth__client_secret_in_body__accepted(sandbox):
    verifier, challenge = pkce_pair()
    code = authorize(sandbox, challenge=challenge)["code"]
    answer = requests.post(
        f"{sandbox.base_url}/trust/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI,
            "client_id": TEST_CLIENT.client_id,
            "client_secret": TEST_CLIENT.client_secret,
        },
        timeout=5,
    )
    assert answer.status_code == 200


# Contract OAUTH-3: revocation answers 200, for unknown tokens too.
def test_oauth__revoke__token_then_unknown_both_200(sandbox):
    verifier, challenge = pkce_pair()
    tokens = exchange(sandbox, authorize(sandbox, challenge=challenge)["code"], verifier).json()
    auth = (TEST_CLIENT.client_id, TEST_CLIENT.client_secret)
    url = f"{sandbox.base_url}/trust/oauth/revoke"

    assert (
        requests.post(
            url, data={"token": tokens["refresh_token"]}, auth=auth, timeout=5
        ).status_code
        == 200
    )
    assert requests.post(url, data={"token": "unknown"}, auth=auth, timeout=5).status_code == 200
    assert identity(sandbox, tokens["access_token"]).status_code == 401
    refresh = token_call(sandbox, grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refresh.json()["error"] == "invalid_grant"


def test_oauth__metadata__names_endpoints(sandbox):
    meta = requests.get(
        f"{sandbox.base_url}/.well-known/oauth-authorization-server", timeout=5
    ).json()
    assert meta["token_endpoint"] == f"{sandbox.base_url}/trust/oauth/token"
    assert meta["code_challenge_methods_supported"] == ["S256"]


def test_oauth__token_call_logged_with_grant_type_without_secrets(sandbox):
    token_call(sandbox, grant_type="refresh_token", refresh_token="nope")
    entry = sandbox.requests_since(0)[-1]
    assert entry["grant_type"] == "refresh_token"
    assert "Authorization" not in entry["headers"]

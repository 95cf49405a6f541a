"""LaunchDarkly's OAuth 2.0 endpoints: authorization code grant (RFC 6749) with PKCE
S256 (RFC 7636), refresh, and revocation (RFC 7009).

LaunchDarkly: the endpoints are `/trust/oauth/authorize`, `/trust/oauth/token` and
`/trust/oauth/revoke` on the app host; the connector asks for the `writer` scope
(launchdarkly/hello-oauth-node). Refresh tokens may rotate: always store the refresh
token of the latest answer, since a used one may be refused with `invalid_grant`.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, urlencode

import requests
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from connector.launchdarkly.errors import InvalidGrant, MalformedResponse, OAuthError
from connector.launchdarkly.transport import DEFAULT_TIMEOUT, Transport, error_body, json_body

AUTHORIZE_PATH = "/trust/oauth/authorize"
TOKEN_PATH = "/trust/oauth/token"
REVOKE_PATH = "/trust/oauth/revoke"


def new_state() -> str:
    """An unguessable `state` for one authorization request (CSRF protection)."""
    return generate_token(32)


def new_pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier (RFC 7636 §4.1: 43 to 128 unreserved characters) and its
    S256 challenge. The verifier stays with us until the code exchange."""
    verifier = generate_token(64)
    return verifier, create_s256_code_challenge(verifier)


@dataclass(frozen=True)
class TokenSet:
    """One token endpoint answer. `expires_at` is epoch seconds, counted from when the
    request was sent, so it errs early; None when LaunchDarkly gave no lifetime."""

    access_token: str = field(repr=False)  # repr=False: tokens never reach a log line
    refresh_token: str | None = field(repr=False)
    expires_at: float | None
    scope: list[str]


class OAuthClient:
    """The connector's OAuth client registration at one LaunchDarkly instance."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self._transport = Transport(
            base_url=base_url, product="MetricSync", timeout=timeout, session=session
        )
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        # RFC 6749 §2.3.1: HTTP Basic, each part form-urlencoded first.
        credentials = f"{quote_plus(client_id)}:{quote_plus(client_secret)}".encode()
        self._headers = {
            "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii"),
            "Accept": "application/json",
        }

    def authorization_url(self, *, state: str, code_verifier: str, scope: str = "writer") -> str:
        """Where to send the customer's browser to approve the connection."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": scope,
                "state": state,
                "code_challenge": create_s256_code_challenge(code_verifier),
                "code_challenge_method": "S256",
            }
        )
        return f"{self._transport.url(AUTHORIZE_PATH)}?{query}"

    def exchange_code(self, *, code: str, code_verifier: str) -> TokenSet:
        """Trade the code from the redirect for tokens. InvalidGrant: the code is used,
        expired or not ours, or the verifier does not match."""
        return self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": code_verifier,
            }
        )

    def refresh(self, *, refresh_token: str) -> TokenSet:
        """New tokens for a refresh token. InvalidGrant: it is used or revoked, and the
        customer must authorise again."""
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def revoke(self, *, token: str) -> None:
        """Revoke an access or refresh token (RFC 7009: unknown tokens succeed too)."""
        self._post(REVOKE_PATH, {"token": token})

    def _token(self, form: dict[str, str]) -> TokenSet:
        requested_at = time.time()
        return _token_set(json_body(self._post(TOKEN_PATH, form)), requested_at)

    def _post(self, path: str, form: dict[str, str]) -> requests.Response:
        response = self._transport.send("POST", path, headers=self._headers, data=form)
        if response.status_code >= 400:
            raise _oauth_error(response)
        return response


def _oauth_error(response: requests.Response) -> OAuthError | MalformedResponse:
    """RFC 6749 §5.2: `{"error", "error_description"?}`."""
    body = error_body(response) or {}
    error = body.get("error")
    if not isinstance(error, str):
        return MalformedResponse(
            f"OAuth answer {response.status_code} without an error code",
            status=response.status_code,
        )
    description = body.get("error_description")
    message = description if isinstance(description, str) and description else error
    error_class = InvalidGrant if error == "invalid_grant" else OAuthError
    return error_class(message, error=error, status=response.status_code)


def _token_set(body: Any, requested_at: float) -> TokenSet:
    """RFC 6749 §5.1; `scope` is space-separated."""
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise MalformedResponse("token answer without an access_token")
    refresh_token = body.get("refresh_token")
    expires_in = body.get("expires_in")
    scope = body.get("scope")
    return TokenSet(
        access_token=body["access_token"],
        refresh_token=refresh_token if isinstance(refresh_token, str) else None,
        expires_at=(
            requested_at + expires_in
            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
            else None
        ),
        scope=scope.split() if isinstance(scope, str) else [],
    )

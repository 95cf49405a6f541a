"""OAuth 2.0 authorization server at LaunchDarkly's paths (`/trust/oauth/...`).

Authorization code grant (RFC 6749 §4.1) with PKCE (RFC 7636, S256 only), refresh
tokens that rotate on every use, revocation (RFC 7009) and server metadata (RFC 8414).
LaunchDarkly's scopes are `reader` and `writer` (launchdarkly/hello-oauth-node).

Where the RFCs leave a choice, the sandbox takes the strict one, so a connector that
works here works against a strict real server:
- redirect_uri must equal the registered one exactly; a bad client or redirect URI
  gets an error page, never a redirect (RFC 6749 §4.1.2.1);
- codes are single use; replaying one also revokes what it issued (§4.1.2);
- a used refresh token is refused with `invalid_grant`;
- refresh tokens rotate on every use, unless started with `rotate_refresh_tokens` off:
  then a refresh answer has no `refresh_token` and the old one stays valid (§6).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from sandbox import pages
from sandbox.messages import Request, Response, html_response, json_response, redirect
from sandbox.state import AuthCode, OAuthClient, RefreshToken, SandboxState, object_id

SCOPES = ("reader", "writer")
GRANT_TYPES = ("authorization_code", "refresh_token")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> Response:
        headers = dict(NO_STORE)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="oauth"'
        body = {"error": self.error, "error_description": self.description}
        return json_response(self.status, body, headers)


def _with_query(uri: str, params: dict[str, str]) -> str:
    parts = urlsplit(uri)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))


def _normalise_scope(raw: str) -> str:
    """Space-separated scopes; `offline_access` is accepted and implied (we always issue
    refresh tokens). Raises OAuthError for anything else."""
    scopes = [s for s in raw.split() if s != "offline_access"] or ["reader"]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise OAuthError("invalid_scope", f"unknown scope: {' '.join(unknown)}")
    return " ".join(dict.fromkeys(scopes))


def _role(scope: str) -> str:
    return "writer" if "writer" in scope.split() else "reader"


class OAuthServer:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    # --- authorization endpoint ---------------------------------------------------

    def _trusted_client(self, params: dict[str, str]) -> tuple[OAuthClient | None, str]:
        """The client and the redirect URI to use, or (None, reason) when the request
        cannot be trusted enough to redirect back."""
        client = self.state.oauth_clients.get(params.get("client_id", ""))
        if client is None:
            return None, "Unknown client_id."
        redirect_uri = params.get("redirect_uri") or client.redirect_uri
        if redirect_uri != client.redirect_uri:
            return None, "The redirect_uri does not match the one registered for this client."
        return client, redirect_uri

    def _check_request(self, params: dict[str, str]) -> str:
        """Validate the authorization request; returns the normalised scope."""
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code")
        method = params.get("code_challenge_method")
        challenge = params.get("code_challenge")
        if method and method != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        if method and not challenge:
            raise OAuthError("invalid_request", "code_challenge is missing")
        if challenge and not 43 <= len(challenge) <= 128:
            raise OAuthError("invalid_request", "code_challenge must be 43 to 128 characters")
        return _normalise_scope(params.get("scope", ""))

    def authorize(self, request: Request) -> Response:
        params = request.query if request.method == "GET" else request.form()
        with self.state.lock:
            client, redirect_uri = self._trusted_client(params)
            if client is None:
                return html_response(400, pages.oauth_error_page(redirect_uri))
            state_param = {"state": params["state"]} if "state" in params else {}
            try:
                scope = self._check_request(params)
            except OAuthError as error:
                query = {"error": error.error, "error_description": error.description}
                return redirect(_with_query(redirect_uri, {**query, **state_param}))
            hidden: dict[str, str] = {
                name: params[name]
                for name in (
                    "response_type",
                    "client_id",
                    "redirect_uri",
                    "scope",
                    "state",
                    "code_challenge",
                    "code_challenge_method",
                )
                if name in params
            }
            if request.method == "GET":
                return html_response(200, pages.consent_page(client, scope, hidden))
            if params.get("decision") != "approve":
                denied = {"error": "access_denied", "error_description": "The member denied access"}
                return redirect(_with_query(redirect_uri, {**denied, **state_param}))
            member_account = self._sign_in(params.get("email", ""), params.get("password", ""))
            if member_account is None:
                page = pages.consent_page(
                    client, scope, hidden, params.get("email", ""), "Wrong email or password."
                )
                return html_response(200, page)
            account_id, member_id = member_account
            code = AuthCode(
                code=secrets.token_urlsafe(24),
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                redirect_uri_sent="redirect_uri" in params,
                scope=scope,
                account_id=account_id,
                member_id=member_id,
                code_challenge=params.get("code_challenge"),
                expires_at=time.time() + self.state.options.code_ttl,
                grant_id=object_id(),
            )
            self.state.auth_codes[code.code] = code
        return redirect(_with_query(redirect_uri, {"code": code.code, **state_param}))

    def _sign_in(self, email: str, password: str) -> tuple[str, str] | None:
        for account in self.state.accounts.values():
            for member in account.members.values():
                if member.email.lower() == email.strip().lower() and hmac.compare_digest(
                    member.password, password
                ):
                    return account.id, member.id
        return None

    # --- token endpoint -------------------------------------------------------------

    def _authenticate_client(self, request: Request, form: dict[str, str]) -> OAuthClient:
        """HTTP Basic (RFC 6749 §2.3.1, form-urlencoded parts) or client_id/secret in the body."""
        auth = request.header("Authorization")
        if auth.lower().startswith("basic "):
            if "client_secret" in form:
                raise OAuthError("invalid_request", "use one client authentication method")
            try:
                decoded = base64.b64decode(auth[6:].strip(), validate=True).decode()
                client_id, _, secret = decoded.partition(":")
            except ValueError as exc:
                raise OAuthError("invalid_client", "malformed Basic credentials", 401) from exc
            client_id, secret = (
                unquote(client_id.replace("+", " ")),
                unquote(secret.replace("+", " ")),
            )
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        client = self.state.oauth_clients.get(client_id)
        if client is None or not hmac.compare_digest(client.client_secret, secret):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        if form.get("client_id", client_id) != client_id:
            raise OAuthError("invalid_request", "client_id does not match the credentials")
        return client

    def token(self, request: Request) -> Response:
        form = request.form()
        grant_type = form.get("grant_type", "")
        try:
            if not request.header("Content-Type").startswith("application/x-www-form-urlencoded"):
                raise OAuthError(
                    "invalid_request", "body must be application/x-www-form-urlencoded"
                )
            with self.state.lock:
                client = self._authenticate_client(request, form)
                if grant_type == "authorization_code":
                    body = self._exchange_code(client, form)
                elif grant_type == "refresh_token":
                    body = self._refresh(client, form)
                elif not grant_type:
                    raise OAuthError("invalid_request", "grant_type is missing")
                else:
                    raise OAuthError("unsupported_grant_type", f"{grant_type} is not supported")
        except OAuthError as error:
            response = error.response()
        else:
            response = json_response(200, body, NO_STORE)
        response.log_extra["grant_type"] = grant_type
        return response

    def _exchange_code(self, client: OAuthClient, form: dict[str, str]) -> dict:
        code = self.state.auth_codes.get(form.get("code", ""))
        if code is None or code.client_id != client.client_id:
            raise OAuthError("invalid_grant", "unknown authorization code")
        if code.used:
            # RFC 6749 §4.1.2: a replayed code should revoke what it issued.
            self.state.revoke_grant(code.grant_id)
            raise OAuthError("invalid_grant", "authorization code already used")
        code.used = True
        if time.time() >= code.expires_at:
            raise OAuthError("invalid_grant", "authorization code expired")
        redirect_uri = form.get("redirect_uri")
        if (redirect_uri or code.redirect_uri_sent) and redirect_uri != code.redirect_uri:
            raise OAuthError(
                "invalid_grant", "redirect_uri does not match the authorization request"
            )
        if code.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not verifier or not hmac.compare_digest(expected, code.code_challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match code_challenge")
        return self._issue(client, code.account_id, code.member_id, code.scope, code.grant_id)

    def _refresh(self, client: OAuthClient, form: dict[str, str]) -> dict:
        refresh = self.state.refresh_tokens.get(form.get("refresh_token", ""))
        if refresh is None or refresh.client_id != client.client_id:
            raise OAuthError("invalid_grant", "unknown refresh token")
        if refresh.revoked or refresh.used:
            raise OAuthError("invalid_grant", "refresh token is no longer valid")
        scope = refresh.scope
        if form.get("scope"):
            asked = _normalise_scope(form["scope"])
            if not set(asked.split()) <= set(scope.split()):
                raise OAuthError("invalid_scope", "scope exceeds the original grant")
            scope = asked
        if not self.state.options.rotate_refresh_tokens:
            return self._issue(
                client, refresh.account_id, refresh.member_id, scope, refresh.grant_id, refresh
            )
        refresh.used = True
        return self._issue(client, refresh.account_id, refresh.member_id, scope, refresh.grant_id)

    def _issue(
        self,
        client: OAuthClient,
        account_id: str,
        member_id: str,
        scope: str,
        grant_id: str,
        kept_refresh: RefreshToken | None = None,
    ) -> dict:
        """A new access token, and a new refresh token unless `kept_refresh` stays."""
        ttl = self.state.options.token_ttl
        access = self.state.mint_token(
            self.state.accounts[account_id],
            role=_role(scope),
            name=f"OAuth: {client.name}",
            member_id=member_id,
            client_id=client.client_id,
            grant_id=grant_id,
            ttl=ttl,
        )
        answer = {
            "access_token": access.secret,
            "token_type": "bearer",
            "expires_in": int(ttl) if float(ttl).is_integer() else ttl,
            "scope": scope,
        }
        if kept_refresh is not None:
            return answer
        refresh = RefreshToken(
            secret="ldo-rt-" + secrets.token_urlsafe(32),
            client_id=client.client_id,
            scope=scope,
            account_id=account_id,
            member_id=member_id,
            grant_id=grant_id,
        )
        self.state.refresh_tokens[refresh.secret] = refresh
        return {**answer, "refresh_token": refresh.secret}

    # --- revocation and metadata ---------------------------------------------------

    def revoke(self, request: Request) -> Response:
        """RFC 7009: answer 200 even for unknown tokens, so nothing leaks."""
        form = request.form()
        try:
            with self.state.lock:
                client = self._authenticate_client(request, form)
                if not form.get("token"):
                    raise OAuthError("invalid_request", "token is missing")
                token = self.state.tokens.get(form["token"])
                refresh = self.state.refresh_tokens.get(form["token"])
                owner = token or refresh
                if owner is not None and owner.client_id == client.client_id:
                    self.state.revoke(form["token"])
        except OAuthError as error:
            return error.response()
        return Response(200, b"", None, dict(NO_STORE))

    def metadata(self, base_url: str) -> Response:
        return json_response(
            200,
            {
                "issuer": base_url,
                "authorization_endpoint": f"{base_url}/trust/oauth/authorize",
                "token_endpoint": f"{base_url}/trust/oauth/token",
                "revocation_endpoint": f"{base_url}/trust/oauth/revoke",
                "response_types_supported": ["code"],
                "grant_types_supported": list(GRANT_TYPES),
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": [*SCOPES, "offline_access"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
            },
        )

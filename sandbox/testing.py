"""Run the sandbox inside a test process and steer it through its control surface.

    with RunningSandbox(token_ttl=60) as sandbox:
        token = sandbox.mint_token(role="writer")
        requests.get(f"{sandbox.base_url}/api/v2/caller-identity",
                     headers={"Authorization": token})

The control methods go over HTTP to `/_sandbox/`, exactly as a test in another
process would, so they double as examples of the control surface.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import requests

from sandbox.app import Observer
from sandbox.server import SandboxServer
from sandbox.state import OAuthClientSeed, SandboxOptions

TEST_CLIENT = OAuthClientSeed(
    client_id="test-client",
    client_secret="test-client-secret",
    redirect_uri="http://testserver/connect/launchdarkly/callback",
    name="Test connector",
)


class RunningSandbox:
    """A sandbox on a free port of 127.0.0.1, served by a background thread."""

    def __init__(
        self,
        *,
        token_ttl: float = 3600,
        code_ttl: float = 600,
        rate_window_s: float = 10.0,
        oauth_client: OAuthClientSeed | None = TEST_CLIENT,
        observer: Observer | None = None,
        rotate_refresh_tokens: bool = True,
    ) -> None:
        options = SandboxOptions(
            token_ttl=token_ttl,
            code_ttl=code_ttl,
            rate_window_s=rate_window_s,
            oauth_client=oauth_client,
            rotate_refresh_tokens=rotate_refresh_tokens,
        )
        self.server = SandboxServer("127.0.0.1", 0, options, observer)
        self.oauth_client = oauth_client
        self.http = requests.Session()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def __enter__(self) -> RunningSandbox:
        self.server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()
        self.server.stop()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(
            method, f"{self.base_url}/_sandbox/{path}", timeout=10, **kwargs
        )
        response.raise_for_status()
        return response.json()

    # --- control surface -----------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return self._call("GET", "state")

    def create_account(self, name: str) -> dict[str, Any]:
        """A new account; the answer carries `id`, a writer `token` and the member."""
        return self._call("POST", "accounts", json={"name": name})

    def mint_token(
        self,
        role: str = "writer",
        *,
        account_id: str | None = None,
        permissions: list[str] | None = None,
        service: bool = False,
        inline_role: list[dict[str, Any]] | None = None,
    ) -> str:
        """An API access token's secret (sent raw in `Authorization`). `role` may be
        `no_access` for a token that has only its inline role; `permissions` are actions
        allowed everywhere (an inline-role statement); a service token has no member."""
        body: dict[str, Any] = {
            "role": role,
            "permissions": permissions or [],
            "service": service,
            "inline_role": inline_role or [],
        }
        if account_id:
            body["account_id"] = account_id
        return self._call("POST", "tokens", json=body)["token"]

    def revoke_token(self, token: str) -> None:
        self._call("POST", "tokens/revoke", json={"token": token})

    def register_oauth_client(self, client: OAuthClientSeed) -> None:
        self._call(
            "POST",
            "oauth-clients",
            json={
                "client_id": client.client_id,
                "client_secret": client.client_secret,
                "redirect_uri": client.redirect_uri,
                "name": client.name,
            },
        )

    def set_limits(self, **limits: Any) -> dict[str, Any]:
        """`global_per_10s`, `route_per_10s` (None lifts), `retry_after_mode`."""
        return self._call("PUT", "limits", json=limits)

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """`rate`, `kinds`, `routes`, `latency_ms`, `slow_ms`; no arguments stops them."""
        return self._call("PUT", "faults", json=faults)

    def set_metric_usage(
        self, project: str, key: str, *, account_id: str | None = None, **counts: int
    ) -> dict[str, Any]:
        """Counts of `experiments`, `active_experiments`, `guarded_rollouts`,
        `active_guarded_rollouts` and `metric_groups` using a metric; others are kept."""
        body: dict[str, Any] = {"project": project, "key": key, **counts}
        if account_id:
            body["account_id"] = account_id
        return self._call("PUT", "metric-usage", json=body)

    def set_race(
        self, project: str, key: str, count: int = 1, *, account_id: str | None = None
    ) -> dict[str, Any]:
        """The next `count` patchMetric calls on the metric answer 409, another edit
        having landed first."""
        body: dict[str, Any] = {"project": project, "key": key, "count": count}
        if account_id:
            body["account_id"] = account_id
        return self._call("PUT", "races", json=body)

    def requests_since(self, seq: int = 0) -> list[dict[str, Any]]:
        return self._call("GET", "requests", params={"since": seq})["requests"]

    def events(self) -> dict[str, Any]:
        return self._call("GET", "events")

    def reset(self) -> None:
        self._call("POST", "reset")

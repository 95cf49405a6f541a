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

    def set_metric_group_usage(
        self,
        key: str,
        experiments: int = 1,
        *,
        active_experiments: int | None = None,
        active_guarded_rollouts: int | None = None,
        project_key: str = "default",
        account_id: str | None = None,
    ) -> dict[str, Any]:
        """How many experiments (ever; `active_experiments` of them running) and active
        guarded rollouts use a metric group: a connected group cannot be deleted. Counts
        left as None keep their value."""
        body: dict[str, Any] = {"project_key": project_key, "key": key, "experiments": experiments}
        if active_experiments is not None:
            body["active_experiments"] = active_experiments
        if active_guarded_rollouts is not None:
            body["active_guarded_rollouts"] = active_guarded_rollouts
        if account_id:
            body["account_id"] = account_id
        return self._call("PUT", "metric-group-usage", json=body)

    def _project_state(self, project_key: str, account_id: str | None) -> dict[str, Any]:
        state = self.state()
        wanted = account_id or state["demo_account_id"]
        account = next(a for a in state["accounts"] if a["id"] == wanted)
        return next(p for p in account["projects"] if p["key"] == project_key)

    def metric_groups(
        self, project_key: str = "default", account_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The project's metric groups as the sandbox stores them: MetricGroupPost's fields
        (`metrics` as [{key, nameInGroup}], in order), `_id`, `_version`, `_creationDate`,
        `_lastModified`, and `usage` {experiments, active_experiments,
        active_guarded_rollouts}. `account_id` defaults to the demo account."""
        return self._project_state(project_key, account_id)["metric_groups"]

    def metric_event_counts(
        self, project_key: str = "default", account_id: str | None = None
    ) -> dict[str, int]:
        """Imported events counted per metric key (its event key and its filter matched),
        all environments together; metrics that counted none are absent."""
        report = self.events()
        wanted = account_id or self.state()["demo_account_id"]
        prefix = f"{project_key}/"
        return {
            name.removeprefix(prefix): count
            for name, count in report["by_metric"].get(wanted, {}).items()
            if name.startswith(prefix)
        }

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
        """`counts` (account -> project -> environment -> event key), `by_metric`
        (account -> "project/metric key" -> events that counted for the metric),
        `dropped` (reason -> events), `payloads`, `duplicate_payloads`."""
        return self._call("GET", "events")

    def reset(self) -> None:
        self._call("POST", "reset")

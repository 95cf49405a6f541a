"""Tokens: roles, revocation, and a request log that keeps no secrets."""

from __future__ import annotations

import requests

METRIC = {"key": "m", "kind": "custom", "isNumeric": False, "eventKey": "e"}


# Contract AUTH-2: a reader token on a write route is 403 forbidden.
def test_auth__reader_token_writes__403(sandbox):
    reader = sandbox.mint_token("reader")
    answer = requests.post(
        f"{sandbox.base_url}/api/v2/metrics/default",
        json=METRIC,
        headers={"Authorization": reader},
        timeout=5,
    )
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    identity = requests.get(
        f"{sandbox.base_url}/api/v2/caller-identity", headers={"Authorization": reader}, timeout=5
    )
    # Contract ID-1: an API token's identity carries no `scopes`.
    assert identity.status_code == 200 and "scopes" not in identity.json()


# Contract ERR-1, AUTH-1: a dead token is 401 with LaunchDarkly's {code, message, id} body.
def test_auth__revoked_token__401(sandbox, writer_token):
    url = f"{sandbox.base_url}/api/v2/projects"
    assert requests.get(url, headers={"Authorization": writer_token}, timeout=5).status_code == 200
    sandbox.revoke_token(writer_token)
    answer = requests.get(url, headers={"Authorization": writer_token}, timeout=5)
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized" and answer.json()["id"]


# Contract AUTH-1: no token, or an unknown raw token, is 401.
def test_auth__missing_or_unknown_token__401(sandbox):
    url = f"{sandbox.base_url}/api/v2/caller-identity"
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, headers={"Authorization": "api-nope"}, timeout=5).status_code == 401


def test_auth__other_accounts_project__404(sandbox):
    other = sandbox.create_account("Other")
    answer = requests.get(
        f"{sandbox.base_url}/api/v2/projects/mobile-app",
        headers={"Authorization": other["token"]},
        timeout=5,
    )
    assert answer.status_code == 404


def test_request_log__user_agent_and_version_kept__authorization_never(sandbox, writer_token):
    since = sandbox.requests_since(0)[-1]["seq"] if sandbox.requests_since(0) else 0
    requests.get(
        f"{sandbox.base_url}/api/v2/projects?limit=1",
        headers={
            "Authorization": writer_token,
            "User-Agent": "MetricImport-Acme-int/1.4.0",
            "LD-API-Version": "20240415",
        },
        timeout=5,
    )

    entries = sandbox.requests_since(since)

    assert len(entries) == 1
    entry = entries[0]
    assert entry["seq"] > since and entry["method"] == "GET"
    assert entry["path"] == "/api/v2/projects?limit=1" and entry["status"] == 200
    assert entry["user_agent"] == "MetricImport-Acme-int/1.4.0"
    assert entry["ld_api_version"] == "20240415"
    assert {name.lower() for name in entry["headers"]}.isdisjoint({"authorization", "cookie"})
    assert writer_token not in str(entries)


def test_control__reset__back_to_seeded_state(sandbox, writer_token):
    requests.post(
        f"{sandbox.base_url}/api/v2/metrics/default",
        json=METRIC,
        headers={"Authorization": writer_token},
        timeout=5,
    )
    demo_id = sandbox.state()["demo_account_id"]
    sandbox.set_limits(global_per_10s=1)
    sandbox.reset()
    state = sandbox.state()
    assert state["demo_account_id"] == demo_id
    assert [a["name"] for a in state["accounts"]] == ["Demo"]
    assert all(not p["metrics"] for p in state["accounts"][0]["projects"])
    assert state["limits"]["global_per_10s"] is None
    assert state["accounts"][0]["members"][0]["password"] == "sandbox-demo"


def test_control__overview_page__lists_metrics(sandbox, writer_token):
    requests.post(
        f"{sandbox.base_url}/api/v2/metrics/default",
        json=METRIC,
        headers={"Authorization": writer_token},
        timeout=5,
    )
    page = requests.get(f"{sandbox.base_url}/_sandbox/", timeout=5)
    assert (
        page.status_code == 200
        and "<code>m</code>" in page.text
        and "conversion binary" in page.text
    )

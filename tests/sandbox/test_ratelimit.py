"""Rate limits answer like LaunchDarkly's: headers, 429 body, and recovery at reset."""

from __future__ import annotations

import time

import requests


def at_window_start(window_s: float) -> None:
    """Wait until a window has just begun. Windows are aligned to the clock (as
    LaunchDarkly's are), so requests meant for one window must not straddle an end."""
    time.sleep(window_s - time.time() % window_s + 0.02)


def get(sandbox, token: str, path: str = "/api/v2/metrics/default"):
    return requests.get(f"{sandbox.base_url}{path}", headers={"Authorization": token}, timeout=5)


def test_rate_limit__route_limit_exceeded__429_until_reset(make_sandbox):
    sandbox = make_sandbox(rate_window_s=1.0)
    token = sandbox.mint_token("reader")
    sandbox.set_limits(route_per_10s=3)
    at_window_start(1.0)

    answers = [get(sandbox, token) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-Ratelimit-Route-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    # Contract RL-1: only the headers LaunchDarkly documents, no invented limit header.
    assert {h.lower() for h in answers[0].headers if h.lower().startswith("x-ratelimit")} == {
        "x-ratelimit-route-remaining",
        "x-ratelimit-reset",
    }
    assert answers[3].json()["code"] == "rate_limited"
    reset_ms = int(answers[3].headers["X-Ratelimit-Reset"])
    assert time.time() * 1000 < reset_ms < (time.time() + 1.1) * 1000  # epoch milliseconds
    # Another route has its own budget.
    assert get(sandbox, token, "/api/v2/projects").status_code == 200
    time.sleep(max(0.0, reset_ms / 1000 - time.time()) + 0.05)
    assert get(sandbox, token).status_code == 200


def test_rate_limit__global_limit__shared_by_tokens_of_one_account(make_sandbox):
    sandbox = make_sandbox(rate_window_s=5.0)
    first, second = sandbox.mint_token("reader"), sandbox.mint_token("writer")
    other_account = sandbox.create_account("Other")["token"]
    sandbox.set_limits(global_per_10s=2)
    at_window_start(5.0)

    assert get(sandbox, first).headers["X-Ratelimit-Global-Remaining"] == "1"
    assert get(sandbox, second, "/api/v2/projects").status_code == 200
    assert get(sandbox, first).status_code == 429
    assert get(sandbox, other_account).status_code == 200
    sandbox.set_limits(global_per_10s=None)
    lifted = get(sandbox, first)
    assert lifted.status_code == 200 and "X-Ratelimit-Global-Remaining" not in lifted.headers


def test_rate_limit__retry_after_mode__429_with_retry_after_seconds(make_sandbox):
    sandbox = make_sandbox(rate_window_s=2.0)
    token = sandbox.mint_token("reader")
    sandbox.set_limits(global_per_10s=1, retry_after_mode=True)
    at_window_start(2.0)

    assert get(sandbox, token).status_code == 200
    limited = get(sandbox, token)

    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 2
    assert "X-Ratelimit-Reset" not in limited.headers


def test_rate_limit__default__no_headers(sandbox):
    answer = get(sandbox, sandbox.mint_token("reader"))
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.lower().startswith("x-ratelimit")]

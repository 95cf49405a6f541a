"""Injected faults are observable as documented in sandbox.faults, and latency
delays answers without serialising them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

METRIC = {"key": "m", "kind": "custom", "isNumeric": False, "eventKey": "e"}


def create(sandbox, token: str, key: str = "m", timeout: float = 5):
    return requests.post(
        f"{sandbox.base_url}/api/v2/metrics/default",
        json={**METRIC, "key": key},
        headers={"Authorization": token},
        timeout=timeout,
    )


def metric_keys(sandbox) -> set[str]:
    account = next(a for a in sandbox.state()["accounts"] if a["name"] == "Demo")
    project = next(p for p in account["projects"] if p["key"] == "default")
    return {m["key"] for m in project["metrics"]}


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_faults__server_error__json_error_and_write_not_applied(sandbox, writer_token, kind):
    sandbox.set_faults(rate=1, kinds=[kind])
    answer = create(sandbox, writer_token)
    assert answer.status_code == int(kind)
    assert set(answer.json()) == {"code", "message", "id"}
    assert metric_keys(sandbox) == set()


def test_faults__html__proxy_page_and_write_not_applied(sandbox, writer_token):
    sandbox.set_faults(rate=1, kinds=["html"])
    answer = create(sandbox, writer_token)
    assert answer.status_code == 502 and answer.headers["Content-Type"].startswith("text/html")
    assert "Bad Gateway" in answer.text and metric_keys(sandbox) == set()


def test_faults__drop__connection_closed_but_write_applied(sandbox, writer_token):
    sandbox.set_faults(rate=1, kinds=["drop"])
    with pytest.raises(requests.ConnectionError):
        create(sandbox, writer_token)
    assert metric_keys(sandbox) == {"m"}
    assert sandbox.requests_since(0)[-1]["fault"] == "drop"


def test_faults__truncated__short_body_but_write_applied(sandbox, writer_token):
    sandbox.set_faults(rate=1, kinds=["truncated"])
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        create(sandbox, writer_token)
    assert metric_keys(sandbox) == {"m"}


def test_faults__slow__read_timeout_but_write_applied(sandbox, writer_token):
    sandbox.set_faults(rate=1, kinds=["slow"], slow_ms=1500)
    with pytest.raises(requests.ReadTimeout):
        create(sandbox, writer_token, timeout=0.3)
    assert metric_keys(sandbox) == {"m"}


def test_faults__routes__only_matching_requests_faulted(sandbox, writer_token):
    sandbox.set_faults(rate=1, kinds=["503"], routes=["POST /api/v2/metrics/*"])
    headers = {"Authorization": writer_token}
    assert requests.get(f"{sandbox.base_url}/api/v2/metrics/default", headers=headers, timeout=5).ok
    assert create(sandbox, writer_token).status_code == 503
    sandbox.set_faults(rate=0, latency_ms=0)
    assert create(sandbox, writer_token).status_code == 201


def test_faults__control_surface__never_faulted(sandbox):
    sandbox.set_faults(rate=1, kinds=["drop"], latency_ms=500)
    started = time.monotonic()
    assert sandbox.state()["faults"]["kinds"] == ["drop"]
    assert time.monotonic() - started < 0.4


def test_faults__latency__concurrent_requests_not_serialised(sandbox, writer_token):
    sandbox.set_faults(latency_ms=300)
    url = f"{sandbox.base_url}/api/v2/projects"

    def call(_: int) -> int:
        return requests.get(url, headers={"Authorization": writer_token}, timeout=5).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(call, range(10)))
    elapsed = time.monotonic() - started

    assert statuses == [200] * 10
    assert 0.3 <= elapsed < 1.5


def test_faults__bad_settings__400(sandbox):
    answer = requests.put(f"{sandbox.base_url}/_sandbox/faults", json={"rate": 2}, timeout=5)
    assert answer.status_code == 400
    answer = requests.put(
        f"{sandbox.base_url}/_sandbox/faults", json={"rate": 0.5, "kinds": ["boom"]}, timeout=5
    )
    assert answer.status_code == 400

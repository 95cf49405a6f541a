"""Metric event import: headers checked, payloads deduplicated by id, events counted."""

from __future__ import annotations

import uuid

import requests

EVENTS = [
    {
        "kind": "custom",
        "key": "signup",
        "creationDate": 1_700_000_000_000,
        "contextKeys": {"user": "u1"},
    },
    {
        "kind": "custom",
        "key": "signup",
        "creationDate": 1_700_000_000_001,
        "contextKeys": {"user": "u2"},
    },
    {
        "kind": "custom",
        "key": "order",
        "creationDate": 1_700_000_000_002,
        "contextKeys": {"user": "u1"},
        "metricValue": 12.5,
    },
]


def send(sandbox, token: str, events=EVENTS, payload_id: str | None = None, **headers):
    return requests.post(
        f"{sandbox.base_url}/v2/event-data-import/default/production",
        json=events,
        headers={
            "Authorization": token,
            "X-LaunchDarkly-Event-Schema": "4",
            "X-LaunchDarkly-Payload-ID": payload_id or str(uuid.uuid4()),
            "User-Agent": "MetricImport-Acme-int/1.0.0",
            **headers,
        },
        timeout=5,
    )


def test_event_import__same_payload_id_twice__counted_once(sandbox, writer_token):
    payload_id = str(uuid.uuid4())
    assert send(sandbox, writer_token, payload_id=payload_id).status_code == 202
    assert send(sandbox, writer_token, payload_id=payload_id).status_code == 202
    assert send(sandbox, writer_token, events=EVENTS[:1]).status_code == 202

    report = sandbox.events()

    account_id = sandbox.state()["demo_account_id"]
    assert report["counts"] == {account_id: {"default": {"production": {"signup": 3, "order": 1}}}}
    assert report["payloads"] == 2 and report["duplicate_payloads"] == 1


def test_event_import__reader_without_permission__403(sandbox):
    answer = send(sandbox, sandbox.mint_token("reader"))
    assert answer.status_code == 403 and answer.json()["code"] == "forbidden"
    assert sandbox.events()["counts"] == {}


def test_event_import__reader_with_import_permission__202(sandbox):
    token = sandbox.mint_token("reader", permissions=["importEventData"])
    assert send(sandbox, token).status_code == 202


def test_event_import__bad_requests__400_and_nothing_counted(sandbox, writer_token):
    assert send(sandbox, writer_token, **{"X-LaunchDarkly-Event-Schema": "3"}).status_code == 400
    assert send(sandbox, writer_token, events=[{"kind": "feature"}]).status_code == 400
    bad_value = [{**EVENTS[2], "metricValue": "12"}]
    assert send(sandbox, writer_token, events=bad_value).status_code == 400
    assert send(sandbox, writer_token, events=[{**EVENTS[0], "contextKeys": {}}]).status_code == 400
    assert sandbox.events()["counts"] == {}


def test_event_import__unknown_environment__404(sandbox, writer_token):
    answer = requests.post(
        f"{sandbox.base_url}/v2/event-data-import/default/staging",
        json=EVENTS,
        headers={
            "Authorization": writer_token,
            "X-LaunchDarkly-Event-Schema": "4",
            "X-LaunchDarkly-Payload-ID": "p1",
        },
        timeout=5,
    )
    assert answer.status_code == 404

"""Metric event import as LaunchDarkly documents it (contract rows EVT-1 to EVT-8; the
rules and their sources are in `sandbox/events.py`), through real HTTP."""

from __future__ import annotations

import gzip
import http.client
import json
import uuid
from urllib.parse import urlsplit

import pytest
import requests
from urllib3.util import SKIP_HEADER

from connector.launchdarkly.client import EventImportClient
from connector.launchdarkly.errors import Unauthorized

PATH = "/v2/event-data-import/default/production"
SIGNUP = {
    "kind": "custom",
    "key": "signup",
    "creationDate": 1_700_000_000_000,
    "contextKeys": {"user": "u1"},
}
ORDER = {
    "kind": "custom",
    "key": "order",
    "creationDate": 1_700_000_000_002,
    "contextKeys": {"user": "u1"},
    "metricValue": 12.5,
}
EVENTS = [SIGNUP, {**SIGNUP, "contextKeys": {"user": "u2"}}, ORDER]


@pytest.fixture
def metrics(sandbox, writer_token) -> None:
    """Metrics whose event keys are `signup` and `order`: events only count for those."""
    for key in ("signup", "order"):
        created = requests.post(
            f"{sandbox.base_url}/api/v2/metrics/default",
            json={"key": key, "kind": "custom", "isNumeric": False, "eventKey": key},
            headers={"Authorization": writer_token},
            timeout=5,
        )
        assert created.status_code == 201, created.text


def send(sandbox, token: str, events=EVENTS, *, body: bytes | None = None, path=PATH, **headers):
    """POST a payload with every header the docs ask for; `headers` override them (None
    leaves one out)."""
    return requests.post(
        sandbox.base_url + path,
        data=json.dumps(events).encode() if body is None else body,
        headers={
            "Authorization": token,
            "Content-Type": "application/json",
            "X-LaunchDarkly-Event-Schema": "4",
            "X-LaunchDarkly-Payload-ID": str(uuid.uuid4()),
            "User-Agent": "MetricImport-Acme-int/1.0.0",
            **headers,
        },
        timeout=30,
    )


def counts(sandbox) -> dict:
    account_id = sandbox.state()["demo_account_id"]
    return sandbox.events()["counts"].get(account_id, {}).get("default", {})


def test_event_import__accepted__202_empty_body_and_counted(sandbox, writer_token, metrics):
    """Contract EVT-1: an accepted payload is answered 202 with an empty body."""
    answer = send(sandbox, writer_token)

    assert answer.status_code == 202 and answer.content == b""
    assert counts(sandbox) == {"production": {"signup": 2, "order": 1}}


def test_event_import__role_without_import_permission__401(sandbox, metrics):
    """Contract EVT-2: a token whose role does not allow importEventData gets 401
    `unauthorized` (not 403); one whose permissions include it may import."""
    answer = send(sandbox, sandbox.mint_token("reader"))
    assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    assert counts(sandbox) == {}

    allowed = sandbox.mint_token("reader", permissions=["importEventData"])
    assert send(sandbox, allowed).status_code == 202
    assert counts(sandbox) == {"production": {"signup": 2, "order": 1}}


@pytest.mark.parametrize("schema", ["3", "5", None])
def test_event_import__event_schema_not_4__406(sandbox, writer_token, metrics, schema):
    """Contract EVT-3: X-LaunchDarkly-Event-Schema other than 4 (or none) is 406."""
    answer = send(sandbox, writer_token, **{"X-LaunchDarkly-Event-Schema": schema})

    assert answer.status_code == 406 and answer.json()["code"] == "not_acceptable"
    assert counts(sandbox) == {}


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"kind": "custom"}', b"[]", b'[{"kind": "feature"}, "signup", 7]', b""],
)
def test_event_import__nothing_acceptable__400(sandbox, writer_token, metrics, body):
    """Contract EVT-4: 400 only when nothing passes JSON parsing and `kind: custom`."""
    answer = send(sandbox, writer_token, body=body)

    assert answer.status_code == 400 and answer.json()["code"] == "invalid_request"
    assert counts(sandbox) == {} and sandbox.events()["dropped"] == {}


def test_event_import__bad_events_beside_a_good_one__202_and_dropped_by_reason(
    sandbox, writer_token, metrics
):
    """Contract EVT-4: past JSON parsing and `kind`, bad events are accepted with 202 and
    silently dropped, and so are events no metric's eventKey matches."""
    no_key = {k: v for k, v in SIGNUP.items() if k != "key"}
    payload = [
        SIGNUP,
        no_key,
        {**SIGNUP, "creationDate": "yesterday"},
        {**SIGNUP, "contextKeys": {}},
        {**ORDER, "metricValue": "12"},
        {**SIGNUP, "key": "checkout"},  # no metric has eventKey checkout
        {**SIGNUP, "kind": "feature"},
    ]

    answer = send(sandbox, writer_token, payload)

    assert answer.status_code == 202
    assert counts(sandbox) == {"production": {"signup": 1}}
    assert sandbox.events()["dropped"] == {
        "bad contextKeys": 1,
        "bad creationDate": 1,
        "bad metricValue": 1,
        "missing key": 1,
        "no metric for event key": 1,
        "not a custom event": 1,
    }


def test_event_import__unknown_environment__404(sandbox, writer_token, metrics):
    """Contract EVT-9 (ours, no source settles it): an unknown environment is 404, not a
    silent drop."""
    answer = send(sandbox, writer_token, path="/v2/event-data-import/default/staging")

    assert answer.status_code == 404 and answer.json()["code"] == "not_found"


def test_event_import__over_10_mb__413(sandbox, writer_token, metrics):
    """Contract EVT-5: at most 10 MB per request, measured on the bytes received; the
    client hears the 413 (the sandbox reads the body off the socket, not a reset)."""
    body = json.dumps(EVENTS).encode() + b" " * 10_000_000

    answer = send(sandbox, writer_token, body=body)

    assert answer.status_code == 413 and answer.json()["code"] == "request_entity_too_large"
    assert counts(sandbox) == {}


def test_event_import__gzip_limits__compressed_size_counts_and_bomb_refused(
    sandbox, writer_token, metrics
):
    """Contract EVT-5: a gzipped body is measured compressed (15 MB of JSON that gzips
    small is accepted), and one that inflates past 100 MB is 413."""
    roomy = gzip.compress(json.dumps(EVENTS).encode() + b" " * 15_000_000)
    bomb = gzip.compress(b"[" + b" " * 100_000_001 + b"]")
    assert len(roomy) < 10_000_000 and len(bomb) < 10_000_000

    assert (
        send(sandbox, writer_token, body=roomy, **{"Content-Encoding": "gzip"}).status_code == 202
    )
    answer = send(sandbox, writer_token, body=bomb, **{"Content-Encoding": "gzip"})

    assert answer.status_code == 413 and answer.json()["code"] == "request_entity_too_large"
    assert counts(sandbox) == {"production": {"signup": 2, "order": 1}}


def test_event_import__chunked_or_without_content_length__411(sandbox, writer_token, metrics):
    """Contract EVT-6: Content-Length is required; a chunked body or none is 411."""
    chunked = send(sandbox, writer_token, body=iter([json.dumps(EVENTS).encode()]))
    assert chunked.request.headers.get("Transfer-Encoding") == "chunked"
    assert chunked.status_code == 411 and chunked.json()["code"] == "length_required"

    host = urlsplit(sandbox.base_url)
    connection = http.client.HTTPConnection(host.hostname, host.port, timeout=5)
    connection.putrequest("POST", PATH)  # http.client adds Content-Length only in request()
    for name, value in {
        "Authorization": writer_token,
        "Content-Type": "application/json",
        "X-LaunchDarkly-Event-Schema": "4",
        "User-Agent": "MetricImport-Acme-int/1.0.0",
    }.items():
        connection.putheader(name, value)
    connection.endheaders()
    bare = connection.getresponse()
    assert bare.status == 411 and json.loads(bare.read())["code"] == "length_required"
    connection.close()
    assert counts(sandbox) == {}


# SKIP_HEADER: urllib3 would otherwise send its own User-Agent.
@pytest.mark.parametrize("user_agent", [SKIP_HEADER, ""])
def test_event_import__no_user_agent__400(sandbox, writer_token, metrics, user_agent):
    """Contract EVT-6: User-Agent is required; absent or empty is 400."""
    answer = send(sandbox, writer_token, **{"User-Agent": user_agent})

    assert sandbox.requests_since()[-1]["user_agent"] == ""
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_request"
    assert counts(sandbox) == {}


def test_event_import__gzip_body__decompressed_and_counted(sandbox, writer_token, metrics):
    """Contract EVT-7: Content-Encoding gzip is accepted."""
    body = gzip.compress(json.dumps(EVENTS).encode())

    answer = send(sandbox, writer_token, body=body, **{"Content-Encoding": "gzip"})

    assert answer.status_code == 202
    assert counts(sandbox) == {"production": {"signup": 2, "order": 1}}


@pytest.mark.parametrize(
    "body", [json.dumps(EVENTS).encode(), gzip.compress(json.dumps(EVENTS).encode())[:-8]]
)
def test_event_import__gzip_that_does_not_decompress__400(sandbox, writer_token, metrics, body):
    """Contract EVT-7: a gzip body that does not decompress (not gzip, or cut short) is 400."""
    answer = send(sandbox, writer_token, body=body, **{"Content-Encoding": "gzip"})

    assert answer.status_code == 400 and answer.json()["code"] == "invalid_request"
    assert counts(sandbox) == {}


def test_event_import__same_payload_id_twice__counted_once(sandbox, writer_token, metrics):
    """Contract EVT-8: a payload id seen before for the account, project and environment
    is answered 202 and counted once; in another environment it is a new payload."""
    payload_id = str(uuid.uuid4())
    other_env = "/v2/event-data-import/default/test"

    answers = [
        send(sandbox, writer_token, **{"X-LaunchDarkly-Payload-ID": payload_id}),
        send(sandbox, writer_token, **{"X-LaunchDarkly-Payload-ID": payload_id}),
        send(sandbox, writer_token, path=other_env, **{"X-LaunchDarkly-Payload-ID": payload_id}),
    ]

    assert [answer.status_code for answer in answers] == [202, 202, 202]
    assert counts(sandbox) == {
        "production": {"signup": 2, "order": 1},
        "test": {"signup": 2, "order": 1},
    }
    report = sandbox.events()
    assert report["payloads"] == 2 and report["duplicate_payloads"] == 1


def test_event_import__no_payload_id__accepted_and_counted_each_time(
    sandbox, writer_token, metrics
):
    """Contract EVT-8: the docs call X-LaunchDarkly-Payload-ID optional; without it a
    payload is accepted, and cannot be deduplicated."""
    for _ in range(2):
        assert (
            send(sandbox, writer_token, [SIGNUP], **{"X-LaunchDarkly-Payload-ID": None}).status_code
            == 202
        )

    assert counts(sandbox) == {"production": {"signup": 2}}


def test_event_import__not_json_content_type__400(sandbox, writer_token, metrics):
    """Content-Type must be application/json (the docs: "required")."""
    answer = send(sandbox, writer_token, **{"Content-Type": "text/plain"})

    assert answer.status_code == 400 and answer.json()["code"] == "invalid_request"


def test_event_import__connector_client__202_then_401_raises_unauthorized(
    sandbox, writer_token, metrics
):
    """Contract EVT-1 and EVT-2 through the connector's EventImportClient: its requests
    are accepted, and a token that may not import raises Unauthorized."""
    importer = EventImportClient(base_url=sandbox.base_url, token=writer_token)
    importer.import_events("default", "production", [ORDER], payload_id="batch-1")
    assert counts(sandbox) == {"production": {"order": 1}}
    sent = [r for r in sandbox.requests_since() if r["path"] == PATH]
    assert [r["status"] for r in sent] == [202]

    refused = EventImportClient(base_url=sandbox.base_url, token=sandbox.mint_token("reader"))
    with pytest.raises(Unauthorized) as raised:
        refused.import_events("default", "production", [ORDER], payload_id="batch-2")
    assert raised.value.status == 401 and raised.value.code == "unauthorized"

"""LaunchDarklyClient and EventImportClient over real HTTP against the sandbox."""

from __future__ import annotations

import re
import socket
import time

import pytest

import connector
from connector.launchdarkly.client import EventImportClient, LaunchDarklyClient
from connector.launchdarkly.errors import (
    ConcurrentChange,
    Conflict,
    Forbidden,
    InvalidRequest,
    MalformedResponse,
    NotFound,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
    Unauthorized,
    UnexpectedRedirect,
)
from connector.launchdarkly.ratelimit import RateLimitInfo

NUMERIC = {
    "key": "order-value",
    "name": "Order value",
    "kind": "custom",
    "eventKey": "order",
    "isNumeric": True,
    "unit": "USD",
    "successCriteria": "HigherThanBaseline",
    "unitAggregationType": "sum",
}


def conversion(key: str, **fields) -> dict:
    return {
        "key": key,
        "kind": "custom",
        "eventKey": key,
        "isNumeric": False,
        "unitAggregationType": "average",
        **fields,
    }


# --- operations ------------------------------------------------------------------------


def test_client__caller_identity_and_token__the_role_comes_from_the_token(sandbox, client):
    """Contract ID-1, TOK-1: an API token's caller identity has no scopes; its role is
    read with getToken and the tokenId caller identity gives."""
    identity = client.get_caller_identity()
    assert identity["authKind"] == "token" and "scopes" not in identity
    assert identity["accountId"] in {account["id"] for account in sandbox.state()["accounts"]}
    token = client.get_token(identity["tokenId"])
    assert (token["role"], token["serviceToken"]) == ("writer", False)


def test_client__experimentation_settings__read_and_replaced(client):
    """Contract EXP-1, EXP-2."""
    units = client.get_experimentation_settings("default")["randomizationUnits"]
    assert [(u["randomizationUnit"], u["default"]) for u in units] == [("user", True)]
    replaced = client.put_experimentation_settings(
        "default",
        [
            {"randomizationUnit": "user", "default": True},
            {"randomizationUnit": "organization", "default": False},
        ],
    )
    assert {u["randomizationUnit"] for u in replaced["randomizationUnits"]} == {
        "user",
        "organization",
    }


def test_client__optimistic_locking_error__raised_as_a_retryable_concurrent_change(sandbox, client):
    """Contract MET-409-1: the 409 of a race is ConcurrentChange (retryable), not the
    Conflict of a duplicate key."""
    client.create_metric("default", NUMERIC)
    sandbox.set_race("default", "order-value")
    with pytest.raises(ConcurrentChange) as raced:
        client.patch_metric(
            "default", "order-value", [{"op": "replace", "path": "/name", "value": "x"}]
        )
    assert raced.value.retryable and raced.value.code == "optimistic_locking_error"
    with pytest.raises(Conflict) as duplicate:
        client.create_metric("default", NUMERIC)
    assert not isinstance(duplicate.value, ConcurrentChange) and not duplicate.value.retryable


def test_client__get_member_me__returns_the_tokens_member(client):
    assert client.get_member()["email"] == "demo@example.com"


def test_client__projects_and_environments__follow_next_links_across_pages(client):
    assert {p["key"] for p in client.list_projects(limit=1)} == {"default", "mobile-app"}
    assert client.get_project("mobile-app")["name"] == "Mobile app"
    environments = client.list_environments("default", limit=1)
    assert {e["key"] for e in environments} == {"production", "test"}
    kinds = client.list_context_kinds("default")
    assert {"user", "organization", "device"} <= {k["key"] for k in kinds}


def test_client__list_metrics__follows_next_links_across_pages(sandbox, client):
    for index in range(55):
        tags = ["connector"] if index % 2 else []
        client.create_metric("default", conversion(f"event-{index:02}", tags=tags))
    seq = sandbox.requests_since()[-1]["seq"]

    keys = [m["key"] for m in client.list_metrics("default")]

    assert sorted(keys) == [f"event-{index:02}" for index in range(55)]
    pages = [r for r in sandbox.requests_since(seq) if r["path"].startswith("/api/v2/metrics")]
    assert [r["status"] for r in pages] == [200, 200]
    tagged = [m["key"] for m in client.list_metrics("default", filter="tags:connector", limit=10)]
    assert len(tagged) == 27


def test_client__list_metrics_limit_above_50__raises_value_error(client):
    with pytest.raises(ValueError):
        client.list_metrics("default", limit=51)


def test_client__metric_lifecycle__create_get_patch_delete(client):
    created = client.create_metric("default", NUMERIC)
    assert (created["key"], created["unit"], created["_version"]) == ("order-value", "USD", 1)
    assert client.get_metric("default", "order-value")["eventKey"] == "order"

    renamed = client.patch_metric(
        "default", "order-value", [{"op": "replace", "path": "/name", "value": "Revenue"}]
    )
    commented = client.patch_metric(
        "default",
        "order-value",
        [{"op": "add", "path": "/description", "value": "From Acme orders"}],
        comment="synced by the connector",
    )
    assert (renamed["name"], renamed["_version"]) == ("Revenue", 2)
    assert (commented["description"], commented["_version"]) == ("From Acme orders", 3)

    # LaunchDarkly deletes only archived metrics (contract MET-DELETE-1).
    with pytest.raises(InvalidRequest):
        client.delete_metric("default", "order-value")
    client.patch_metric(
        "default", "order-value", [{"op": "replace", "path": "/archived", "value": True}]
    )
    assert client.delete_metric("default", "order-value") is None
    with pytest.raises(NotFound):
        client.get_metric("default", "order-value")


# --- errors by status --------------------------------------------------------------------


def test_client__unknown_token__raises_unauthorized(make_client):
    with pytest.raises(Unauthorized) as raised:
        make_client("api-not-a-token").get_caller_identity()
    assert (raised.value.status, raised.value.code, raised.value.retryable) == (
        401,
        "unauthorized",
        False,
    )


def test_client__revoked_token__raises_unauthorized(sandbox, make_client):
    token = sandbox.mint_token("writer")
    sandbox.revoke_token(token)
    with pytest.raises(Unauthorized):
        make_client(token).get_caller_identity()


def test_client__reader_token_writing__raises_forbidden(sandbox, make_client):
    with pytest.raises(Forbidden) as raised:
        make_client(sandbox.mint_token("reader")).create_metric("default", conversion("signup"))
    assert raised.value.code == "forbidden"


def test_client__unknown_project__raises_not_found(client):
    with pytest.raises(NotFound):
        client.get_project("no-such-project")
    with pytest.raises(NotFound):
        list(client.list_metrics("no-such-project"))


def test_client__duplicate_key__raises_conflict(client):
    client.create_metric("default", conversion("signup"))
    with pytest.raises(Conflict) as raised:
        client.create_metric("default", conversion("signup"))
    assert raised.value.status == 409


def test_client__numeric_without_unit__raises_invalid_request_with_launchdarkly_message(client):
    body = {key: value for key, value in NUMERIC.items() if key != "unit"}
    with pytest.raises(InvalidRequest) as raised:
        client.create_metric("default", body)
    error = raised.value
    assert (error.status, error.code) == (400, "invalid_request")
    assert error.message == "unit: required for numeric metrics"
    assert error.request_id  # LaunchDarkly's id, for Support
    assert str(error) == "unit: required for numeric metrics (400 invalid_request)"


def test_client__malformed_patch__raises_invalid_request(client):
    client.create_metric("default", conversion("signup"))
    with pytest.raises(InvalidRequest) as raised:
        client.patch_metric("default", "signup", [{"op": "jump", "path": "/name"}])
    assert raised.value.status in (400, 422)


# --- rate limits -------------------------------------------------------------------------


def test_client__rate_limited__raises_with_wait_from_headers(sandbox, writer_token):
    seen: list[RateLimitInfo] = []
    client = LaunchDarklyClient(
        base_url=sandbox.base_url,
        token=writer_token,
        auth_kind="api_token",
        on_rate_limit=seen.append,
    )
    sandbox.set_limits(route_per_10s=1)
    before = time.time()
    with pytest.raises(RateLimited) as raised:
        for _ in range(3):  # one allowed per window; a third in case a window just ended
            client.get_project("default")

    error = raised.value
    assert (error.status, error.code, error.retryable) == (429, "rate_limited", True)
    # The sandbox's window here is 2 s, aligned to the clock as LaunchDarkly's are: when
    # the calls straddle a window's end, the 429 comes in the next one, 2 s later.
    assert error.reset_at is not None and before < error.reset_at <= before + 4.0
    # the wait is the time left in the window, at least 1 s
    assert 1.0 <= error.retry_after_s <= 2.0
    assert len(seen) >= 2 and all(info.route_remaining == 0 for info in seen)


def test_client__ip_rate_limited__waits_for_retry_after(sandbox, client):
    sandbox.set_limits(global_per_10s=1, retry_after_mode=True)
    with pytest.raises(RateLimited) as raised:
        for _ in range(3):  # one allowed per window; a third in case a window just ended
            client.get_caller_identity()
    assert raised.value.reset_at is None
    assert 1.0 <= raised.value.retry_after_s <= 2.0


def test_client__on_rate_limit__receives_every_answer_even_without_headers(sandbox, writer_token):
    seen: list[RateLimitInfo] = []
    client = LaunchDarklyClient(
        base_url=sandbox.base_url,
        token=writer_token,
        auth_kind="api_token",
        on_rate_limit=seen.append,
    )
    client.get_caller_identity()
    with pytest.raises(NotFound):
        client.get_project("missing")
    assert seen == [RateLimitInfo(), RateLimitInfo()]


# --- faults and transport ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("html", MalformedResponse),
        ("truncated", MalformedResponse),
        ("500", ServerError),
        ("503", ServerError),
        ("drop", TransportError),
        ("slow", Timeout),
    ],
)
def test_client__fault__raises_retryable_typed_error(sandbox, make_client, kind, error_type):
    client = make_client(timeout=(3.05, 0.5))
    sandbox.set_faults(rate=1, kinds=[kind], slow_ms=2000)
    with pytest.raises(error_type) as raised:
        client.list_context_kinds("default")
    assert type(raised.value) is error_type
    assert raised.value.retryable


def test_client__server_error__keeps_launchdarkly_code(sandbox, client):
    sandbox.set_faults(rate=1, kinds=["503"])
    with pytest.raises(ServerError) as raised:
        client.get_caller_identity()
    assert (raised.value.status, raised.value.code) == (503, "service_unavailable")


def test_client__connection_refused__raises_transport_error():
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = LaunchDarklyClient(
        base_url=f"http://127.0.0.1:{port}", token="t", auth_kind="api_token"
    )
    with pytest.raises(TransportError) as raised:
        client.get_caller_identity()
    assert type(raised.value) is TransportError


def test_client__redirect__raises_unexpected_redirect_without_following(make_fake_server):
    elsewhere = make_fake_server()
    server = make_fake_server()
    server.answer = (302, {"Location": f"{elsewhere.base_url}/steal"}, {})
    client = LaunchDarklyClient(base_url=server.base_url, token="secret", auth_kind="api_token")

    with pytest.raises(UnexpectedRedirect) as raised:
        client.get_caller_identity()

    assert raised.value.status == 302
    assert len(server.requests) == 1
    assert elsewhere.requests == []


def test_client__next_link_to_another_host__refused_before_sending(make_fake_server):
    elsewhere = make_fake_server()
    server = make_fake_server()
    page = {"items": [{"key": "a"}], "_links": {"next": {"href": f"{elsewhere.base_url}/p2"}}}
    server.answer = (200, {"Content-Type": "application/json"}, page)
    client = LaunchDarklyClient(base_url=server.base_url, token="secret", auth_kind="api_token")

    with pytest.raises(UnexpectedRedirect):
        list(client.list_projects())

    assert elsewhere.requests == []


def test_client__next_link_loops__raises_malformed_response(make_fake_server):
    server = make_fake_server()
    page = {"items": [{"key": "a"}], "_links": {"next": {"href": "/api/v2/projects?offset=1"}}}
    server.answer = (200, {"Content-Type": "application/json"}, page)
    client = LaunchDarklyClient(base_url=server.base_url, token="secret", auth_kind="api_token")
    with pytest.raises(MalformedResponse):
        list(client.list_projects())


def test_client__html_on_success__raises_malformed_response(make_fake_server):
    server = make_fake_server()
    server.answer = (200, {"Content-Type": "text/html"}, "<html>")  # a JSON string, not an object
    client = LaunchDarklyClient(base_url=server.base_url, token="secret", auth_kind="api_token")
    with pytest.raises(MalformedResponse):
        list(client.list_projects())


# --- headers -------------------------------------------------------------------------------


def test_client__every_request__carries_user_agent_and_api_version(sandbox, client):
    client.get_caller_identity()
    client.create_metric("default", conversion("signup"))
    list(client.list_metrics("default"))
    with pytest.raises(NotFound):
        client.delete_metric("default", "missing")

    logged = [r for r in sandbox.requests_since() if not r["path"].startswith("/_sandbox")]
    assert len(logged) == 4
    user_agent = re.compile(rf"MetricSync-Acme-int/{re.escape(connector.__version__)}")
    for request in logged:
        assert user_agent.fullmatch(request["user_agent"])
        assert request["ld_api_version"] == "20240415"
        assert request["headers"]["Accept"] == "application/json"


def test_client__source_product_setting__names_the_user_agent(sandbox, settings, make_client):
    settings.SOURCE_PRODUCT_NAME = "Globex"
    make_client().get_caller_identity()
    assert sandbox.requests_since()[-1]["user_agent"].startswith("MetricSync-Globex-int/")


def test_client__unknown_auth_kind__raises_value_error(sandbox):
    with pytest.raises(ValueError):
        LaunchDarklyClient(base_url=sandbox.base_url, token="t", auth_kind="basic")  # type: ignore[arg-type]


# --- event import ---------------------------------------------------------------------------


def test_event_import__same_payload_twice__sent_with_headers_and_counted_once(sandbox, client):
    account_id = sandbox.state()["accounts"][0]["id"]
    # LaunchDarkly counts events only for an event key that a metric measures.
    client.create_metric("default", NUMERIC)
    token = sandbox.mint_token("reader", permissions=["importEventData"])
    importer = EventImportClient(base_url=sandbox.base_url, token=token)
    events = [
        {
            "kind": "custom",
            "key": "order",
            "creationDate": 1_800_000_000_000,
            "contextKeys": {"user": "u1"},
            "metricValue": 42.5,
        },
        {
            "kind": "custom",
            "key": "order",
            "creationDate": 1_800_000_001_000,
            "contextKeys": {"user": "u2"},
        },
    ]

    importer.import_events("default", "production", events, payload_id="batch-1")
    importer.import_events("default", "production", events, payload_id="batch-1")

    assert sandbox.events()["counts"][account_id]["default"]["production"] == {"order": 2}
    sent = [r for r in sandbox.requests_since() if r["path"].startswith("/v2/event-data-import/")]
    assert [r["status"] for r in sent] == [202, 202]
    headers = sent[0]["headers"]
    assert headers["X-LaunchDarkly-Event-Schema"] == "4"
    assert headers["X-LaunchDarkly-Payload-ID"] == "batch-1"
    assert headers["Content-Type"] == "application/json"
    assert sent[0]["user_agent"] == f"MetricImport-Acme-int/{connector.__version__}"


def test_event_import__token_without_permission__raises_unauthorized(sandbox):
    """Contract EVT-2: LaunchDarkly answers 401 to a token without importEventData."""
    importer = EventImportClient(base_url=sandbox.base_url, token=sandbox.mint_token("reader"))
    event = {"kind": "custom", "key": "order", "creationDate": 1, "contextKeys": {"user": "u"}}
    with pytest.raises(Unauthorized):
        importer.import_events("default", "production", [event], payload_id="p")

"""The catalog's HTTP API: batches, bad input, idempotency, isolation, auth."""

import json
from urllib.parse import quote

import pytest
from django.test import Client

from connector.sources.api import MAX_BODY_BYTES
from connector.sources.models import ApiKey, SourceEvent
from connector.sources.services import api_key_create, api_key_revoke
from tenants.models import AuditEvent, Role
from tenants.scope import tenant_scope
from tests.factories import MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db
EVENTS = "/api/v1/events"


def events_of(tenant):
    with tenant_scope(tenant):
        return {e.key: e for e in SourceEvent.objects.all()}


def test_events_api__good_batch__all_created_and_listed(api, workspace):
    batch = [
        {"key": "checkout.completed", "name": "Checkout completed"},
        {
            "key": "cart value/USD: total",
            "value_kind": "numeric",
            "unit": "USD",
            "first_seen": "2026-01-01T10:00:00Z",
            "last_seen": "2026-01-30T10:00:00+01:00",
            "volume": 1200,
            "description": "Order total",
        },
    ]
    response = api.post(EVENTS, {"events": batch})
    assert response.status_code == 200
    body = response.json()
    assert body["counts"] == {"created": 2, "updated": 0, "unchanged": 0, "rejected": 0}
    assert [(r["index"], r["key"], r["status"]) for r in body["results"]] == [
        (0, "checkout.completed", "created"),
        (1, "cart value/USD: total", "created"),
    ]
    stored = events_of(workspace)["cart value/USD: total"]
    assert (stored.value_kind, stored.unit, stored.volume, stored.origin) == (
        "numeric",
        "USD",
        1200,
        "api",
    )
    listed = api.get(EVENTS).json()
    assert [e["key"] for e in listed["events"]] == ["cart value/USD: total", "checkout.completed"]
    assert listed["events"][1]["unit"] is None


def test_events_api__batch_with_bad_items__good_stored_bad_explained(api, workspace):
    batch = [
        {"key": "good.one"},
        {"name": "no key"},
        {"key": "x" * 201},
        {"key": "price", "value_kind": "numeric"},
        {"key": "twice"},
        {"key": "twice", "name": "again"},
        {"key": 42, "volume": "many"},
        {"key": "kind", "value_kind": "gauge"},
        {"key": "dates", "first_seen": "yesterday"},
        "not an object",
        {"key": "extra", "colour": "blue"},
        {"key": "good.two", "value_kind": "numeric", "unit": "ms"},
    ]
    response = api.post(EVENTS, {"events": batch})
    assert response.status_code == 200
    results = response.json()["results"]
    by_index = {r["index"]: r for r in results}
    assert {r["index"] for r in results if r["status"] == "created"} == {0, 11}
    assert response.json()["counts"]["rejected"] == 10

    def reasons(index):
        return {(e["field"], e["reason"]) for e in by_index[index]["errors"]}

    assert ("key", "is required") in reasons(1)
    assert ("key", "is 201 characters; at most 200") in reasons(2)
    assert any(f == "unit" and "required for numeric" in r for f, r in reasons(3))
    assert any("more than once" in r for _, r in reasons(4))
    assert any("more than once" in r for _, r in reasons(5))
    assert {f for f, _ in reasons(6)} == {"key", "volume"}
    assert any(f == "value_kind" for f, _ in reasons(7))
    assert any(f == "first_seen" for f, _ in reasons(8))
    assert reasons(9) == {("", "each event definition must be a JSON object")}
    assert any(f == "colour" and "unknown field" in r for f, r in reasons(10))
    assert set(events_of(workspace)) == {"good.one", "good.two"}


def test_events_api__same_batch_twice__second_time_all_unchanged(api, workspace):
    batch = [
        {"key": f"event.{i}", "last_seen": "2026-01-02T00:00:00Z", "volume": i} for i in range(50)
    ]
    assert api.post(EVENTS, {"events": batch}).json()["counts"]["created"] == 50
    second = api.post(EVENTS, {"events": batch}).json()
    assert second["counts"] == {"created": 0, "updated": 0, "unchanged": 50, "rejected": 0}
    assert {r["status"] for r in second["results"]} == {"unchanged"}


def test_events_api__update__seen_times_only_widen_and_absent_fields_kept(api, workspace):
    api.post(
        EVENTS,
        {
            "events": [
                {
                    "key": "e",
                    "name": "E",
                    "description": "kept",
                    "first_seen": "2026-01-10T00:00:00Z",
                    "last_seen": "2026-01-20T00:00:00Z",
                }
            ]
        },
    )
    later = {
        "key": "e",
        "name": "E2",
        "first_seen": "2026-01-15T00:00:00Z",
        "last_seen": "2026-01-25T00:00:00Z",
    }
    result = api.post(EVENTS, {"events": [later]}).json()["results"][0]
    assert result["status"] == "updated"
    got = api.get(f"{EVENTS}/e").json()
    assert got["name"] == "E2" and got["description"] == "kept"
    assert got["first_seen"] == "2026-01-10T00:00:00Z"
    assert got["last_seen"] == "2026-01-25T00:00:00Z"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, "body"),
        (b"", 400, "body"),
        (b"\xff\xfe{}", 400, "body"),
        (b"[]", 400, "body"),
        (b'{"events": {}}', 400, "events"),
        (b'{"events": []}', 400, "events"),
        (b'{"events": [], "extra": 1}', 400, "extra"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "body"),
    ],
)
def test_events_api__malformed_body__400_json_and_nothing_written(
    api, workspace, body, status, field
):
    response = api.post(EVENTS, body, raw=True)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["errors"][0]["field"] == field
    assert events_of(workspace) == {}


def test_events_api__1001_items__413_and_nothing_written(api, workspace):
    response = api.post(EVENTS, {"events": [{"key": f"k{i}"} for i in range(1001)]})
    assert response.status_code == 413
    error = response.json()["errors"][0]
    assert error["field"] == "events" and "at most 1000" in error["reason"]
    assert events_of(workspace) == {}
    assert api.post(EVENTS, {"events": [{"key": f"k{i}"} for i in range(1000)]}).status_code == 200


def test_events_api__10_mb_body__413_without_reading_it(api, workspace):
    body = json.dumps({"events": [{"key": "k", "description": "x" * (10 * 1024 * 1024)}]})
    response = api.post(EVENTS, body, raw=True)
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "body"
    assert events_of(workspace) == {}


def test_events_api__declared_length_too_big__413_before_reading(client, raw_key):
    # The view must decide from Content-Length alone: the stream here is tiny.
    response = client.generic(
        "POST",
        EVENTS,
        data=b"{}",
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw_key}"},
        CONTENT_LENGTH=str(MAX_BODY_BYTES + 1),
    )
    assert response.status_code == 413


def test_events_api__no_key_unknown_key_or_revoked_key__401_and_nothing_written(
    api_as, workspace, owner
):
    with tenant_scope(workspace):
        api_key, raw = api_key_create(actor=owner.user, name="to revoke")
        api_key_revoke(actor=owner.user, api_key=api_key)
    body = {"events": [{"key": "sneaky"}]}
    for raw_key in (None, "lmc_unknown", raw):
        client = api_as(raw_key)
        for response in (
            client.post(EVENTS, body),
            client.get(EVENTS),
            client.get(f"{EVENTS}/sneaky"),
            client.post("/api/v1/events:archive", {"keys": ["sneaky"]}),
        ):
            assert response.status_code == 401
            assert response["WWW-Authenticate"].startswith("Bearer")
            assert response.json()["errors"][0]["field"] == "Authorization"
    assert events_of(workspace) == {}


def test_events_api__key_of_workspace_b__cannot_see_or_touch_workspace_a(api, api_as, workspace):
    api.post(EVENTS, {"events": [{"key": "a.secret"}]})
    other = TenantFactory()
    other_owner = MembershipFactory(tenant=other, role=Role.OWNER)
    with tenant_scope(other):
        _, raw_b = api_key_create(actor=other_owner.user, name="b")
    b = api_as(raw_b)
    assert b.get(EVENTS).json()["events"] == []
    assert b.get(f"{EVENTS}/a.secret").status_code == 404
    assert b.post("/api/v1/events:archive", {"keys": ["a.secret"]}).json()["results"] == [
        {"key": "a.secret", "status": "not_found"}
    ]
    # B writing the same key creates B's own event; A's is untouched.
    assert (
        b.post(EVENTS, {"events": [{"key": "a.secret", "name": "B's"}]}).json()["results"][0][
            "status"
        ]
        == "created"
    )
    assert events_of(workspace)["a.secret"].name == ""
    assert events_of(workspace)["a.secret"].removed_at is None


@pytest.mark.parametrize("key", ["a/b/c", "with space", "dots.and:colons", "100%", "ünï/çødé?#"])
def test_events_api__get_one__keys_with_special_characters(api, key):
    api.post(EVENTS, {"events": [{"key": key}]})
    response = api.get(f"{EVENTS}/{quote(key, safe='')}")
    assert response.status_code == 200
    assert response.json()["key"] == key


def test_events_api__get_missing__404_json(api):
    response = api.get(f"{EVENTS}/{quote('nope/nothing', safe='')}")
    assert response.status_code == 404
    assert response.json()["errors"][0]["field"] == "key"


def test_events_api__archive__marks_removed_and_reports_each_key(api, workspace):
    api.post(EVENTS, {"events": [{"key": "old"}, {"key": "kept"}]})
    response = api.post("/api/v1/events:archive", {"keys": ["old", "old", "ghost"]})
    assert response.status_code == 200
    assert response.json()["results"] == [
        {"key": "old", "status": "archived"},
        {"key": "ghost", "status": "not_found"},
    ]
    again = api.post("/api/v1/events:archive", {"keys": ["old"]}).json()["results"]
    assert again == [{"key": "old", "status": "already_archived"}]
    assert [e["key"] for e in api.get(EVENTS).json()["events"]] == ["kept"]
    assert [e["key"] for e in api.get(EVENTS, {"removed": "true"}).json()["events"]] == ["old"]
    assert len(api.get(EVENTS, {"removed": "all"}).json()["events"]) == 2
    # Sent again, an archived event exists again.
    assert api.post(EVENTS, {"events": [{"key": "old"}]}).json()["results"][0]["status"] == (
        "updated"
    )
    assert events_of(workspace)["old"].removed_at is None
    with tenant_scope(workspace):
        assert AuditEvent.objects.filter(action="events.archived").count() == 1


def test_events_api__list__filters_and_cursor_pages_through_everything(api):
    batch = [{"key": f"e{i:03}"} for i in range(25)] + [
        {"key": "revenue", "value_kind": "numeric", "unit": "USD", "name": "Money"}
    ]
    api.post(EVENTS, {"events": batch})
    seen, cursor = [], None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = api.get(EVENTS, params).json()
        seen += [e["key"] for e in page["events"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(e["key"] for e in batch)
    numeric = api.get(EVENTS, {"value_kind": "numeric"}).json()["events"]
    assert [e["key"] for e in numeric] == ["revenue"]
    assert [e["key"] for e in api.get(EVENTS, {"q": "mone"}).json()["events"]] == ["revenue"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"value_kind": "gauge"}, "value_kind"),
        ({"removed": "maybe"}, "removed"),
        ({"cursor": "%%%"}, "cursor"),
    ],
)
def test_events_api__list_bad_parameter__400_names_it(api, params, field):
    response = api.get(EVENTS, params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


def test_events_api__wrong_method__405_json_with_allow(api):
    response = api.client.put(EVENTS, headers=api._headers())
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"
    assert response.json()["errors"][0]["field"] == "method"


def test_events_api__records_last_used_cheaply(api, workspace):
    api.get(EVENTS)
    with tenant_scope(workspace):
        first = ApiKey.objects.get().last_used_at
    assert first is not None
    api.get(EVENTS)  # within a minute: no second write
    with tenant_scope(workspace):
        assert ApiKey.objects.get().last_used_at == first


def test_events_api__batch_writes_in_constant_queries(api, django_assert_max_num_queries):
    api.post(EVENTS, {"events": [{"key": f"k{i}"} for i in range(500)]})
    batch = [{"key": f"k{i}", "volume": 7} for i in range(1000)]
    # auth + last_used + read + insert + update(s) + audit + savepoints; never per item
    with django_assert_max_num_queries(15):
        response = api.post(EVENTS, {"events": batch})
    assert response.json()["counts"] == {
        "created": 500,
        "updated": 500,
        "unchanged": 0,
        "rejected": 0,
    }


def test_events_api__odd_but_valid_offsets__stored_in_utc(api):
    # Found by schemathesis: PostgreSQL refuses offsets beyond 15:59.
    batch = [
        {"key": "far", "first_seen": "8322-12-18T19:04:15.3677+17:26"},
        {"key": "edge", "last_seen": "9999-12-31T23:00:00-05:00"},
    ]
    results = api.post(EVENTS, {"events": batch}).json()["results"]
    assert results[0]["status"] == "created"
    assert api.get(f"{EVENTS}/far").json()["first_seen"] == "8322-12-18T01:38:15.367700Z"
    assert results[1]["errors"] == [
        {"field": "last_seen", "reason": "is out of the supported range of date-times"}
    ]


def test_events_api__csrf_enforcing_client_with_session__key_alone_suffices(raw_key, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner.user)  # a session cookie, and still no CSRF token needed
    response = client.post(
        EVENTS,
        data=json.dumps({"events": [{"key": "no.csrf"}]}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw_key}"},
    )
    assert response.status_code == 200
    assert response.json()["counts"]["created"] == 1

"""Metric validation, JSON Patch and listing rules."""

from __future__ import annotations

import pytest
import requests

CONVERSION = {"key": "m", "kind": "custom", "isNumeric": False, "eventKey": "e"}
NUMERIC = {**CONVERSION, "isNumeric": True, "unit": "ms", "successCriteria": "LowerThanBaseline"}


@pytest.fixture
def api(sandbox, writer_token):
    session = requests.Session()
    session.headers["Authorization"] = writer_token
    base = f"{sandbox.base_url}/api/v2/metrics/default"

    def call(method: str, path: str = "", **kwargs):
        return session.request(method, base + path, timeout=5, **kwargs)

    return call


@pytest.mark.parametrize(
    "body",
    [
        {**CONVERSION, "kind": "trace"},
        {**CONVERSION, "unitAggregationType": "median"},
        {**CONVERSION, "successCriteria": "Higher"},
        {**CONVERSION, "analysisType": "median"},
        {**CONVERSION, "analysisType": "percentile"},
        {**CONVERSION, "analysisType": "percentile", "percentileValue": 101},
        {**CONVERSION, "isNumeric": "no"},
        {k: v for k, v in CONVERSION.items() if k != "eventKey"},
        {k: v for k, v in CONVERSION.items() if k != "isNumeric"},
        {k: v for k, v in NUMERIC.items() if k != "unit"},
        {k: v for k, v in NUMERIC.items() if k != "successCriteria"},
        {**CONVERSION, "key": "has space"},
        {**CONVERSION, "randomizationUnits": ["tenant"]},
        {"kind": "custom", "eventKey": "e", "isNumeric": False},
    ],
)
# Contract MET-VALID-1: MetricPost's rules; a broken body is 400 and creates nothing.
def test_metric_create__invalid_body__400_and_not_created(api, body):
    answer = api("POST", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["code"] == "invalid_request"
    assert api("GET").json()["totalCount"] == 0


def test_metric_create__unknown_fields__ignored(api):
    answer = api("POST", json={**CONVERSION, "colour": "red", "_id": "mine"})
    assert answer.status_code == 201
    assert "colour" not in answer.json() and answer.json()["_id"] != "mine"


def test_metric_patch__protected_paths__400(api):
    api("POST", json=CONVERSION)
    for path in ("/key", "/_version", "/_links/self"):
        answer = api("PATCH", "/m", json=[{"op": "replace", "path": path, "value": "x"}])
        assert answer.status_code == 400, path


def test_metric_patch__result_revalidated__400(api):
    api("POST", json=CONVERSION)
    answer = api("PATCH", "/m", json=[{"op": "replace", "path": "/isNumeric", "value": True}])
    assert answer.status_code == 400 and "unit" in answer.json()["message"]
    assert api("GET", "/m").json()["_version"] == 1


def test_metric_patch__wrapped_with_comment_and_version_test__applied(api):
    api("POST", json=NUMERIC)
    patch = [
        {"op": "test", "path": "/_version", "value": 1},
        {"op": "replace", "path": "/unit", "value": "s"},
        {"op": "add", "path": "/description", "value": "Latency"},
        {"op": "remove", "path": "/randomizationUnits"},
    ]
    answer = api("PATCH", "/m", json={"comment": "tune", "patch": patch})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["unit"], body["description"], body["_version"]) == ("s", "Latency", 2)
    assert "randomizationUnits" not in body
    stale = api("PATCH", "/m", json=patch[:2])
    assert stale.status_code == 409 and stale.json()["code"] == "optimistic_locking_error"


def test_metric_patch__missing_path__400(api):
    api("POST", json=CONVERSION)
    answer = api("PATCH", "/m", json=[{"op": "remove", "path": "/unit"}])
    assert answer.status_code == 400


# Contract MET-LIST-1, PAG-1: pages of at most 50 and the _links of each page.
def test_metric_list__pages_and_limit_clamped_to_50(api):
    for index in range(55):
        assert api("POST", json={**CONVERSION, "key": f"m{index:02}", "name": f"Metric {index}"}).ok
    first = api("GET", params={"limit": 500}).json()
    assert len(first["items"]) == 50 and first["totalCount"] == 55
    assert "first" not in first["_links"] and "prev" not in first["_links"]
    assert first["_links"]["next"]["href"].endswith("limit=50&offset=50")
    second = api("GET", params={"limit": 500, "offset": 50}).json()
    assert len(second["items"]) == 5 and "next" not in second["_links"]
    assert second["_links"]["prev"]["href"].endswith("offset=0")
    page = api("GET").json()
    assert len(page["items"]) == 20
    found = api("GET", params={"filter": "query:Metric 54"}).json()
    assert [m["key"] for m in found["items"]] == ["m54"]
    by_name = api("GET", params={"sort": "-name", "limit": 1}).json()
    assert by_name["items"][0]["name"] == "Metric 9"


def test_metric_list__unknown_filter__400(api):
    assert api("GET", params={"filter": "colour:red"}).status_code == 400


def test_metric__method_override__patch_over_post(api):
    api("POST", json=CONVERSION)
    answer = api(
        "POST",
        "/m",
        json=[{"op": "replace", "path": "/name", "value": "Over"}],
        headers={"X-HTTP-Method-Override": "PATCH"},
    )
    assert answer.status_code == 200 and answer.json()["name"] == "Over"

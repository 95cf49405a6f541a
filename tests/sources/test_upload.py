"""Catalog upload: JSON and CSV, previewed against the catalog before anything is saved."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from connector.sources.models import CatalogUpload, SourceEvent
from connector.sources.upload import UploadRejected, parse_upload
from tenants.models import AuditEvent
from tenants.scope import tenant_scope
from tests.sources.factories import SourceEventFactory

pytestmark = pytest.mark.django_db


def upload(client, workspace, name, content):
    return client.post(
        reverse("sources:upload", args=[workspace.slug]),
        {"file": SimpleUploadedFile(name, content)},
    )


def catalog(workspace):
    with tenant_scope(workspace):
        return {e.key: e for e in SourceEvent.objects.all()}


def test_upload__csv__preview_then_apply(client_of, admin, workspace):
    SourceEventFactory(tenant=workspace, key="same", name="Same")
    SourceEventFactory(tenant=workspace, key="renamed", name="Old name")
    content = (
        b"key,name,value_kind,unit,volume\n"
        b"same,Same,,,\n"
        b"renamed,New name,,,\n"
        b'new/one,"Quoted, with comma",numeric,USD,12\n'
        b"bad,,numeric,,\n"
        b"short,row\n"
    )
    client = client_of(admin)
    response = upload(client, workspace, "events.csv", content)
    assert response.status_code == 302
    preview = client.get(response["Location"])
    assert preview.status_code == 200
    rows = {row.line: row for row in preview.context["preview"].rows}
    assert {line: row.action for line, row in rows.items()} == {
        2: "unchanged",
        3: "change",
        4: "add",
        5: "error",
        6: "error",
    }
    assert rows[3].changed == ["name"]
    assert "required for numeric" in rows[5].errors[0]["reason"]
    assert "has 2 cells" in rows[6].errors[0]["reason"]
    assert catalog(workspace)["renamed"].name == "Old name"  # nothing written yet
    assert "new/one" not in catalog(workspace)

    upload_id = preview.context["upload"].pk
    # Rows 5 and 6 have errors: applying means choosing to skip exactly those lines.
    applied = client.post(
        reverse("sources:upload_apply", args=[workspace.slug, upload_id]), {"skip_lines": "5,6"}
    )
    assert applied.status_code == 302
    events = catalog(workspace)
    assert events["renamed"].name == "New name"
    assert (events["new/one"].name, events["new/one"].unit, events["new/one"].volume) == (
        "Quoted, with comma",
        "USD",
        12,
    )
    assert events["new/one"].origin == "upload"
    assert "bad" not in events and "short" not in events
    with tenant_scope(workspace):
        assert AuditEvent.objects.filter(action="events.upserted", target="events.csv").exists()
    # Applying twice is refused, and changes nothing.
    again = client.post(
        reverse("sources:upload_apply", args=[workspace.slug, upload_id]), {"skip_lines": "5,6"}
    )
    assert again.status_code == 302
    follow = client.get(again["Location"])
    assert "applied already" in follow.content.decode()


def test_upload__json__array_with_line_numbers_then_apply(client_of, admin, workspace):
    content = json.dumps(
        [
            {"key": "signup", "name": "Sign-up"},
            {"key": "revenue", "value_kind": "numeric", "unit": "USD"},
            {"key": "signup"},
        ],
        indent=2,
    ).encode()
    client = client_of(admin)
    response = upload(client, workspace, "catalog.json", content)
    preview = client.get(response["Location"]).context["preview"]
    assert [(row.line, row.key, row.action) for row in preview.rows] == [
        (2, "signup", "error"),
        (6, "revenue", "add"),
        (11, "signup", "error"),
    ]
    assert "lines 2, 11" in preview.rows[0].errors[0]["reason"]
    upload_id = CatalogUpload.objects.unscoped().get().pk
    client.post(
        reverse("sources:upload_apply", args=[workspace.slug, upload_id]), {"skip_lines": "2,11"}
    )
    assert set(catalog(workspace)) == {"revenue"}


def test_upload__json_object_as_the_api_takes_it():
    text = b'{"meta": {"x": [1, 2]},\n "events": [\n  {"key": "a"},\n  {"key": "b"}\n]}'
    file_format, rows = parse_upload(filename="x.json", data=text)
    assert file_format == "json"
    assert [(r["line"], r["definition"]["key"]) for r in rows] == [(3, "a"), (4, "b")]


def test_upload__csv_wrong_header__clear_message_and_the_offending_line(
    client_of, admin, workspace
):
    response = upload(client_of(admin), workspace, "e.csv", b"event_name,volume\nsignup,3\n")
    assert response.status_code == 400
    page = response.content.decode()
    assert "The CSV header is wrong" in page and "&#x27;event_name&#x27;" in page
    assert (
        '<td class="col-line">1</td><td class="col-content"><code>event_name,volume</code></td>'
        in page
    )
    assert CatalogUpload.objects.unscoped().count() == 0


def test_upload__csv_not_utf8__clear_message_and_the_offending_lines(client_of, admin, workspace):
    content = "key,name\nok,Fine\ncafé,Crème brûlée\n".encode("latin-1")
    response = upload(client_of(admin), workspace, "e.csv", content)
    assert response.status_code == 400
    page = response.content.decode()
    assert "not UTF-8" in page
    assert '<td class="col-line">3</td>' in page and "byte 0xE9" in page
    assert '<td class="col-line">2</td>' not in page  # only the offending line
    assert catalog(workspace) == {}


def test_upload__broken_json__message_with_line_and_column():
    with pytest.raises(UploadRejected) as caught:
        parse_upload(filename="x.json", data=b'[\n {"key": "a"},\n {"key": }\n]')
    assert "line 3" in caught.value.message
    assert (3, ' {"key": }') in caught.value.lines


def test_upload__member__not_found(client_of, member, workspace):
    response = client_of(member).get(reverse("sources:upload", args=[workspace.slug]))
    assert response.status_code == 404

"""Occurrences sent in a file: each line previewed with what it would become (and why
it would be refused), the readable ones sent once, exactly as the track API would."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Sum
from django.urls import reverse

from connector.imports.models import ImportCount, Occurrence, OccurrenceUpload
from connector.imports.upload import MAX_ROWS, MAX_UPLOAD_BYTES, parse_upload
from connector.sources.models import SourceEvent
from tenants.scope import tenant_scope
from tests.imports.conftest import NUMERIC, UNMAPPED
from tests.imports.test_track import drain_all

pytestmark = pytest.mark.django_db

NOW_MS = lambda: int(time.time() * 1000)  # noqa: E731


def csv_file() -> bytes:
    recent_iso = (datetime.now(UTC) - timedelta(minutes=2)).isoformat()
    lines = [
        "event,timestamp,value,user_id,prop.duration",
        "signup,,,u-1,",  # 2 accepted
        f"checkout,{recent_iso},,u-2,",  # 3 accepted, ISO 8601
        f"{NUMERIC},{NOW_MS() - 60_000},812.5,u-3,",  # 4 accepted, unix ms
        f"{NUMERIC},,,u-4,95",  # 5 accepted: the event's value property
        "no_such_event,,,u-5,",  # 6 unknown event
        "signup,,,,",  # 7 no context
        f"{NUMERIC},,fast,u-6,",  # 8 not a number
        f"signup,{NOW_MS() + 3_600_000},,u-7,",  # 9 in the future
        f"{UNMAPPED},,,u-8,",  # 10 not mapped
        "signup,,,u-9",  # 11 a cell short
        '"signup,,,u-10,',  # 12 a quote that never closes
        "",
        "checkout,,,u-11,",  # 14 accepted: read on its own after the broken quote
    ]
    return "\n".join(lines).encode()


CSV_REFUSED = [
    (6, "event", "is not in the workspace's catalog"),
    (7, "contexts", "must map identities to keys"),
    (8, "value", "must be a number"),
    (9, "timestamp", "is in the future"),
]
CSV_UNREADABLE = [
    (11, "has 4 cells; the header has 5"),
    (12, "a quote opens here"),
]


def jsonl_file() -> bytes:
    lines = [
        '{"event": "signup", "contexts": {"user_id": "u-1"}}',  # 1 accepted
        "",
        '{"event": "load_time", "value": 12, "contexts": {"account_id": "acme"}}',  # 3 accepted
        '{"event": "no_such_event", "contexts": {"user_id": "u-2"}}',  # 4
        '{"event": "signup"}',  # 5
        '{"event": "load_time", "value": "slow", "contexts": {"user_id": "u-3"}}',  # 6
        f'{{"event": "signup", "timestamp": {NOW_MS() + 3_600_000}, '
        '"contexts": {"user_id": "u-4"}}',  # 7
        '{"event": "signup", "contexts": {',  # 8 broken JSON
        "[1, 2]",  # 9 not an object
        '{"event": "page_view", "contexts": {"user_id": "u-5"}}',  # 10 not mapped
    ]
    return "\n".join(lines).encode()


JSONL_REFUSED = [
    (4, "event", "is not in the workspace's catalog"),
    (5, "contexts", "must map identities to keys"),
    (6, "value", "must be a number"),
    (7, "timestamp", "is in the future"),
]
JSONL_UNREADABLE = [(8, "is not valid JSON"), (9, "must be one occurrence, a JSON object")]


def send(client, workspace, name, data):
    return client.post(
        reverse("imports:upload", args=[workspace.slug]),
        {"file": SimpleUploadedFile(name, data)},
    )


def preview_rows(page: str) -> dict[int, tuple[str, str]]:
    """Line -> (kind, the row's text) of the preview's tables."""
    rows = {}
    for kind, line, rest in re.findall(
        r'<tr class="row-(\w+)">\s*<td class="col-line">(\d+)</td>(.*?)</tr>', page, re.S
    ):
        rows[int(line)] = (kind, html.unescape(re.sub(r"<[^>]+>", " ", rest)))
    return rows


def facts(page: str) -> dict[str, int]:
    return {name: int(count) for name, count in re.findall(r"<dt>([^<]+)</dt><dd>(\d+)", page)}


def received_totals(workspace):
    with tenant_scope(workspace):
        return ImportCount.objects.filter(environment_key="").aggregate(
            received=Sum("received"), refused=Sum("refused"), not_mapped=Sum("not_mapped")
        )


@pytest.mark.parametrize(
    ("name", "data", "refused", "unreadable", "imported"),
    [
        (
            "occurrences.csv",
            csv_file,
            CSV_REFUSED,
            CSV_UNREADABLE,
            {"signup": 1, "checkout": 2, NUMERIC: 2},
        ),
        (
            "occurrences.jsonl",
            jsonl_file,
            JSONL_REFUSED,
            JSONL_UNREADABLE,
            {"signup": 1, NUMERIC: 1},
        ),
    ],
)
def test_upload__good_and_bad_lines__preview_names_each_reason_apply_sends_the_good_once(
    importing, workspace, name, data, refused, unreadable, imported
):
    client = importing.client
    accepted = sum(imported.values())

    answer = send(client, workspace, name, data())

    assert answer.status_code == 302, answer.content.decode()
    upload = OccurrenceUpload.objects.unscoped().get()
    assert answer["Location"] == reverse("imports:upload_preview", args=[workspace.slug, upload.pk])
    page = client.get(answer["Location"]).content.decode()
    assert facts(page) == {
        "Accepted": accepted,
        "Refused": len(refused),
        "Not mapped": 1,
        "Cannot be read": len(unreadable),
    }
    rows = preview_rows(page)
    for line, field, reason in refused:
        kind, text = rows[line]
        assert kind == "refused" and field in text and reason in text, (line, text)
    for line, reason in unreadable:
        kind, text = rows[line]
        assert kind == "error" and reason in text, (line, text)
    assert sum(kind == "accepted" for kind, _ in rows.values()) == accepted
    skip = ",".join(str(line) for line, _ in unreadable)
    sendable = accepted + len(refused) + 1
    assert re.search(r'<button type="submit" class="primary" disabled[^>]*>Apply</button>', page)
    assert (
        f'value="{skip}">Apply the {sendable} valid rows, skipping lines '
        f"{unreadable[0][0]} and {unreadable[1][0]}</button>"
    ) in page
    with tenant_scope(workspace):
        assert Occurrence.objects.count() == 0  # the preview stores nothing

    apply_url = reverse("imports:upload_apply", args=[workspace.slug, upload.pk])
    # The primary Apply, disabled on the page, is refused by the server too.
    refused_apply = client.post(apply_url, follow=True)
    assert "Nothing was sent" in refused_apply.content.decode()
    with tenant_scope(workspace):
        assert Occurrence.objects.count() == 0

    applied = client.post(apply_url, {"skip_lines": skip}, follow=True)

    assert applied.redirect_chain[-1][0] == reverse("imports:status", args=[workspace.slug])
    assert (
        f"{accepted} occurrences accepted, {len(refused)} refused, 1 not mapped"
        in applied.content.decode()
    )
    with tenant_scope(workspace):
        assert Occurrence.objects.count() == accepted
    totals = received_totals(workspace)
    assert totals == {"received": accepted + 1, "refused": len(refused), "not_mapped": 1}

    again = client.post(apply_url, {"skip_lines": skip}, follow=True)

    assert "was sent already" in again.content.decode()
    with tenant_scope(workspace):
        assert Occurrence.objects.count() == accepted
    assert received_totals(workspace) == totals

    drain_all(workspace)

    assert importing.imported() == imported


def test_upload__every_line_readable__apply_enabled_sends_all(importing, workspace):
    client = importing.client
    data = b"event,user_id,account_id\nsignup,u-1,acme\ncheckout,,acme\n"
    location = send(client, workspace, "o.csv", data)["Location"]
    page = client.get(location).content.decode()
    assert '<button type="submit" class="primary">Apply</button>' in page
    assert "skipping" not in page

    applied = client.post(location + "apply/", follow=True)

    assert "2 occurrences accepted, 0 refused, 0 not mapped" in applied.content.decode()
    drain_all(workspace)
    assert importing.imported() == {"signup": 1, "checkout": 1}


def test_upload__member__answered_like_a_missing_page_nothing_stored(
    importing, client, member, workspace
):
    with tenant_scope(workspace):
        upload = OccurrenceUpload.objects.create(
            tenant=workspace,
            filename="o.jsonl",
            file_format="jsonl",
            rows=[
                {
                    "line": 1,
                    "occurrence": {"event": "signup", "contexts": {"user_id": "u"}},
                    "errors": [],
                }
            ],
        )
    client.force_login(member.user)

    form = client.get(reverse("imports:upload", args=[workspace.slug]))
    posted = send(client, workspace, "o.jsonl", jsonl_file())
    shown = client.get(reverse("imports:upload_preview", args=[workspace.slug, upload.pk]))
    applied = client.post(reverse("imports:upload_apply", args=[workspace.slug, upload.pk]))

    assert [r.status_code for r in (form, posted, shown, applied)] == [404] * 4
    upload.refresh_from_db()
    assert upload.applied_at is None
    assert OccurrenceUpload.objects.unscoped().count() == 1
    with tenant_scope(workspace):
        assert Occurrence.objects.count() == 0


@pytest.mark.parametrize("over", [1024, 512 * 1024])  # caught by the handler; by the length
def test_upload__file_over_5_mb__refused_with_the_limit_named(importing, workspace, over):
    line = b'{"event": "signup", "contexts": {"user_id": "a-rather-long-user-key"}}\n'
    data = line * ((MAX_UPLOAD_BYTES + over) // len(line) + 1)

    answer = send(importing.client, workspace, "big.jsonl", data)

    assert answer.status_code == 413
    assert "larger than 5 MB" in answer.content.decode()
    assert not OccurrenceUpload.objects.unscoped().exists()


def test_upload__more_than_50000_rows__refused_with_the_limit_named(importing, workspace):
    data = b"event,user_id\n" + b"signup,u\n" * (MAX_ROWS + 1)

    answer = send(importing.client, workspace, "many.csv", data)

    assert answer.status_code == 400
    assert "more than 50,000 occurrences" in answer.content.decode()
    assert not OccurrenceUpload.objects.unscoped().exists()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"user_id,value\nu-1,3\n", "no &#x27;event&#x27; column"),
        (b"event,user_id,user_id\nsignup,a,b\n", "repeated columns"),
        (b"event,user\xe9\nsignup,a\n", "not UTF-8"),
    ],
)
def test_upload__unreadable_csv__refused_with_the_reason(importing, workspace, data, message):
    answer = send(importing.client, workspace, "o.csv", data)

    assert answer.status_code == 400
    assert message in answer.content.decode()
    assert not OccurrenceUpload.objects.unscoped().exists()


def test_parse_upload__csv__identities_properties_and_numbers_read_per_column():
    data = (
        "\ufeffEvent,Timestamp,value,user_id,account_id,Prop.plan,prop.duration\r\n"
        'load_time,1769860800000,812.5,u-1,,"pro, yearly",95\r\n'
        'signup,2026-01-31T12:00:00Z,,,acme,"multi\r\nline",\r\n'
    ).encode()

    file_format, rows = parse_upload(filename="o.csv", data=data)

    assert file_format == "csv"
    assert rows == [
        {
            "line": 2,
            "occurrence": {
                "event": "load_time",
                "timestamp": 1769860800000,
                "value": 812.5,
                "contexts": {"user_id": "u-1"},  # the empty account_id cell is left out
                "properties": {"plan": "pro, yearly", "duration": 95},
            },
            "errors": [],
        },
        {
            "line": 3,
            "end_line": 4,
            "occurrence": {
                "event": "signup",
                "timestamp": "2026-01-31T12:00:00Z",
                "contexts": {"account_id": "acme"},
                "properties": {"plan": "multi\r\nline"},
            },
            "errors": [],
        },
    ]


def test_upload__no_line_readable__apply_refused_nothing_sent(importing, workspace):
    client = importing.client
    location = send(client, workspace, "o.jsonl", b"{broken\n[1]\n")["Location"]
    assert "Apply the" not in client.get(location).content.decode()

    answer = client.post(location + "apply/", {"skip_lines": "1,2"}, follow=True)

    assert "Nothing was sent: 2 lines cannot be read (lines 1 and 2)" in answer.content.decode()
    assert OccurrenceUpload.objects.unscoped().get().applied_at is None
    assert received_totals(workspace)["received"] is None


def test_parse_upload__csv_cells__typed_by_the_catalogs_declared_properties(workspace):
    """A CSV cell has no type of its own: where the catalog declares the property, the
    cell takes that type (a code "007" stays text, "true" becomes true), so filters on
    it compare like with like; elsewhere a number-like cell is read as a number."""
    with tenant_scope(workspace):
        SourceEvent.objects.create(
            key="checkout",
            properties={"code": "string", "trial": "boolean", "amount": "number"},
        )
        _, rows = parse_upload(
            filename="o.csv",
            data=(
                b"event,user_id,prop.code,prop.trial,prop.amount,prop.seats\n"
                b"checkout,u-1,007,true,12.5,3\n"
                b"other,u-2,007,true,12.5,3\n"
            ),
        )

    assert rows[0]["occurrence"]["properties"] == {
        "code": "007",
        "trial": True,
        "amount": 12.5,
        "seats": 3,
    }
    assert rows[1]["occurrence"]["properties"] == {
        "code": 7,
        "trial": "true",
        "amount": 12.5,
        "seats": 3,
    }

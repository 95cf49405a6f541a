"""Catalog upload, bad input: a broken quote is named where it opens and swallows no
line, and a file with rows in error is applied only when the person says which lines
to skip (the page and the server both hold to it)."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from connector.sources.models import CatalogUpload, SourceEvent
from connector.sources.upload import DASH, parse_upload
from tenants.scope import tenant_scope
from tests.sources.factories import SourceEventFactory

pytestmark = pytest.mark.django_db

HEADER = b"key,name,unit,volume\n"


def upload(client, workspace, content, name="events.csv"):
    return client.post(
        reverse("sources:upload", args=[workspace.slug]),
        {"file": SimpleUploadedFile(name, content)},
    )


def preview_of(client, workspace, content, name="events.csv"):
    response = upload(client, workspace, content, name)
    assert response.status_code == 302, response.content.decode()[:2000]
    page = client.get(response["Location"])
    assert page.status_code == 200
    return page


def apply(client, workspace, page, **form):
    url = reverse("sources:upload_apply", args=[workspace.slug, page.context["upload"].pk])
    response = client.post(url, form)
    assert response.status_code == 302
    return client.get(response["Location"])


def catalog(workspace):
    with tenant_scope(workspace):
        return {e.key: e for e in SourceEvent.objects.all()}


def messages_of(page):
    return [str(m) for m in page.context["messages"]]


def buttons(html):
    """(attributes, label) of each button of the page."""
    return [
        (attrs, re.sub(r"\s+", " ", label).strip())
        for attrs, label in re.findall(r"<button([^>]*)>(.*?)</button>", html, re.S)
    ]


def apply_buttons(html):
    return [(attrs, label) for attrs, label in buttons(html) if label.startswith("Apply")]


# --- quotes -------------------------------------------------------------------------


def test_csv_quote_never_closed__named_on_its_line__the_lines_after_it_kept(
    client_of, admin, workspace
):
    content = HEADER + (
        b"signup,Sign-up,,1\n"  # line 2
        b'tagline,"Best app,,2\n'  # line 3: the quote never closes
        b"checkout,Checkout,,3\n"  # line 4
        b"refund,Refund,,4\n"  # line 5
    )
    page = preview_of(client_of(admin), workspace, content)
    rows = page.context["preview"].rows
    assert [(row.line, row.key, row.action) for row in rows] == [
        (2, "signup", "add"),
        (3, "tagline", "error"),
        (4, "checkout", "add"),
        (5, "refund", "add"),
    ]
    reason = rows[1].errors[0]["reason"]
    assert "quote opens here" in reason and "never closed" in reason
    assert f"lines 3{DASH}5" in reason and "name" in reason
    assert "cells" not in reason  # not the misleading "has 1 cells; the header has 4"
    html = page.content.decode()
    assert f"lines 3{DASH}5" in html


def test_csv_quote_closed_by_a_later_line__no_line_swallowed(client_of, admin, workspace):
    # Python's csv module reads line 3 to the quote on line 5 and returns a row with
    # exactly 4 cells: line 4 and the start of line 5 vanish into one name, silently.
    content = HEADER + (
        b"signup,Sign-up,,1\n"  # line 2
        b'oops,"Unclosed,,2\n'  # line 3
        b"swallowed,Swallowed,,3\n"  # line 4
        b'quoted,"Quoted",,4\n'  # line 5
        b"last,Last,,5\n"  # line 6
    )
    client = client_of(admin)
    page = preview_of(client, workspace, content)
    rows = {row.line: row for row in page.context["preview"].rows}
    assert {line: (row.key, row.action) for line, row in rows.items()} == {
        2: ("signup", "add"),
        3: ("oops", "error"),
        4: ("swallowed", "add"),
        5: ("quoted", "add"),
        6: ("last", "add"),
    }
    reason = rows[3].errors[0]["reason"]
    assert "quote opens here" in reason and "line 5" in reason and f"lines 3{DASH}5" in reason

    applied = apply(client, workspace, page, skip_lines="3")
    events = catalog(workspace)
    assert set(events) == {"signup", "swallowed", "quoted", "last"}
    assert events["quoted"].name == "Quoted"
    assert any("line 3" in m for m in messages_of(applied))


def test_csv_quote_never_closed_on_the_last_line__an_error_not_a_value(client_of, admin, workspace):
    content = HEADER + b"signup,Sign-up,,1\n" + b'tagline,"Best app,,2\n'
    rows = preview_of(client_of(admin), workspace, content).context["preview"].rows
    assert [(row.line, row.action) for row in rows] == [(2, "add"), (3, "error")]
    assert "never closed" in rows[1].errors[0]["reason"]


def test_csv_quoted_cell_over_several_lines__one_row_showing_its_lines(client_of, admin, workspace):
    content = (
        b"key,description\n"
        b'signup,"First line\n'  # line 2
        b'second line, with a comma"\n'  # line 3
        b"checkout,plain\n"  # line 4
    )
    client = client_of(admin)
    page = preview_of(client, workspace, content)
    rows = page.context["preview"].rows
    assert [(row.line, row.lines, row.key, row.action) for row in rows] == [
        (2, f"2{DASH}3", "signup", "add"),
        (4, "4", "checkout", "add"),
    ]
    assert f'<td class="col-line">2{DASH}3</td>' in page.content.decode()
    apply(client, workspace, page)
    assert catalog(workspace)["signup"].description == "First line\nsecond line, with a comma"


def test_csv_header_quote_never_closed__refused_naming_line_1(client_of, admin, workspace):
    response = upload(client_of(admin), workspace, b'key,"name\nsignup,Sign-up\n')
    assert response.status_code == 400
    page = response.content.decode()
    assert "quote" in page and "line 1" in page
    assert '<td class="col-line">1</td>' in page
    assert CatalogUpload.objects.unscoped().count() == 0


def test_csv_blank_lines__said_to_be_skipped(client_of, admin, workspace):
    content = HEADER + b"a,A,,1\n\nb,B,,2\n,,,\nc,C,,3\n"
    page = preview_of(client_of(admin), workspace, content)
    assert [row.line for row in page.context["preview"].rows] == [2, 4, 6]
    assert "Lines 3 and 5 are blank and were skipped." in page.content.decode()


# --- applying a file with errors ------------------------------------------------------

WITH_ERRORS = HEADER + (
    b"same,Same,,\n"  # line 2: unchanged
    b"bad,,,not a number\n"  # line 3: error
    b"new,New,,1\n"  # line 4: add
    b"short,row\n"  # line 5: error
    b"renamed,New name,,\n"  # line 6: change
)


@pytest.fixture
def existing(workspace):
    SourceEventFactory(tenant=workspace, key="same", name="Same")
    SourceEventFactory(tenant=workspace, key="renamed", name="Old name")


def test_preview_with_errors__apply_disabled_with_why__the_skip_choice_names_the_lines(
    client_of, admin, workspace, existing
):
    page = preview_of(client_of(admin), workspace, WITH_ERRORS)
    rows = page.context["preview"].rows
    assert [(row.line, row.key, row.action) for row in rows] == [
        (2, "same", "unchanged"),
        (3, "bad", "error"),
        (4, "new", "add"),
        (5, "short", "error"),  # the key is shown even when the cells are miscounted
        (6, "renamed", "change"),
    ]
    html = page.content.decode()
    assert "2 rows have errors: fix them and upload again." in html
    (primary, _), (skip, skip_label) = apply_buttons(html)
    assert "disabled" in primary and 'class="primary"' in primary
    assert 'aria-describedby="apply-blocked"' in primary
    assert skip_label == "Apply the 3 valid rows, skipping lines 3 and 5"
    assert "disabled" not in skip and 'name="skip_lines" value="3,5"' in skip


def test_apply_with_errors_without_the_choice__refused_nothing_written(
    client_of, admin, workspace, existing
):
    client = client_of(admin)
    page = preview_of(client, workspace, WITH_ERRORS)
    refused = apply(client, workspace, page)
    assert any("Nothing was applied" in m and "lines 3 and 5" in m for m in messages_of(refused)), (
        messages_of(refused)
    )
    assert set(catalog(workspace)) == {"same", "renamed"}
    assert catalog(workspace)["renamed"].name == "Old name"
    assert CatalogUpload.objects.unscoped().get().applied_at is None

    # A choice that does not match the rows with errors is refused too.
    for wrong in ["3", "3,5,6", "5,3", "x", "3,,5"]:
        apply(client, workspace, page, skip_lines=wrong)
        assert CatalogUpload.objects.unscoped().get().applied_at is None, wrong
    assert set(catalog(workspace)) == {"same", "renamed"}


def test_apply_with_errors_with_the_choice__valid_rows_written_skipped_lines_named(
    client_of, admin, workspace, existing
):
    client = client_of(admin)
    page = preview_of(client, workspace, WITH_ERRORS)
    applied = apply(client, workspace, page, skip_lines="3,5")
    events = catalog(workspace)
    assert set(events) == {"same", "renamed", "new"}
    assert events["renamed"].name == "New name"
    (message,) = messages_of(applied)
    assert "1 added, 1 changed, 1 unchanged" in message
    assert "Skipped lines 3 and 5" in message
    assert CatalogUpload.objects.unscoped().get().applied_at is not None
    assert not apply_buttons(applied.content.decode())  # applied: no more buttons


def test_many_errors__the_skip_choice_counts_them_and_lists_the_first(client_of, admin, workspace):
    content = b"key,volume\n" + b"ok,1\n" + b"".join(b"bad%d,-1\n" % i for i in range(8))
    html = preview_of(client_of(admin), workspace, content).content.decode()
    labels = [label for _, label in apply_buttons(html)]
    assert labels == [
        "Apply",
        "Apply the 1 valid row, skipping the 8 rows with errors (lines 3, 4, 5, 6, 7 and 3 more)",
    ]
    assert "8 rows have errors: fix them and upload again." in html


def test_all_rows_fine__apply_enabled_no_skip_choice_applies_as_before(client_of, admin, workspace):
    client = client_of(admin)
    page = preview_of(client, workspace, HEADER + b"a,A,,1\nb,B,,2\n")
    html = page.content.decode()
    ((primary, label),) = apply_buttons(html)
    assert label == "Apply" and "disabled" not in primary
    assert "have errors" not in html and "has errors" not in html
    applied = apply(client, workspace, page)
    assert set(catalog(workspace)) == {"a", "b"}
    assert messages_of(applied) == ["events.csv applied: 2 added, 0 changed, 0 unchanged."]


def test_only_errors__nothing_to_apply__no_skip_choice(client_of, admin, workspace):
    page = preview_of(client_of(admin), workspace, b"key,volume\nbad,-1\n")
    html = page.content.decode()
    labels = [label for _, label in apply_buttons(html)]
    assert labels == ["Apply"]
    assert "1 row has errors: fix it and upload again." in html
    apply(client_of(admin), workspace, page, skip_lines="2")  # nothing valid: still refused
    assert CatalogUpload.objects.unscoped().get().applied_at is None


# --- the tables -------------------------------------------------------------------------


def test_tables__fixed_columns_no_inline_style(client_of, admin, workspace, existing):
    html = preview_of(client_of(admin), workspace, WITH_ERRORS).content.decode()
    assert '<table class="upload-rows">' in html
    assert re.findall(r'<th class="(col-\w+)"', html) == [
        "col-line",
        "col-key",
        "col-action",
        "col-details",
    ]
    assert html.count('<td class="col-line">') == 5
    assert " style=" not in html and "<script>" not in html
    rejected = upload(client_of(admin), workspace, b"nope\n1\n").content.decode()
    assert '<table class="offending-lines">' in rejected and " style=" not in rejected
    css = (Path(settings.BASE_DIR) / "connector/static/css/app.css").read_text()
    section = css.split("/* Catalog upload */", 1)[1]
    assert "table-layout: fixed" in section and ".col-line" in section


def test_csv_5000_quoted_rows_in_4_5_mb__every_row_read_the_broken_one_alone():
    description = "x" * 860
    lines = [f'event_{i:05d},"Event {i}, ""quoted""","{description}",,{i}\n' for i in range(5000)]
    lines[2500] = 'broken,"never closed,,,1\n'
    data = ("key,name,description,unit,volume\n" + "".join(lines)).encode()
    assert 4.3e6 < len(data) < 4.8e6

    _, rows = parse_upload(filename="events.csv", data=data)

    assert len(rows) == 5000 and rows[-1]["line"] == 5001
    assert [row["line"] for row in rows if row["errors"]] == [2502]
    assert rows[0]["definition"]["name"] == 'Event 0, "quoted"'


def test_csv_cell_over_the_csv_field_limit__an_error_on_its_lines_the_rest_read():
    huge = b"x" * 70_000 + b"\n" + b"y" * 70_000  # over the csv module's 131,072
    data = b'key,description\na,"' + huge + b'"\nb,"ok"\nc,plain\n'
    _, rows = parse_upload(filename="events.csv", data=data)
    assert [(row["line"], row.get("end_line")) for row in rows] == [(2, 3), (4, None), (5, None)]
    assert "field larger than field limit" in rows[0]["errors"][0]["reason"]
    assert [row["definition"]["key"] for row in rows[1:]] == ["b", "c"]

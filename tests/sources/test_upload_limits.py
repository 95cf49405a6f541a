"""Catalog upload limits: an oversized body is refused before it is read, a body is
never read past the cap, and the line numbers of a large file are found in linear time."""

import io
import json
import time

import pytest
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from connector.sources.models import CatalogUpload
from connector.sources.upload import MAX_UPLOAD_BYTES, parse_upload

pytestmark = pytest.mark.django_db


class CountingStream(io.BytesIO):
    """What the web server hands Django as the request body, counting what is read."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size=-1):
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk

    def readline(self, size=-1):
        line = super().readline(size)
        self.bytes_read += len(line)
        return line


def multipart_body(file_bytes: bytes, name="events.csv") -> bytes:
    file = io.BytesIO(file_bytes)
    file.name = name
    return encode_multipart(BOUNDARY, {"file": file})


def post_body(client, workspace, body: bytes, content_length: str | None):
    stream = CountingStream(body)
    environ = {"wsgi.input": stream, "CONTENT_TYPE": MULTIPART_CONTENT}
    if content_length is not None:
        environ["CONTENT_LENGTH"] = content_length
    response = client.generic("POST", reverse("sources:upload", args=[workspace.slug]), **environ)
    return response, stream


def big_csv(size: int) -> bytes:
    line = b"event_with_a_reasonably_long_key_%08d,12\n"
    count = size // len(line % 0) + 1
    return b"key,volume\n" + b"".join(line % i for i in range(count))


def test_upload__content_length_over_the_cap__413_before_reading_the_body(
    client_of, admin, workspace
):
    body = multipart_body(big_csv(MAX_UPLOAD_BYTES + 512 * 1024))
    response, stream = post_body(client_of(admin), workspace, body, str(len(body)))

    assert response.status_code == 413
    assert "larger than 5 MB" in response.content.decode()
    assert stream.bytes_read == 0
    assert not CatalogUpload.objects.unscoped().exists()


def test_upload__file_over_the_cap_inside_a_body_under_it__reading_stops_at_the_cap(
    client_of, admin, workspace
):
    # Just over the file limit: the body passes the Content-Length check.
    body = multipart_body(big_csv(MAX_UPLOAD_BYTES + 1024))
    response, stream = post_body(client_of(admin), workspace, body, str(len(body)))

    assert response.status_code == 413
    assert "larger than 5 MB" in response.content.decode()
    assert stream.bytes_read <= MAX_UPLOAD_BYTES + 128 * 1024
    assert not CatalogUpload.objects.unscoped().exists()


@pytest.mark.parametrize("content_length", [None, "1000", "garbage"])
def test_upload__content_length_absent_or_too_small__body_not_read_past_it(
    client_of, admin, workspace, content_length
):
    body = multipart_body(big_csv(2 * MAX_UPLOAD_BYTES))
    response, stream = post_body(client_of(admin), workspace, body, content_length)

    assert response.status_code == 400
    assert stream.bytes_read <= 1000
    assert not CatalogUpload.objects.unscoped().exists()


def test_upload__content_length_over_the_cap__anonymous__sign_in_without_reading(client, workspace):
    body = multipart_body(big_csv(MAX_UPLOAD_BYTES + 512 * 1024))
    response, stream = post_body(client, workspace, body, str(len(body)))
    assert response.status_code == 302 and "/signin/" in response["Location"]
    assert stream.bytes_read == 0


def test_upload__csrf_still_checked__refused_without_token_accepted_with_it(admin, workspace):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin.user)
    url = reverse("sources:upload", args=[workspace.slug])
    token = browser.get(url).context["csrf_token"]

    def post(file_bytes, **fields):
        file = io.BytesIO(file_bytes)
        file.name = "events.csv"
        return browser.post(url, {**fields, "file": file})

    assert post(b"key\nsigned_up\n").status_code == 403
    assert post(b"key\nsigned_up\n", csrfmiddlewaretoken=token).status_code == 302
    too_big = post(big_csv(MAX_UPLOAD_BYTES + 1024), csrfmiddlewaretoken=token)
    assert too_big.status_code == 413 and "larger than 5 MB" in too_big.content.decode()
    assert CatalogUpload.objects.unscoped().count() == 1


# --- line numbers ---------------------------------------------------------------------


def test_upload_json__errors_on_known_lines__reported_on_those_lines():
    items = [{"key": f"event_{i}", "name": f"Event {i}"} for i in range(40)]
    items[7]["volume"] = -3
    items[23]["value_kind"] = "sometimes"
    text = "[\n" + ",\n".join(json.dumps(item, indent=2) for item in items) + "\n]\n"
    _, rows = parse_upload(filename="events.json", data=text.encode())

    # Each item takes 4 lines (open brace, key, name, close) plus one per extra field,
    # after the "[" on line 1.
    first_lines = []
    line = 2
    for item in items:
        first_lines.append(line)
        line += len(json.dumps(item, indent=2).splitlines())
    assert [row["line"] for row in rows] == first_lines
    assert rows[7]["line"] == 30 and rows[23]["line"] == 95


def test_upload_json__5000_items_in_4_6_mb__line_numbers_in_linear_time(capsys):
    description = "x" * 860
    items = [
        {"key": f"event_{i:05d}", "name": f"Event {i}", "description": description}
        for i in range(5000)
    ]
    text = "[\n" + ",\n".join(json.dumps(item, indent=1) for item in items) + "\n]\n"
    data = text.encode()
    assert 4.4e6 < len(data) < 4.8e6

    started = time.perf_counter()
    _, rows = parse_upload(filename="events.json", data=data)
    elapsed = time.perf_counter() - started

    assert [row["line"] for row in rows[:3]] == [2, 7, 12]
    assert rows[-1]["line"] == 2 + 5 * 4999
    with capsys.disabled():
        print(f"\nupload: 5,000 JSON items, {len(data) / 1e6:.1f} MB parsed in {elapsed:.2f} s")
    assert elapsed < 2

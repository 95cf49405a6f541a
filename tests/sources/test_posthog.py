"""The PostHog adapter against recorded answers shaped like PostHog's documented ones,
served by a local stand-in (PostHog itself is not reachable from the test machines)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command

from connector.sources.adapters.base import AdapterError, SourceAdapter, adapter_for
from connector.sources.models import SourceEvent
from connector.sources.services import catalog_import, events_upsert
from tenants.scope import tenant_scope

pytestmark = pytest.mark.django_db
RECORDED = Path(__file__).parent / "recorded" / "posthog"
API_KEY = "phx_recorded_test_key"


class RecordedPostHog(BaseHTTPRequestHandler):
    server: "Server"

    def log_message(self, *args):  # keep test output quiet
        pass

    def answer(self, status, name):
        body = (RECORDED / name).read_text().replace("{base}", self.server.base)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def do_GET(self):
        self.server.requests.append(self.path)
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            return self.answer(401, "unauthorized.json")
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/api/projects/4242/event_definitions/":
            if self.server.catalog == "shrunk":
                return self.answer(200, "event_definitions_shrunk.json")
            page = "page2" if query.get("offset") == ["3"] else "page1"
            return self.answer(200, f"event_definitions_{page}.json")
        if url.path == "/api/projects/4242/property_definitions/":
            # Every type is asked for: the event's properties, not only its numeric ones.
            assert query["type"] == ["event"] and "is_numerical" not in query
            (event,) = json.loads(query["event_names"][0])
            for name in (
                f"property_definitions__{event}.json",
                f"property_definitions__{event}__page{2 if 'offset' in query else 1}.json",
            ):
                if (RECORDED / name).exists():
                    return self.answer(200, name)
            return self.answer(200, "property_definitions__empty.json")
        self.send_response(404)
        self.end_headers()


class Server(ThreadingHTTPServer):
    base = ""
    catalog = "full"
    requests: list


@pytest.fixture
def posthog():
    server = Server(("127.0.0.1", 0), RecordedPostHog)
    server.base = f"http://127.0.0.1:{server.server_address[1]}"
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def adapter(server, api_key=API_KEY):
    return adapter_for("posthog", base_url=server.base, project_id="4242", api_key=api_key)


def test_posthog_adapter__is_a_registered_source_adapter(posthog):
    assert isinstance(adapter(posthog), SourceAdapter)
    with pytest.raises(AdapterError):
        adapter_for("mixpanel")


def test_posthog_adapter__follows_next_links_and_detects_numeric_events(posthog):
    definitions = {d.key: d for d in adapter(posthog).fetch_catalog()}
    assert list(definitions) == [
        "$pageview",
        "purchase completed",
        "report/exported",
        "search performed",
        "video watched",
    ]
    purchase = definitions["purchase completed"]
    # `revenue` is numeric and a value property; `$screen_width` is PostHog's own.
    assert (purchase.value_kind, purchase.unit) == ("numeric", "USD")
    assert purchase.description.startswith("Order paid at checkout")
    # The value property was on the second page of this event's properties.
    video = definitions["video watched"]
    assert (video.value_kind, video.unit) == ("numeric", "ms")
    assert definitions["$pageview"].value_kind == "conversion"
    assert definitions["$pageview"].volume == 1843211
    assert definitions["report/exported"].volume is None  # PostHog had no figure
    assert definitions["search performed"].last_seen.isoformat() == "2026-01-30T22:00:00+00:00"
    assert any("offset=3" in path for path in posthog.requests)


def test_catalog_import__upserts_then_marks_vanished_events_removed(posthog, workspace):
    with tenant_scope(workspace):
        first = catalog_import(adapter=adapter(posthog))
        assert first.counts["created"] == 5 and first.removed == 0
        again = catalog_import(adapter=adapter(posthog))
        assert again.counts == {"created": 0, "updated": 0, "unchanged": 5, "rejected": 0}

        posthog.catalog = "shrunk"
        shrunk = catalog_import(adapter=adapter(posthog))
        assert shrunk.removed == 4 and shrunk.counts["updated"] == 1
        events = {e.key: e for e in SourceEvent.objects.all()}
        assert events["purchase completed"].removed_at is None
        assert events["purchase completed"].volume == 13050
        assert all(events[k].removed_at for k in events if k != "purchase completed")
        assert {e.origin for e in events.values()} == {"posthog"}

        posthog.catalog = "full"
        back = catalog_import(adapter=adapter(posthog))
        assert back.counts["updated"] == 5  # four exist again, one has its old volume
        assert not SourceEvent.objects.filter(removed_at__isnull=False).exists()


def test_catalog_import__refused_key__adapter_error_and_nothing_written(posthog, workspace):
    with tenant_scope(workspace), pytest.raises(AdapterError, match="refused"):
        catalog_import(adapter=adapter(posthog, api_key="phx_wrong"))
    assert SourceEvent.objects.unscoped().count() == 0


def test_catalog_import__unreachable_posthog__adapter_error(workspace):
    unreachable = adapter_for(
        "posthog", base_url="http://127.0.0.1:9", project_id="4242", api_key=API_KEY
    )
    with tenant_scope(workspace), pytest.raises(AdapterError, match="did not answer"):
        catalog_import(adapter=unreachable)


def test_import_catalog_command__key_from_environment(posthog, workspace, monkeypatch):
    monkeypatch.setenv("POSTHOG_PERSONAL_API_KEY", API_KEY)
    out = StringIO()
    call_command(
        "import_catalog",
        "--workspace",
        workspace.slug,
        "--base-url",
        posthog.base,
        "--project-id",
        "4242",
        stdout=out,
    )
    assert "5 created" in out.getvalue()
    assert SourceEvent.objects.unscoped().filter(tenant=workspace).count() == 5


def test_catalog_import__guessed_value_property__a_default_never_replacing_a_hand_set_one(
    posthog, workspace
):
    with tenant_scope(workspace):
        catalog_import(adapter=adapter(posthog))
        guessed = dict(SourceEvent.objects.values_list("key", "value_property"))
        assert guessed["purchase completed"] == "revenue"
        assert guessed["video watched"] == "duration_ms"
        assert guessed["$pageview"] == ""
        # A person names the property their product really sends, and clears another.
        events_upsert(
            definitions=[
                {
                    "key": "purchase completed",
                    "value_kind": "numeric",
                    "unit": "USD",
                    "value_property": "order_total",
                },
                {
                    "key": "video watched",
                    "value_kind": "numeric",
                    "unit": "ms",
                    "value_property": "",
                },
            ],
            origin="api",
        )
        again = catalog_import(adapter=adapter(posthog))
        assert again.counts["rejected"] == 0
        kept = dict(SourceEvent.objects.values_list("key", "value_property"))
    assert kept["purchase completed"] == "order_total"  # the hand-set one stays
    assert kept["video watched"] == "duration_ms"  # an empty one gets the guess again

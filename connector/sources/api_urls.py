"""`/api/v1/`: the connector's HTTP API, authenticated by workspace API keys."""

from django.urls import path, register_converter

from connector.sources import api


class EventKeyConverter:
    """Any non-empty rest of the path, "/" and line breaks included: a key is
    percent-encoded by the client and decoded by Django before it gets here, and a
    key that cannot exist must still get the API's JSON 404 (Django's own `path`
    converter stops at a newline, which would answer an HTML 404)."""

    regex = r"[\s\S]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(EventKeyConverter, "event_key")

app_name = "api"

urlpatterns = [
    path("openapi.json", api.openapi_json, name="openapi"),
    path("events", api.events, name="events"),
    # A fixed path no event key can take: keys live under "events/".
    path("events:archive", api.events_archive, name="events_archive"),
    path("events/<event_key:key>", api.event, name="event"),
]

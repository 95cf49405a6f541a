"""`/api/v1/`: the connector's HTTP API, authenticated by workspace API keys."""

from django.urls import URLPattern, register_converter

from connector.sources.api import api


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


# Before `api.urls`: its route `events/{event_key:key}` names this converter.
register_converter(EventKeyConverter, "event_key")

app_name = "api"

# ninja gives one pattern per operation (the methods of a path share its view) and
# an `api-root` pattern we do not serve: one pattern per name, as the paths are.
urlpatterns = list(
    {
        pattern.name: pattern
        for pattern in api.urls[0]
        if isinstance(pattern, URLPattern) and pattern.name != "api-root"
    }.values()
)

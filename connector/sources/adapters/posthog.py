"""PostHog: event definitions and their properties, through PostHog's REST API.

- `GET /api/projects/{id}/event_definitions/`: every event name PostHog has seen,
  with `created_at`, `last_seen_at`, `volume_30_day` and (on paid plans) `description`.
- `GET /api/projects/{id}/property_definitions/?type=event
  &event_names=["<event>"]&filter_by_event_names=true`: the properties sent with one
  event, each with its `property_type` (String, Numeric, Boolean, DateTime, Duration,
  or null while PostHog has not settled one) and `is_numerical`.
Both are paginated (`next` is the absolute URL of the next page, null on the last)
and take a personal API key as `Authorization: Bearer`.
https://posthog.com/docs/api/event-definitions, https://posthog.com/docs/api/property-definitions

PostHog events carry no value of their own, so which events are *numeric* is our
decision: an event is numeric when PostHog reports a numerical property for it whose
name is one of VALUE_PROPERTIES (the first match wins, in that order); that property
holds the value a numeric metric measures (it becomes the event's `value_property`,
a default that never replaces one set by hand), and its name gives the unit. Every
other event is a conversion. Property names starting with `$` are PostHog's own and never
count (e.g. `$screen_width` is numeric but not a value of the event).

The event's flat properties become its `properties`, what metric filters may test
(PROPERTY_TYPES says which of PostHog's types, and why not the others). They are
defaults too: they add names to the catalog, never change a type it knows. PostHog's
own `$` properties are left out here as well: PostHog adds dozens to every event
(`$browser`, `$current_url`, `$lib`, ...), which would fill the event's MAX_PROPERTIES
with names the product may never send to the connector; those it does send are
learned from its occurrences.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.utils.dateparse import parse_datetime

from connector.sources.adapters.base import AdapterError, EventDefinition, register
from connector.sources.models import EVENT_KEY_MAX_LENGTH, Origin, PropertyType, ValueKind
from connector.sources.validation import MAX_PROPERTIES, property_name_problem

TIMEOUT = (5, 30)  # connect, read (seconds)
PAGE_SIZE = 500
MAX_PAGES = 1000  # a `next` loop must end even if a server misbehaves
# Property name -> unit, in order of preference.
VALUE_PROPERTIES = {
    "revenue": "USD",
    "amount": "USD",
    "price": "USD",
    "value": "units",
    "duration_ms": "ms",
    "duration": "s",
}
# PostHog's property_type -> ours. Left out: DateTime, which PostHog gives to ISO strings
# and unix timestamps alike, so neither text nor number would compare as dates do
# (LaunchDarkly's greaterThan on text matches nothing); Duration, which PostHog uses for
# its own session properties; and null, a type PostHog has not settled yet.
PROPERTY_TYPES = {
    "String": PropertyType.STRING,
    "Numeric": PropertyType.NUMBER,
    "Boolean": PropertyType.BOOLEAN,
}


@dataclass(frozen=True)
class PostHogEventDefinition(EventDefinition):
    # A default, like value_property: `catalog_import` only adds the names it lacks.
    properties: dict[str, str] = field(default_factory=dict)

    def as_definition(self) -> dict[str, Any]:
        definition = super().as_definition()
        if self.properties:
            definition["properties"] = dict(self.properties)
        return definition


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return (parts.scheme.lower(), parts.netloc.lower())


def _when(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


@register("posthog")
class PostHogAdapter:
    origin: str = Origin.POSTHOG

    def __init__(
        self,
        *,
        base_url: str,
        project_id: str,
        api_key: str,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.project_id = project_id
        self.session = session or requests.Session()
        self.session.headers.update(
            {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        )

    def _pages(self, url: str, params: dict[str, Any] | None = None) -> Iterator[dict]:
        for _ in range(MAX_PAGES):
            try:
                # A redirect is not followed either: requests would keep the key on
                # a same-host redirect to another scheme or port.
                response = self.session.get(
                    url, params=params, timeout=TIMEOUT, allow_redirects=False
                )
            except requests.RequestException as exc:
                raise AdapterError(f"PostHog did not answer: {type(exc).__name__}") from None
            if response.status_code in (401, 403):
                raise AdapterError(
                    "PostHog refused the personal API key (HTTP "
                    f"{response.status_code}); it needs event_definition:read "
                    "and property_definition:read."
                )
            if response.status_code != 200:
                raise AdapterError(f"PostHog answered HTTP {response.status_code} for {url}")
            try:
                page = response.json()
                results = page["results"]
            except (ValueError, KeyError, TypeError):
                raise AdapterError(
                    "PostHog answered something other than a page of results"
                ) from None
            yield from results
            url, params = page.get("next"), None  # `next` carries its own query string
            if not url:
                return
            if not isinstance(url, str) or _origin(url) != _origin(self.base_url):
                # The personal API key goes to the configured host and nowhere else.
                raise AdapterError("PostHog's next page is on another host; not followed.")
        raise AdapterError(f"PostHog kept paginating past {MAX_PAGES} pages")

    def _project_url(self, resource: str) -> str:
        return f"{self.base_url}/api/projects/{self.project_id}/{resource}/"

    def _properties(self, event_name: str) -> tuple[dict[str, str], set[str]]:
        """The event's flat properties with our types, in PostHog's order (it lists the
        most queried first, so the MAX_PROPERTIES kept are the telling ones), and the names of its
        numeric properties, PostHog's own included (for VALUE_PROPERTIES)."""
        properties: dict[str, str] = {}
        numeric: set[str] = set()
        for prop in self._pages(
            self._project_url("property_definitions"),
            {
                "type": "event",
                "event_names": json.dumps([event_name]),
                "filter_by_event_names": "true",
                "limit": PAGE_SIZE,
            },
        ):
            name = prop.get("name")
            if not isinstance(name, str) or not prop.get("is_seen_on_filtered_events", True):
                continue
            if prop.get("is_numerical") or prop.get("property_type") == "Numeric":
                numeric.add(name)
            kind = PROPERTY_TYPES.get(str(prop.get("property_type")))
            if (
                kind is None
                or name.startswith("$")
                or property_name_problem(name) is not None  # PostHog allows 400 characters
                or len(properties) >= MAX_PROPERTIES
            ):
                continue
            properties.setdefault(name, kind)
        return properties, numeric

    def fetch_catalog(self) -> Iterator[EventDefinition]:
        for item in self._pages(self._project_url("event_definitions"), {"limit": PAGE_SIZE}):
            key = item.get("name")
            if not isinstance(key, str) or not key or len(key) > EVENT_KEY_MAX_LENGTH:
                continue  # cannot become a metric's eventKey; the upsert would refuse it
            properties, numeric = self._properties(key)
            value = next(
                ((name, unit) for name, unit in VALUE_PROPERTIES.items() if name in numeric), None
            )
            description = item.get("description") or ""
            if value:
                note = f"Value: the numeric property '{value[0]}'."
                description = f"{description}\n{note}".strip()
            volume = item.get("volume_30_day")
            yield PostHogEventDefinition(
                key=key,
                name="",
                description=description,
                value_kind=ValueKind.NUMERIC if value else ValueKind.CONVERSION,
                unit=value[1] if value else "",
                value_property=value[0] if value else "",
                first_seen=_when(item.get("created_at")),
                last_seen=_when(item.get("last_seen_at")),
                volume=volume if isinstance(volume, int) and volume >= 0 else None,
                properties=properties,
            )

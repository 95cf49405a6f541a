"""The LaunchDarkly instances a customer can connect to.

The list is fixed: a customer picks one by key, and no URL a user typed is ever used,
so a token can only be sent to LaunchDarkly (or, in development, to the local sandbox
that `LAUNCHDARKLY_BASE_URL` / `LAUNCHDARKLY_EVENTS_URL` point at).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings


@dataclass(frozen=True)
class Instance:
    key: str
    label: str
    app_url: str  # REST API, OAuth and the web UI share this host
    events_url: str  # metric event import


# LaunchDarkly: hosts from the OpenAPI document's servers and description.
INSTANCES: dict[str, Instance] = {
    instance.key: instance
    for instance in (
        Instance(
            "commercial",
            "Commercial (app.launchdarkly.com)",
            "https://app.launchdarkly.com",
            "https://events.launchdarkly.com",
        ),
        Instance(
            "eu",
            "EU (app.eu.launchdarkly.com)",
            "https://app.eu.launchdarkly.com",
            "https://events.eu.launchdarkly.com",
        ),
        Instance(
            "federal",
            "Federal (app.launchdarkly.us)",
            "https://app.launchdarkly.us",
            "https://events.launchdarkly.us",
        ),
    )
}

# For a form's select: [(key, label), ...].
INSTANCE_CHOICES: list[tuple[str, str]] = [(i.key, i.label) for i in INSTANCES.values()]


def connectable_choices() -> list[tuple[str, str]]:
    """What a person may choose when connecting. With a development override every key
    goes to the same local stand-in, so offering LaunchDarkly's real hosts would be a
    lie: the one choice is named for where the tokens really go."""
    if _override("LAUNCHDARKLY_BASE_URL"):
        return [("commercial", display_label("commercial"))]
    return INSTANCE_CHOICES


def display_label(key: str) -> str:
    """Where a connection with this instance key really talks to, in words."""
    override = _override("LAUNCHDARKLY_BASE_URL")
    if override:
        return f"local LaunchDarkly sandbox ({urlsplit(override).netloc or override})"
    return get_instance(key).label


def get_instance(key: str) -> Instance:
    try:
        return INSTANCES[key]
    except KeyError:
        raise ValueError(f"unknown LaunchDarkly instance {key!r}") from None


def api_base_url(instance: str) -> str:
    """Where the REST API and OAuth endpoints of `instance` live."""
    app_url = get_instance(instance).app_url  # an unknown key fails even when overridden
    return _override("LAUNCHDARKLY_BASE_URL") or app_url


def ui_base_url(instance: str) -> str:
    """Where people open LaunchDarkly's UI (for links to a metric or a project)."""
    return api_base_url(instance)


def events_base_url(instance: str) -> str:
    """Where the metric event import API of `instance` lives."""
    events_url = get_instance(instance).events_url
    return _override("LAUNCHDARKLY_EVENTS_URL") or events_url


def _override(setting: str) -> str:
    """A development override (the local sandbox); empty in production."""
    return (getattr(settings, setting, "") or "").rstrip("/")

"""The LaunchDarkly instances a customer can connect to.

The list is fixed: a customer picks one by key, and no URL a user typed is ever used,
so a token can only be sent to LaunchDarkly (or, in development, to the local sandbox
that `LAUNCHDARKLY_BASE_URL` / `LAUNCHDARKLY_EVENTS_URL` point at).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings


@dataclass(frozen=True)
class DocNote:
    """A statement from LaunchDarkly's documentation, and where it says so ("" when the
    note is ours: what the documentation leaves unsaid)."""

    text: str
    url: str = ""


NOT_DOCUMENTED = DocNote(
    "LaunchDarkly's documentation does not say whether Experimentation is available here."
)


@dataclass(frozen=True)
class Instance:
    key: str
    label: str
    app_url: str  # REST API, OAuth and the web UI share this host
    events_url: str  # metric event import
    # What LaunchDarkly's documentation says of Experimentation and metrics on this
    # instance, quoted, shown where a person chooses it: the metrics this connector
    # creates are of use only where Experimentation is.
    availability: tuple[DocNote, ...] = field(default=())


# LaunchDarkly's documentation, quoted as it stood (docs pages with a federal and an EU
# view: the EU and federal docs sites mark what those instances lack).
_EXPERIMENTATION_PLANS = DocNote(
    "LaunchDarkly: “Experimentation is available to all customers on a Developer, "
    "Foundation, or Enterprise subscription.”",
    "https://launchdarkly.com/docs/api/experiments",
)
_INTEGRATIONS_URL = "https://launchdarkly.com/docs/integrations/experimentation"


# LaunchDarkly: hosts from the OpenAPI document's servers and description.
INSTANCES: dict[str, Instance] = {
    instance.key: instance
    for instance in (
        Instance(
            "commercial",
            "Commercial (app.launchdarkly.com)",
            "https://app.launchdarkly.com",
            "https://events.launchdarkly.com",
            (_EXPERIMENTATION_PLANS,),
        ),
        Instance(
            "eu",
            "EU (app.eu.launchdarkly.com)",
            "https://app.eu.launchdarkly.com",
            "https://events.eu.launchdarkly.com",
            (
                DocNote(
                    "LaunchDarkly's Experimentation docs: “This feature is not available "
                    "on LaunchDarkly's European Union (EU) instance.”",
                    "https://launchdarkly.com/docs/home/experimentation-prerequisites",
                ),
                DocNote(
                    "LaunchDarkly: “Experimentation and metric integrations are not "
                    "available in the European Union.”",
                    _INTEGRATIONS_URL,
                ),
            ),
        ),
        Instance(
            "federal",
            "Federal (app.launchdarkly.us)",
            "https://app.launchdarkly.us",
            "https://events.launchdarkly.us",
            (
                DocNote(
                    "LaunchDarkly: “Experimentation and metric integrations are not "
                    "available in federal environments.”",
                    _INTEGRATIONS_URL,
                ),
                NOT_DOCUMENTED,
            ),
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


def availability_notes(instance: Instance) -> tuple[DocNote, ...]:
    """What to show of an instance's Experimentation: LaunchDarkly's statements, or that
    it makes none (never a guess)."""
    return instance.availability or (NOT_DOCUMENTED,)


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
    # A stand-in for LaunchDarkly (the sandbox) serves both APIs on one host.
    return _override("LAUNCHDARKLY_EVENTS_URL") or _override("LAUNCHDARKLY_BASE_URL") or events_url


def _override(setting: str) -> str:
    """A development override (the local sandbox); empty in production."""
    return (getattr(settings, setting, "") or "").rstrip("/")

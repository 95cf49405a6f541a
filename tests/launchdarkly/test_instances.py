from __future__ import annotations

import pytest

from connector.launchdarkly.instances import (
    INSTANCE_CHOICES,
    api_base_url,
    events_base_url,
    ui_base_url,
)


@pytest.fixture
def no_overrides(settings):
    settings.LAUNCHDARKLY_BASE_URL = ""
    settings.LAUNCHDARKLY_EVENTS_URL = ""


@pytest.mark.usefixtures("no_overrides")
@pytest.mark.parametrize(
    ("instance", "app", "events"),
    [
        ("commercial", "https://app.launchdarkly.com", "https://events.launchdarkly.com"),
        ("eu", "https://app.eu.launchdarkly.com", "https://events.eu.launchdarkly.com"),
        ("federal", "https://app.launchdarkly.us", "https://events.launchdarkly.us"),
    ],
)
def test_instances__no_override__use_the_instance_hosts(instance, app, events):
    assert (api_base_url(instance), ui_base_url(instance), events_base_url(instance)) == (
        app,
        app,
        events,
    )


def test_instances__settings_override__points_every_instance_at_the_sandbox(settings):
    settings.LAUNCHDARKLY_BASE_URL = "http://127.0.0.1:8765/"
    settings.LAUNCHDARKLY_EVENTS_URL = "http://127.0.0.1:8765"
    assert api_base_url("eu") == ui_base_url("eu") == "http://127.0.0.1:8765"
    assert events_base_url("federal") == "http://127.0.0.1:8765"


@pytest.mark.parametrize("override", ["", "http://127.0.0.1:8765"])
def test_instances__unknown_key__raises_value_error_even_with_override(settings, override):
    settings.LAUNCHDARKLY_BASE_URL = settings.LAUNCHDARKLY_EVENTS_URL = override
    for url_of in (api_base_url, ui_base_url, events_base_url):
        with pytest.raises(ValueError, match="unknown LaunchDarkly instance"):
            url_of("https://evil.example")


def test_instances__choices__key_and_label_for_a_select():
    assert [key for key, _ in INSTANCE_CHOICES] == ["commercial", "eu", "federal"]
    assert all(label for _, label in INSTANCE_CHOICES)

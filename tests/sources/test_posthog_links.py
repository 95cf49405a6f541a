"""The PostHog adapter sends its personal API key to the configured host only."""

import pytest

from connector.sources.adapters.base import AdapterError, adapter_for
from tests.sources.test_posthog import API_KEY, posthog

pytestmark = pytest.mark.django_db

other_host = posthog  # a second stand-in, on another port: another origin


def test_posthog_adapter__next_link_to_another_origin__refused_key_never_sent(
    posthog,
    other_host,
):
    configured = posthog.base
    posthog.base = other_host.base  # its pages now link to the other origin
    adapter = adapter_for("posthog", base_url=configured, project_id="4242", api_key=API_KEY)

    with pytest.raises(AdapterError, match="another host"):
        list(adapter.fetch_catalog())

    assert other_host.requests == []  # the key went nowhere else

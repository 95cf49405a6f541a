"""Scraping /metrics as Prometheus does, and reading it back."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.sync.conftest import connected  # noqa: F401  (a workspace connected to the sandbox)

METRICS_TOKEN = "scrape-token-0123456789abcdef0123456789abcdef"


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = METRICS_TOKEN
    return METRICS_TOKEN


def scrape(client, token=METRICS_TOKEN):
    """{(sample name, frozenset of labels): value} of one scrape."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.content
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)

from io import StringIO

import pytest
from django.core.management import call_command

from connector.sources.demo import demo_catalog
from connector.sources.models import SourceEvent
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def test_demo_catalog__realistic_and_deterministic():
    catalog = demo_catalog()
    assert 250 <= len(catalog) <= 400
    assert catalog == demo_catalog()
    kinds = {d["value_kind"] for d in catalog}
    assert kinds == {"conversion", "numeric"}
    assert all(d.get("unit") for d in catalog if d["value_kind"] == "numeric")
    assert len({d["key"] for d in catalog}) == len(catalog)


def test_seed_demo__creates_a_few_hundred_events_and_is_idempotent():
    call_command("seed_demo", stdout=StringIO())
    tenant = Tenant.objects.get(slug="demo")
    count = SourceEvent.objects.unscoped().filter(tenant=tenant).count()
    assert count >= 250
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert SourceEvent.objects.unscoped().filter(tenant=tenant).count() == count
    assert "0 added, 0 updated" in out.getvalue()

"""Factories for the catalog's models; rows are created in their workspace's scope."""

import hashlib

import factory

from connector.sources.models import ApiKey, CatalogUpload, SourceEvent
from tenants.scope import tenant_scope
from tests.factories import TenantFactory


class _InScope(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    tenant = factory.SubFactory(TenantFactory)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with tenant_scope(kwargs["tenant"]):
            return super()._create(model_class, *args, **kwargs)


class ApiKeyFactory(_InScope):
    class Meta:
        model = ApiKey

    name = factory.Sequence(lambda n: f"key {n}")
    prefix = "lmc_test"
    key_hash = factory.Sequence(lambda n: hashlib.sha256(f"key-{n}".encode()).hexdigest())


class CatalogUploadFactory(_InScope):
    class Meta:
        model = CatalogUpload

    filename = "events.csv"
    file_format = "csv"
    rows = factory.LazyFunction(lambda: [{"line": 2, "definition": {"key": "a"}, "errors": []}])


class SourceEventFactory(_InScope):
    class Meta:
        model = SourceEvent

    key = factory.Sequence(lambda n: f"event_{n}")
    name = factory.Sequence(lambda n: f"Event {n}")

import json

import pytest

from connector.sources.services import api_key_create
from tenants.scope import tenant_scope


@pytest.fixture
def raw_key(workspace, owner):
    """A working API key of `workspace`."""
    with tenant_scope(workspace):
        _, raw = api_key_create(actor=owner.user, name="catalog export")
    return raw


class Api:
    """The Django test client speaking JSON with a bearer key."""

    def __init__(self, client, raw_key):
        self.client, self.raw_key = client, raw_key

    def _headers(self):
        return {"Authorization": f"Bearer {self.raw_key}"} if self.raw_key else {}

    def get(self, path, params=None):
        return self.client.get(path, params or {}, headers=self._headers())

    def post(self, path, body, *, raw=False):
        data = body if raw else json.dumps(body)
        return self.client.post(
            path, data=data, content_type="application/json", headers=self._headers()
        )


@pytest.fixture
def api(client, raw_key):
    return Api(client, raw_key)


@pytest.fixture
def api_as(client):
    return lambda raw_key: Api(client, raw_key)


def in_scope(tenant, fn):
    with tenant_scope(tenant):
        return fn()

import shutil

import pytest
from django.core.cache import cache

from sandbox.testing import TEST_CLIENT, RunningSandbox
from tenants.models import Role
from tests.factories import TEST_PASSWORD, MembershipFactory, TenantFactory


def _clear_shared_state(settings):
    cache.clear()  # with Redis this flushes the database, shared JSON state included
    shutil.rmtree(settings.VAR_DIR / "state", ignore_errors=True)  # the embedded default's


@pytest.fixture(autouse=True)
def _clean_shared_state(settings):
    # Shared state (LaunchDarkly rate budgets keyed by the sandbox's
    # fixed account ids) must not leak from one test into the next.
    _clear_shared_state(settings)
    yield
    _clear_shared_state(settings)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The real hasher is slow on purpose; tests test behaviour, not hashing cost.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def password():
    return TEST_PASSWORD


@pytest.fixture
def workspace(db):
    return TenantFactory()


@pytest.fixture
def owner(workspace):
    return MembershipFactory(tenant=workspace, role=Role.OWNER)


@pytest.fixture
def admin(workspace):
    return MembershipFactory(tenant=workspace, role=Role.ADMIN)


@pytest.fixture
def member(workspace):
    return MembershipFactory(tenant=workspace, role=Role.MEMBER)


@pytest.fixture
def client_of(client):
    """A test client signed in as the given membership's user."""

    def sign_in(membership):
        client.force_login(membership.user)
        return client

    return sign_in


# --- the LaunchDarkly sandbox, with the connector's settings pointed at it ------------


def point_settings_at(sandbox, settings):
    settings.LAUNCHDARKLY_BASE_URL = sandbox.base_url
    settings.LAUNCHDARKLY_OAUTH_CLIENT_ID = TEST_CLIENT.client_id
    settings.LAUNCHDARKLY_OAUTH_CLIENT_SECRET = TEST_CLIENT.client_secret
    settings.PUBLIC_URL = "http://testserver"


@pytest.fixture
def ld(settings):
    with RunningSandbox() as sandbox:
        point_settings_at(sandbox, settings)
        yield sandbox


@pytest.fixture
def ld_with(settings):
    """A sandbox started with options (short code or token lifetimes)."""
    started = []

    def start(**options):
        sandbox = RunningSandbox(**options).__enter__()
        started.append(sandbox)
        point_settings_at(sandbox, settings)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.close()

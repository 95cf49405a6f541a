import pytest
from django.core.cache import cache

from tenants.models import Role
from tests.factories import TEST_PASSWORD, MembershipFactory, TenantFactory


@pytest.fixture(autouse=True)
def _clean_cache():
    # The cache is shared state (sign-in throttle); each test starts from nothing.
    cache.clear()
    yield
    cache.clear()


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

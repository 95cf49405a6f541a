import pytest
from django.urls import reverse

from tenants.models import AuditEvent, Membership, Role, Tenant, User
from tests.factories import TenantFactory, UserFactory

GOOD = {
    "name": "Ada",
    "email": "ada@example.com",
    "password": "correct horse battery staple",
    "workspace_name": "Ada's Shop",
    "workspace_slug": "adas-shop",
}


def counts():
    return (User.objects.count(), Tenant.objects.count(), Membership.objects.count())


@pytest.mark.django_db
def test_sign_up__valid__creates_user_workspace_owner_and_audit(client):
    response = client.post(reverse("tenants:signup"), GOOD)

    assert response.status_code == 302
    assert response["Location"] == reverse("tenants:workspace", args=["adas-shop"])
    membership = Membership.objects.get(user__email="ada@example.com")
    assert membership.role == Role.OWNER and membership.tenant.slug == "adas-shop"
    actions = set(AuditEvent.objects.unscoped().values_list("action", flat=True))
    assert actions == {"workspace.created", "user.signed_up"}
    # Signed in straight away.
    assert client.get(reverse("tenants:workspace", args=["adas-shop"])).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"email": "taken@example.com"}, "email", "An account with this email exists"),
        ({"password": "short"}, "password", "too short"),
        ({"password": "password123456"}, "password", "too common"),
        ({"workspace_slug": "Not A Slug!"}, "workspace_slug", "lowercase letters"),
        ({"workspace_slug": "-dash"}, "workspace_slug", "lowercase letters"),
        ({"workspace_slug": "admin"}, "workspace_slug", "reserved"),
        ({"workspace_slug": "taken-slug"}, "workspace_slug", "taken"),
        ({"email": "not-an-email"}, "email", "valid email"),
    ],
)
def test_sign_up__bad_input__form_error_and_nothing_created(client, change, field, message):
    UserFactory(email="taken@example.com")
    TenantFactory(slug="taken-slug")
    before = counts()

    response = client.post(reverse("tenants:signup"), {**GOOD, **change})

    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors.get(field, []))
    assert message in errors
    assert counts() == before
    assert AuditEvent.objects.unscoped().count() == 0

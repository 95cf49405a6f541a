import pytest
from django.urls import reverse

from tenants.models import AuditEvent, Membership, Role
from tests.factories import MembershipFactory, TenantFactory


def change_role(client, membership, role):
    return client.post(
        reverse("tenants:member_role", args=[membership.tenant.slug, membership.pk]),
        {"role": role},
        follow=True,
    )


def role_of(membership):
    return Membership.objects.get(pk=membership.pk).role


@pytest.mark.django_db
def test_role_change__admin_promotes_member__changed_and_audited(client_of, admin, member):
    response = change_role(client_of(admin), member, Role.ADMIN)
    assert "is now Admin" in response.content.decode()
    assert role_of(member) == Role.ADMIN
    event = AuditEvent.objects.unscoped().get(action="member.role_changed")
    assert event.details == {"from": "member", "to": "admin"} and event.actor == admin.user


@pytest.mark.django_db
def test_role_change__admin_grants_owner__refused(client_of, admin, member):
    response = change_role(client_of(admin), member, Role.OWNER)
    assert "Only an owner" in response.content.decode()
    assert role_of(member) == Role.MEMBER


@pytest.mark.django_db
def test_role_change__last_owner_steps_down__refused(client_of, owner):
    response = change_role(client_of(owner), owner, Role.MEMBER)
    assert "needs an owner" in response.content.decode()
    assert role_of(owner) == Role.OWNER
    assert not AuditEvent.objects.unscoped().filter(action="member.role_changed").exists()


@pytest.mark.django_db
def test_role_change__owner_hands_over__allowed(client_of, owner, member):
    change_role(client_of(owner), member, Role.OWNER)
    change_role(client_of(owner), owner, Role.ADMIN)
    assert (role_of(member), role_of(owner)) == (Role.OWNER, Role.ADMIN)


@pytest.mark.django_db
def test_role_change__unknown_role__message_nothing_changed(client_of, admin, member):
    response = change_role(client_of(admin), member, "emperor")
    assert "Choose a role" in response.content.decode()
    assert role_of(member) == Role.MEMBER


@pytest.mark.django_db
def test_audit_log__admin_sees_this_workspace_rows_only(client_of, admin, member, workspace):
    change_role(client_of(admin), member, Role.ADMIN)
    other = MembershipFactory(tenant=TenantFactory(), role=Role.OWNER)
    change_role(client_of(other), MembershipFactory(tenant=other.tenant), Role.ADMIN)

    page = client_of(admin).get(reverse("tenants:audit", args=[workspace.slug])).content.decode()

    assert member.user.email in page
    assert page.count("member.role_changed") == 1


@pytest.mark.django_db
def test_workspace_switch__user_in_two_workspaces__lists_both_and_opens_each(client_of, member):
    second = MembershipFactory(user=member.user, tenant=TenantFactory(name="Second one"))
    client = client_of(member)

    home = client.get(reverse("tenants:home")).content.decode()

    assert member.tenant.name in home and "Second one" in home
    for m in (member, second):
        page = client.get(reverse("tenants:workspace", args=[m.tenant.slug]))
        assert page.status_code == 200 and page.context["workspace"] == m.tenant


@pytest.mark.django_db
def test_new_workspace__second_workspace__owner_of_it(client_of, member):
    client = client_of(member)
    response = client.post(reverse("tenants:workspace_new"), {"name": "Side", "slug": "side"})
    assert response.status_code == 302
    assert Membership.objects.get(user=member.user, tenant__slug="side").role == Role.OWNER
    bad = client.post(reverse("tenants:workspace_new"), {"name": "Bad", "slug": "Bad Slug"})
    assert "lowercase letters" in bad.content.decode()

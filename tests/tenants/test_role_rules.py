"""One rule for every path that grants a role: nobody grants a role above their own,
only an owner grants owner, and the last owner stays. Each path is walked with every
actor role and every role it could grant."""

import re

import pytest
from django.urls import reverse

from tenants import services
from tenants.models import Invitation, Membership, Role
from tenants.scope import tenant_scope
from tests.factories import MembershipFactory, UserFactory

RANK = {Role.MEMBER: 0, Role.ADMIN: 1, Role.OWNER: 2}
ROLES = [Role.OWNER, Role.ADMIN, Role.MEMBER]


def may_grant(actor_role, role):
    return actor_role != Role.MEMBER and RANK[role] <= RANK[actor_role]


@pytest.fixture
def real_owner(workspace):
    # Every workspace below has an owner besides the actor, so "last owner" never
    # decides these cases; it has its own tests.
    return MembershipFactory(tenant=workspace, role=Role.OWNER)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("actor_role", ROLES)
def test_invite__every_actor_and_role__only_grantable_roles_invited(
    client_of, workspace, real_owner, actor_role, role
):
    actor = MembershipFactory(tenant=workspace, role=actor_role)
    client_of(actor).post(
        reverse("tenants:member_invite", args=[workspace.slug]),
        {"email": "new@example.com", "role": role},
    )
    invited = Invitation.objects.unscoped().filter(email="new@example.com").first()
    if may_grant(actor_role, role):
        assert invited is not None and invited.role == role
    else:
        assert invited is None


@pytest.mark.django_db
@pytest.mark.parametrize("new_role", ROLES)
@pytest.mark.parametrize("target_role", ROLES)
@pytest.mark.parametrize("actor_role", ROLES)
def test_change_role__every_actor_target_and_role__rule_holds(
    client_of, workspace, real_owner, actor_role, target_role, new_role
):
    actor = MembershipFactory(tenant=workspace, role=actor_role)
    target = MembershipFactory(tenant=workspace, role=target_role)
    client_of(actor).post(
        reverse("tenants:member_role", args=[workspace.slug, target.pk]), {"role": new_role}
    )
    allowed = may_grant(actor_role, new_role) and may_grant(actor_role, target_role)
    expected = new_role if allowed else target_role
    assert Membership.objects.get(pk=target.pk).role == expected


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("inviter_role_at_accept", [*ROLES, None])
def test_accept__inviter_lost_their_role__grants_only_what_they_may_grant_now(
    client, workspace, real_owner, role, inviter_role_at_accept
):
    inviter = MembershipFactory(tenant=workspace, role=Role.OWNER)
    with tenant_scope(workspace):
        _, token = services.invitation_create(actor=inviter.user, email="j@example.com", role=role)
    if inviter_role_at_accept is None:
        inviter.delete()  # left the workspace
    else:
        Membership.objects.filter(pk=inviter.pk).update(role=inviter_role_at_accept)
    joiner = UserFactory(email="j@example.com")
    client.force_login(joiner)

    client.post(reverse("tenants:invitation", args=[token]))
    joined = Membership.objects.filter(tenant=workspace, user=joiner).first()
    if inviter_role_at_accept is not None and may_grant(inviter_role_at_accept, role):
        assert joined is not None and joined.role == role
    else:
        assert joined is None
        assert Invitation.objects.unscoped().get(email="j@example.com").accepted_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("actor_role", [Role.OWNER, Role.ADMIN])
def test_members_page__forms_offer_only_grantable_roles(client_of, workspace, actor_role):
    actor = MembershipFactory(tenant=workspace, role=actor_role)
    MembershipFactory(tenant=workspace, role=Role.MEMBER)
    page = client_of(actor).get(reverse("tenants:members", args=[workspace.slug]))
    html = page.content.decode()
    offered = set(re.findall(r'<option value="(\w+)"', html))
    if actor_role == Role.OWNER:
        assert offered == {"owner", "admin", "member"}
    else:
        assert offered == {"admin", "member"}


@pytest.mark.django_db
def test_members_page__admin_sees_owner_role_as_text_not_a_form(client_of, workspace, real_owner):
    actor = MembershipFactory(tenant=workspace, role=Role.ADMIN)
    html = client_of(actor).get(reverse("tenants:members", args=[workspace.slug])).content
    assert f'aria-label="Role of {real_owner.user.email}"' not in html.decode()


@pytest.mark.django_db
def test_last_owner__cannot_be_demoted_by_any_path(client_of, workspace):
    only_owner = MembershipFactory(tenant=workspace, role=Role.OWNER)
    response = client_of(only_owner).post(
        reverse("tenants:member_role", args=[workspace.slug, only_owner.pk]),
        {"role": Role.ADMIN},
        follow=True,
    )
    assert "needs an owner" in response.content.decode()
    assert Membership.objects.get(pk=only_owner.pk).role == Role.OWNER


@pytest.mark.django_db
def test_invite__workspace_name_with_newline__invitation_sent_on_one_line(
    client_of, workspace, mailoutbox, django_capture_on_commit_callbacks
):
    workspace.name = "Acme\nBcc: victim@example.com"
    workspace.save()
    owner = MembershipFactory(tenant=workspace, role=Role.OWNER)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_of(owner).post(
            reverse("tenants:member_invite", args=[workspace.slug]),
            {"email": "new@example.com", "role": Role.MEMBER},
        )
    assert response.status_code == 302
    assert [m.subject for m in mailoutbox] == ["You are invited to Acme Bcc: victim@example.com"]
    assert mailoutbox[0].to == ["new@example.com"]

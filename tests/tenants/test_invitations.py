import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tenants.models import AuditEvent, Invitation, Membership, Role
from tests.factories import UserFactory


def invite(client, workspace, email, role="member"):
    return client.post(
        reverse("tenants:member_invite", args=[workspace.slug]), {"email": email, "role": role}
    )


def link_path(message):
    return re.search(r"https?://[^/]+(/invitations/\S+/)", message.body).group(1)


@pytest.mark.django_db
def test_invite__by_admin__emails_single_use_link_and_audits(
    client_of, admin, workspace, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(client_of(admin), workspace, "New.Person@Example.com", "admin")
    assert response.status_code == 302
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["new.person@example.com"]

    invitation = Invitation.objects.unscoped().get()
    path = link_path(mailoutbox[0])
    assert invitation.token_hash not in path  # only the hash is stored, never the link
    assert AuditEvent.objects.unscoped().filter(action="member.invited").count() == 1


@pytest.mark.django_db
def test_invite__accept_with_matching_account__joins_with_role(
    client, client_of, admin, workspace, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invite(client_of(admin), workspace, "joiner@example.com", "admin")
    path = link_path(mailoutbox[0])
    joiner = UserFactory(email="joiner@example.com")
    client.force_login(joiner)

    response = client.post(path)

    assert response.status_code == 302
    assert Membership.objects.get(user=joiner, tenant=workspace).role == Role.ADMIN
    # Used once: a second use is refused and changes nothing.
    again = client.post(path)
    assert again.status_code == 410 and "already been used" in again.content.decode()
    assert Membership.objects.filter(user=joiner).count() == 1


@pytest.mark.django_db
def test_invite__expired__clear_message_nothing_created(
    client, client_of, admin, workspace, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invite(client_of(admin), workspace, "late@example.com")
    Invitation.objects.unscoped().update(expires_at=timezone.now() - timedelta(seconds=1))
    client.force_login(UserFactory(email="late@example.com"))

    response = client.post(link_path(mailoutbox[0]))

    assert response.status_code == 410 and "expired" in response.content.decode()
    assert Membership.objects.filter(user__email="late@example.com").count() == 0


@pytest.mark.django_db
def test_invite__other_account_accepts__refused(
    client, client_of, admin, workspace, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invite(client_of(admin), workspace, "meant@example.com")
    client.force_login(UserFactory(email="someone-else@example.com"))

    response = client.post(link_path(mailoutbox[0]))

    assert response.status_code == 410 and "meant@example.com" in response.content.decode()
    assert Membership.objects.filter(tenant=workspace).count() == 1


@pytest.mark.django_db
def test_invite__anonymous_visitor__asked_to_sign_in_then_lands_back(
    client, password, client_of, admin, workspace, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invite(client_of(admin), workspace, "anon@example.com")
    path = link_path(mailoutbox[0])
    client.logout()

    page = client.get(path).content.decode()

    assert "Sign in" in page and "anon@example.com" in page
    assert f"?next={path}" in page
    user = UserFactory(email="anon@example.com")
    signed_in = client.post(
        reverse("tenants:login"), {"username": user.email, "password": password, "next": path}
    )
    assert signed_in["Location"] == path


@pytest.mark.django_db
def test_invite__bogus_token__clear_message(client):
    response = client.get(reverse("tenants:invitation", args=["not-a-real-token"]))
    assert response.status_code == 410 and "not valid" in response.content.decode()


@pytest.mark.django_db
def test_invite__existing_member__form_error_nothing_sent(
    client_of, admin, member, workspace, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = invite(client_of(admin), workspace, member.user.email)
    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    assert mailoutbox == [] and Invitation.objects.unscoped().count() == 0

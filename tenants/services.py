"""Writes about workspaces: each takes the acting user, runs in one transaction,
records its audit row and sends email only after the transaction commits."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from connector.mail import send_safe_mail
from tenants.models import (
    RESERVED_SLUGS,
    ROLE_RANK,
    AuditAction,
    AuditEvent,
    Invitation,
    Membership,
    Role,
    Tenant,
    User,
    slug_validator,
)
from tenants.scope import current_tenant, tenant_scope


class InvitationInvalid(Exception):
    """The invitation link cannot be used; the message says why, for the user."""


class RoleChangeRefused(Exception):
    """The role change would break a rule; the message says which, for the user."""


def grantable_roles(actor_role: str) -> list[Role]:
    """The roles someone with `actor_role` may give, highest first: none for a member,
    never one above their own (so only an owner gives owner)."""
    if actor_role == Role.MEMBER:
        return []
    return [role for role in Role if ROLE_RANK[role] <= ROLE_RANK[Role(actor_role)]]


def check_may_grant(actor_role: str | None, role: str) -> None:
    """The one rule every role-granting path applies (invite, accept, change role)."""
    if actor_role is None or actor_role == Role.MEMBER:
        raise RoleChangeRefused("Only admins and owners can give roles.")
    if role not in grantable_roles(actor_role):
        if role == Role.OWNER:
            raise RoleChangeRefused("Only an owner can grant or remove the owner role.")
        raise RoleChangeRefused("You cannot give a role above your own.")


def _role_in(tenant: Tenant, user: User | None) -> str | None:
    membership = Membership.objects.filter(tenant=tenant, user=user).first() if user else None
    return membership.role if membership else None


def audit_record(
    *, actor: User | None, action: AuditAction, target: str = "", details: dict | None = None
) -> AuditEvent:
    """Record an action in the workspace in scope. `details` must hold no secret."""
    return AuditEvent.objects.create(
        tenant=current_tenant(), actor=actor, action=action, target=target, details=details or {}
    )


def validate_new_slug(slug: str) -> None:
    slug_validator(slug)
    if slug in RESERVED_SLUGS:
        raise ValidationError("This address is reserved. Choose another.")
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationError("This address is taken. Choose another.")


@transaction.atomic
def workspace_create(*, actor: User, name: str, slug: str) -> Tenant:
    validate_new_slug(slug)
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(name=name, slug=slug)
    except IntegrityError as exc:  # lost a race for the same slug
        raise ValidationError("This address is taken. Choose another.") from exc
    Membership.objects.create(user=actor, tenant=tenant, role=Role.OWNER)
    with tenant_scope(tenant):
        audit_record(
            actor=actor, action=AuditAction.WORKSPACE_CREATED, target=slug, details={"name": name}
        )
    return tenant


@transaction.atomic
def user_sign_up(
    *, email: str, password: str, name: str, workspace_name: str, workspace_slug: str
) -> tuple[User, Tenant]:
    """A new user, their first workspace and their owner membership, or nothing."""
    email = email.strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError("An account with this email exists. Sign in instead.")
    user = User.objects.create_user(email=email, password=password, name=name)
    tenant = workspace_create(actor=user, name=workspace_name, slug=workspace_slug)
    with tenant_scope(tenant):
        audit_record(actor=user, action=AuditAction.USER_SIGNED_UP, target=email)
    return user, tenant


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def invitation_create(*, actor: User, email: str, role: str) -> tuple[Invitation, str]:
    """Invite someone to the workspace in scope; returns the invitation and its raw token
    (which only ever travels in the email). Raises RoleChangeRefused for a role the
    actor may not give."""
    tenant = current_tenant()
    check_may_grant(_role_in(tenant, actor), role)
    email = email.strip().lower()
    if Membership.objects.filter(tenant=tenant, user__email__iexact=email).exists():
        raise ValidationError("This person is already a member of the workspace.")
    raw_token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        tenant=tenant,
        email=email,
        role=role,
        token_hash=_hash_token(raw_token),
        invited_by=actor,
        expires_at=timezone.now() + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    audit_record(
        actor=actor, action=AuditAction.MEMBER_INVITED, target=email, details={"role": role}
    )
    link = settings.PUBLIC_URL + reverse("tenants:invitation", args=[raw_token])
    body = render_to_string(
        "tenants/email/invitation.txt",
        {
            "tenant": tenant,
            "inviter": actor,
            "link": link,
            "role": role,
            "days": settings.INVITATION_TTL_DAYS,
        },
    )
    transaction.on_commit(
        lambda: send_safe_mail(subject=f"You are invited to {tenant.name}", body=body, to=[email])
    )
    return invitation, raw_token


def invitation_by_token(*, raw_token: str) -> Invitation:
    """The invitation a link points at, whatever workspace it belongs to (the link
    is the only credential an invitee has, so this lookup must cross workspaces)."""
    invitation = (
        Invitation.objects.unscoped()
        .select_related("tenant")
        .filter(token_hash=_hash_token(raw_token))
        .first()
    )
    if invitation is None:
        raise InvitationInvalid("This invitation link is not valid.")
    if invitation.accepted_at is not None:
        raise InvitationInvalid("This invitation has already been used.")
    if invitation.expires_at <= timezone.now():
        raise InvitationInvalid(
            "This invitation has expired. Ask the workspace's admin for a new one."
        )
    return invitation


@transaction.atomic
def invitation_accept(*, raw_token: str, actor: User) -> Membership:
    invitation = invitation_by_token(raw_token=raw_token)
    # Lock the row so two tabs accepting at once cannot both succeed.
    invitation = Invitation.objects.unscoped().select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None:
        raise InvitationInvalid("This invitation has already been used.")
    if invitation.email.lower() != actor.email.lower():
        raise InvitationInvalid(
            f"This invitation is for {invitation.email}. Sign in with that address to accept it."
        )
    tenant = invitation.tenant
    # The grant happens now, so the inviter must still be allowed to make it: an admin
    # demoted (or gone) since sending the link no longer hands out admin.
    try:
        check_may_grant(_role_in(tenant, invitation.invited_by), invitation.role)
    except RoleChangeRefused as exc:
        raise InvitationInvalid(
            "This invitation is no longer valid: whoever sent it can no longer give the "
            f"{invitation.get_role_display().lower()} role. Ask the workspace's admin for a "
            "new one."
        ) from exc
    membership, created = Membership.objects.get_or_create(
        user=actor, tenant=tenant, defaults={"role": invitation.role}
    )
    with tenant_scope(tenant):
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = actor
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(
            actor=actor,
            action=AuditAction.INVITATION_ACCEPTED,
            target=actor.email,
            details={"role": membership.role, "already_member": not created},
        )
    return membership


@transaction.atomic
def membership_change_role(*, actor: User, membership: Membership, role: str) -> Membership:
    """Change a member's role in the workspace in scope, by an admin or owner.

    The actor must be allowed to give both the member's current role and the new one
    (so only owners make or unmake owners), and a workspace always keeps one owner."""
    tenant = current_tenant()
    # Re-read under a lock: two admins demoting the last two owners at once must not both win.
    membership = (
        Membership.objects.select_for_update()
        .select_related("user")
        .get(pk=membership.pk, tenant=tenant)
    )
    # The actor's role as it is now, not as it was when their page was rendered.
    actor_role = _role_in(tenant, actor)
    check_may_grant(actor_role, membership.role)
    check_may_grant(actor_role, role)
    if membership.role == Role.OWNER and role != Role.OWNER:
        owners = Membership.objects.select_for_update().filter(tenant=tenant, role=Role.OWNER)
        if len(owners) <= 1:
            raise RoleChangeRefused("A workspace needs an owner. Make someone else owner first.")
    previous = membership.role
    if previous == role:
        return membership
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action=AuditAction.MEMBER_ROLE_CHANGED,
        target=membership.user.email,
        details={"from": previous, "to": role},
    )
    return membership

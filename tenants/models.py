"""Workspaces (tenants), the people in them, invitations and the audit log."""

from __future__ import annotations

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from tenants.scope import TenantOwnedModel


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Signs in with an email address; belongs to workspaces through memberships."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Operators of the connector.")
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    def __str__(self) -> str:
        return self.email


slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$",
    "Use 1 to 40 lowercase letters, digits and hyphens, starting and ending with a "
    "letter or digit.",
)

# Slugs that would read as part of the product rather than a workspace.
RESERVED_SLUGS = frozenset({"admin", "api", "static", "new", "settings", "w", "www", "sandbox"})


class Tenant(models.Model):
    """A customer's workspace. Everything tenant-owned hangs off one of these."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=40, unique=True, validators=[slug_validator])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "workspace"

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


ROLE_RANK = {Role.MEMBER: 0, Role.ADMIN: 1, Role.OWNER: 2}


class Membership(models.Model):
    """A user's place in a workspace. This row is what grants a workspace scope, so it
    is looked up across workspaces by design and is not itself tenant-scoped."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="one_membership_per_workspace")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"

    def has_role(self, minimum: str) -> bool:
        return ROLE_RANK[Role(self.role)] >= ROLE_RANK[Role(minimum)]


class Invitation(TenantOwnedModel):
    """An emailed, single-use link that makes its holder a member with a role."""

    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    # Only a hash of the link's token is stored: a database leak yields no usable link.
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.tenant_id}"


class AuditAction(models.TextChoices):
    """Everything the audit log records, in one vocabulary (the values are stored)."""

    WORKSPACE_CREATED = "workspace.created", "Workspace created"
    USER_SIGNED_UP = "user.signed_up", "Signed up"
    MEMBER_INVITED = "member.invited", "Member invited"
    INVITATION_ACCEPTED = "invitation.accepted", "Invitation accepted"
    MEMBER_ROLE_CHANGED = "member.role_changed", "Role changed"
    LAUNCHDARKLY_CONNECTED = "launchdarkly.connected", "LaunchDarkly connected"
    LAUNCHDARKLY_RECONNECTED = "launchdarkly.reconnected", "LaunchDarkly reconnected"
    LAUNCHDARKLY_PROJECT_CHOSEN = "launchdarkly.project_chosen", "Project chosen"
    LAUNCHDARKLY_DISCONNECTED = "launchdarkly.disconnected", "LaunchDarkly disconnected"
    LAUNCHDARKLY_NEEDS_REAUTH = "launchdarkly.needs_reauth", "LaunchDarkly needs reconnecting"
    IMPORT_TOKEN_SET = "launchdarkly.import_token_set", "Event import token set"
    LAUNCHDARKLY_UNIT_REGISTERED = (
        "launchdarkly.unit_registered",
        "Randomization unit registered in LaunchDarkly",
    )
    EVENTS_UPSERTED = "events.upserted", "Events added or updated"
    EVENTS_ARCHIVED = "events.archived", "Events archived"
    EVENTS_REMOVED_AT_SOURCE = "events.removed_at_source", "Events removed at the source"
    API_KEY_CREATED = "api_key.created", "API key created"
    API_KEY_REVOKED = "api_key.revoked", "API key revoked"
    PLAN_APPLIED = "plan.applied", "Plan applied"
    SYNC_RETRY_FAILED = "sync.retry_failed", "Failed items retried"
    SYNC_RETRY_ITEM = "sync.retry_item", "Item retried"


class AuditEvent(TenantOwnedModel):
    """Who did what in which workspace, when. Never holds a secret."""

    actor = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    action = models.CharField(max_length=64, choices=AuditAction.choices)
    target = models.CharField(max_length=200, blank=True)
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["tenant", "-at"], name="audit_by_workspace_time")]

    def __str__(self) -> str:
        return f"{self.action} {self.target}"


class SignInCounter(models.Model):
    """Failed sign-ins counted for one scope (an account from one address, or one
    address), so every web process sees the same count. `key` is a hash: the table
    holds no email address. Not tenant-scoped: sign-in happens before any workspace."""

    key = models.CharField(max_length=64, unique=True)
    # The account's hash for an account's scope, so a password reset can clear them all.
    account = models.CharField(max_length=64, blank=True, db_index=True)
    failures = models.PositiveIntegerField(default=0)
    window_started_at = models.DateTimeField()
    # No attempt in this scope before this moment (the soft steps, then the lockout).
    next_attempt_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.failures} failures since {self.window_started_at:%Y-%m-%d %H:%M}"

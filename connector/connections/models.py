"""A workspace's link to its LaunchDarkly account."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from connector import crypto
from connector.launchdarkly.instances import INSTANCE_CHOICES, display_label
from connector.launchdarkly.types import AuthKind
from tenants.scope import TenantOwnedModel


class Status(models.TextChoices):
    ACTIVE = "active", "Connected"
    NEEDS_REAUTH = "needs_reauth", "Needs re-authorisation"
    DISCONNECTED = "disconnected", "Disconnected"


class LaunchDarklyConnection(TenantOwnedModel):
    """One per workspace. Tokens are stored only encrypted (connector.crypto) and are
    read through `access_token()` / `refresh_token()`, never as plain attributes, so
    no form, admin page or template can render them by accident."""

    instance = models.CharField(max_length=16, choices=INSTANCE_CHOICES)
    auth_kind = models.CharField(max_length=16, choices=AuthKind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    status_reason = models.CharField(max_length=300, blank=True)

    access_token_encrypted = models.TextField(blank=True)
    refresh_token_encrypted = models.TextField(blank=True)
    token_hint = models.CharField(max_length=4, blank=True, help_text="Last four characters.")
    expires_at = models.DateTimeField(null=True, blank=True)
    # What the token may do: an API token's role (read with getToken) and the metric
    # and import actions its custom roles allow, or an OAuth grant's scopes.
    scopes = models.JSONField(default=list, blank=True)
    # A service token acts for no member: metrics it creates have no maintainer unless
    # the workspace names one (sync settings).
    service_token = models.BooleanField(default=False)

    account_id = models.CharField(max_length=64, blank=True)
    member_id = models.CharField(max_length=64, blank=True)
    # LaunchDarkly's API has no account name (CallerIdentityRep and getMember give ids,
    # names and emails of members only), so people recognise the account by whose it is.
    member_email = models.CharField(max_length=254, blank=True)
    member_name = models.CharField(max_length=200, blank=True)
    token_name = models.CharField(max_length=200, blank=True)
    project_key = models.CharField(max_length=140, blank=True)
    project_name = models.CharField(max_length=200, blank=True)

    # LaunchDarkly recommends a dedicated token allowing `importEventData` for the
    # metric event import, and does not say OAuth tokens work there: a workspace may
    # paste one beside its connection. Encrypted like the others.
    import_token_encrypted = models.TextField(blank=True)
    import_token_hint = models.CharField(max_length=4, blank=True)
    import_token_grants = models.JSONField(default=list, blank=True)

    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    connected_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="one_launchdarkly_connection")
        ]

    def __str__(self) -> str:
        return f"{self.get_instance_display()} account {self.account_id or '?'}"

    # --- what people read ------------------------------------------------------------
    @property
    def instance_label(self) -> str:
        """Where this connection really talks to: LaunchDarkly's host, or the sandbox."""
        return display_label(self.instance) if self.instance else ""

    @property
    def account_label(self) -> str:
        """The account in words: whose it is, else the token's name, else its id."""
        if self.member_email:
            who = f"{self.member_name} ({self.member_email})" if self.member_name else ""
            return f"The account of {who or self.member_email}"
        return self.token_name or self.account_id or "an unknown account"

    @property
    def access_label(self) -> str:
        """What the connector may do with this connection: an API token's role, or the
        OAuth grant's scope (LaunchDarkly names both reader/writer)."""
        granted = [str(s) for s in self.scopes or []]
        if not granted:
            return ""
        head, rest = granted[0], granted[1:]
        if self.auth_kind == AuthKind.API_TOKEN:
            kind = " (service token)" if self.service_token else ""
            if head == "custom role":
                allows = f" allowing {', '.join(rest)}" if rest else ""
                return f"a custom role{allows}{kind}"
            extra = f", plus {', '.join(rest)}" if rest else ""
            return f"role {head.capitalize()}{extra}{kind}"
        return f"scope {', '.join(granted)}"

    # --- secrets -------------------------------------------------------------------
    def set_tokens(self, *, access_token: str, refresh_token: str = "") -> None:
        self.access_token_encrypted = crypto.encrypt(access_token)
        self.refresh_token_encrypted = crypto.encrypt(refresh_token) if refresh_token else ""
        self.token_hint = access_token[-4:]

    def clear_tokens(self) -> None:
        self.access_token_encrypted = ""
        self.refresh_token_encrypted = ""
        self.expires_at = None

    def access_token(self) -> str:
        return crypto.decrypt(self.access_token_encrypted) if self.access_token_encrypted else ""

    def refresh_token(self) -> str:
        return crypto.decrypt(self.refresh_token_encrypted) if self.refresh_token_encrypted else ""

    def import_token(self) -> str:
        return crypto.decrypt(self.import_token_encrypted) if self.import_token_encrypted else ""

    @property
    def import_access(self) -> tuple[bool | None, str]:
        """Whether the token the event import uses may import (None: LaunchDarkly does
        not say), and that in words for the connection page."""
        if self.import_token_encrypted:
            grants = [str(g) for g in self.import_token_grants or []]
            allowed = "importEventData" in grants or (grants[:1] == ["writer"])
            what = ", ".join(grants) or "unknown role"
            return allowed, (
                f"Events are imported with the pasted import token ending in "
                f"…{self.import_token_hint} ({what})."
                + ("" if allowed else " It does not allow importEventData.")
            )
        if self.auth_kind == AuthKind.OAUTH:
            return None, (
                "LaunchDarkly does not say that OAuth tokens may import events: paste a "
                "dedicated token that allows importEventData to import them."
            )
        grants = [str(g) for g in self.scopes or []]
        if "importEventData" in grants:
            return True, "The connection's token allows importEventData."
        if grants[:1] == ["writer"]:
            return True, (
                "The connection's token has the Writer role. LaunchDarkly recommends a "
                "dedicated token that allows importEventData."
            )
        return False, "The connection's token does not allow importEventData."

    # --- state ---------------------------------------------------------------------
    @property
    def is_usable(self) -> bool:
        """Workers may call LaunchDarkly with it."""
        return self.status == Status.ACTIVE and bool(self.access_token_encrypted)

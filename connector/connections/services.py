"""Connecting a workspace to LaunchDarkly, keeping its token fresh, and letting go.

Every action runs in the workspace in scope, writes an audit row, stores tokens only
encrypted, and leaves nothing half-stored when LaunchDarkly says no.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from connector import crypto
from connector.connections import signals
from connector.connections.models import AuthKind, LaunchDarklyConnection, Status
from connector.connections.selectors import connection_of_workspace
from connector.launchdarkly import errors, instances
from connector.launchdarkly.budget import RateBudget
from connector.launchdarkly.client import LaunchDarklyClient
from connector.launchdarkly.oauth import OAuthClient, TokenSet
from connector.launchdarkly.transport import RateLimitCallback
from connector.launchdarkly.types import CallerIdentity, Project
from connector.shared_state import shared_lock
from tenants.models import AuditAction, User
from tenants.scope import current_tenant
from tenants.services import audit_record

log = logging.getLogger(__name__)

# Refresh this long before expiry, so a token never dies in the middle of a sync.
REFRESH_MARGIN = timedelta(minutes=5)


class ConnectionRefused(Exception):
    """LaunchDarkly did not accept the credentials; the message says why, for the user."""


class ReauthorizationRequired(Exception):
    """The connection's credentials are dead: a person must reconnect."""


@dataclass(frozen=True)
class ConnectionChange:
    """What a (re)connection or a project choice did, for the person who did it."""

    connection: LaunchDarklyConnection
    # The connection now points at another account, instance or project than before.
    target_changed: bool = False
    # Unfinished items planned for the old place, cancelled so none is sent here.
    cancelled: int = 0


ACCOUNT_CHANGED_REASON = (
    "Cancelled: the workspace was connected to another LaunchDarkly account; "
    "apply a plan again to create the metrics there."
)


def oauth_client(instance: str) -> OAuthClient:
    return OAuthClient(
        base_url=instances.api_base_url(instance),
        client_id=settings.LAUNCHDARKLY_OAUTH_CLIENT_ID,
        client_secret=settings.LAUNCHDARKLY_OAUTH_CLIENT_SECRET,
        redirect_uri=oauth_redirect_uri(),
    )


def oauth_redirect_uri() -> str:
    """The one redirect URI registered with LaunchDarkly (it allows exactly one, with no
    query string), so the workspace travels in the OAuth state, not in this URL."""
    return f"{settings.PUBLIC_URL}/connect/launchdarkly/callback"


def _client(*, instance: str, token: str, auth_kind: str, **options: Any) -> LaunchDarklyClient:
    return LaunchDarklyClient(
        base_url=instances.api_base_url(instance),
        token=token,
        auth_kind=AuthKind(auth_kind),
        **options,
    )


@dataclass(frozen=True)
class TokenAccess:
    """What a token may do, as LaunchDarkly states it. For an API token that is the
    token itself (getToken: `role`, `customRoleIds`, `inlineRole`, `serviceToken`),
    because caller identity's `scopes` has no documented meaning for API tokens; for an
    OAuth token it is the granted scope."""

    grants: list[str]  # e.g. ["writer"], ["reader"], ["custom role", "importEventData"]
    service_token: bool = False


# Custom-role actions worth naming on the connection page: creating and changing
# metrics, and importing events into them (the event import needs importEventData).
NAMED_ACTIONS = ("createMetric", "updateMetric", "deleteMetric", "importEventData")


@sensitive_variables("token")
def _identify(*, instance: str, token: str, auth_kind: str) -> tuple[CallerIdentity, TokenAccess]:
    """Who the token is, what it may do, and proof that it may write metrics; or
    ConnectionRefused."""
    client = _client(instance=instance, token=token, auth_kind=auth_kind)
    try:
        identity = client.get_caller_identity()
        if auth_kind == AuthKind.OAUTH:
            access = TokenAccess(grants=sorted(identity.get("scopes") or []))
        else:
            access = _api_token_access(client, identity)
    except (errors.Unauthorized, errors.Forbidden) as exc:
        raise ConnectionRefused(
            "LaunchDarkly does not accept this token: it is unknown, revoked or expired. "
            "Create a new access token in LaunchDarkly (Account settings, Authorization)."
        ) from exc
    except errors.RateLimited as exc:
        raise ConnectionRefused(
            f"LaunchDarkly is rate limiting this account; try again in {exc.retry_after_s:.0f} s."
        ) from exc
    except errors.LaunchDarklyError as exc:
        raise ConnectionRefused(
            "LaunchDarkly could not be reached or answered with an error. Nothing was saved; "
            "try again in a moment."
        ) from exc
    role = access.grants[0] if access.grants else ""
    if role in READ_ONLY_ROLES:
        raise ConnectionRefused(
            f"This token has the role {role.capitalize()}, which cannot create metrics. "
            "Use a token with the Writer role (or a custom role that allows creating metrics)."
        )
    return identity, access


# Built-in roles (and the OAuth scope) that cannot create metrics.
READ_ONLY_ROLES = frozenset({"reader", "no_access"})


def _api_token_access(client: LaunchDarklyClient, identity: CallerIdentity) -> TokenAccess:
    """The API token's role and the actions its custom or inline roles name."""
    token_id = identity.get("tokenId") or ""
    if not token_id:
        # Nothing to read the role from: LaunchDarkly will refuse what the token may
        # not do, and that answer is shown where it happens.
        return TokenAccess(grants=[], service_token=bool(identity.get("serviceToken")))
    token = client.get_token(token_id)
    role = str(token.get("role") or "")
    actions: set[str] = set()
    for statement in token.get("inlineRole") or []:
        if isinstance(statement, dict) and statement.get("effect") == "allow":
            actions.update(str(a) for a in statement.get("actions") or [])
    custom = bool(token.get("customRoleIds")) or bool(token.get("inlineRole"))
    named = [a for a in NAMED_ACTIONS if a in actions or "*" in actions]
    # Without a base role only its custom roles decide; their actions are named.
    only_custom = custom and role in ("", "no_access")
    head = ["custom role"] if only_custom else ([role] if role else [])
    return TokenAccess(grants=head + named, service_token=bool(token.get("serviceToken", False)))


@sensitive_variables("token")
def _member_of(*, instance: str, token: str, auth_kind: str, identity: CallerIdentity) -> dict:
    """The member the token acts for (getMember), so pages can say whose account it is.
    Only a nicety: a service token has no member, and a failure here must not stop a
    connection that caller identity already proved."""
    member_id = identity.get("memberId") or ""
    if not member_id:
        return {}
    try:
        return _client(instance=instance, token=token, auth_kind=auth_kind).get_member(member_id)
    except errors.LaunchDarklyError:
        log.info("getMember failed for a new connection; showing the account id instead")
        return {}


@sensitive_variables("tokens", "replaced_grant")
def _save_connection(
    *,
    actor: User,
    instance: str,
    auth_kind: str,
    identity: CallerIdentity,
    access: TokenAccess,
    member: dict,
    tokens: TokenSet,
    audit_details: dict,
) -> ConnectionChange:
    """Store the (re)connection and audit it. On the same account, paused work goes
    back in line; on another account or instance, nothing planned for the old one may
    go there: it is cancelled and the project must be chosen again. A grant the new
    credentials replace is revoked once this commits."""
    existing = connection_of_workspace()
    connection = existing or LaunchDarklyConnection()
    old_instance, old_account = connection.instance, connection.account_id
    replaced_grant = (
        connection.refresh_token()
        if existing
        and connection.auth_kind == AuthKind.OAUTH
        and connection.refresh_token_encrypted
        else ""
    )
    moved = bool(old_account) and (old_account, old_instance) != (
        identity.get("accountId", ""),
        instance,
    )
    connection.instance = instance
    connection.auth_kind = auth_kind
    connection.set_tokens(
        access_token=tokens.access_token, refresh_token=tokens.refresh_token or ""
    )
    connection.expires_at = (
        datetime.fromtimestamp(tokens.expires_at, tz=UTC) if tokens.expires_at else None
    )
    connection.scopes = access.grants or sorted(tokens.scope or [])
    connection.service_token = access.service_token
    connection.account_id = identity.get("accountId", "")
    connection.member_id = identity.get("memberId", "")
    connection.member_email = str(member.get("email") or "")[:254]
    connection.member_name = " ".join(
        str(member.get(part) or "") for part in ("firstName", "lastName")
    ).strip()[:200]
    connection.token_name = identity.get("tokenName", "") or ""
    connection.status = Status.ACTIVE
    connection.status_reason = ""
    connection.connected_by = actor
    connection.connected_at = timezone.now()
    if moved:
        # Projects are per account: the old choice means nothing in the new one.
        connection.project_key = connection.project_name = ""
    connection.save()
    audit_record(
        actor=actor,
        action=AuditAction.LAUNCHDARKLY_RECONNECTED
        if existing
        else AuditAction.LAUNCHDARKLY_CONNECTED,
        target=connection.account_id,
        details={"instance": instance, "account_changed": moved, **audit_details},
    )
    if moved:
        news = signals.target_changed.send(
            sender=LaunchDarklyConnection, connection=connection, reason=ACCOUNT_CHANGED_REASON
        )
    else:
        news = signals.reconnected.send(sender=LaunchDarklyConnection, connection=connection)
    cancelled = signals.cancelled_by(news)
    if replaced_grant and replaced_grant != tokens.refresh_token:
        transaction.on_commit(lambda: _revoke_quietly(old_instance, replaced_grant))
    return ConnectionChange(connection=connection, target_changed=moved, cancelled=cancelled)


@sensitive_variables("token")
def _revoke_quietly(instance: str, token: str) -> None:
    """Revoke a grant we no longer use. A failure is logged, never raised: the caller's
    own work is done, and LaunchDarkly expires unused grants in any case."""
    try:
        # Revoking a refresh token ends its whole grant (RFC 7009 §2.1).
        oauth_client(instance).revoke(token=token)
    except errors.LaunchDarklyError:
        log.warning("revoking a replaced OAuth grant at %s failed", instance)


@sensitive_variables("tokens")
def connection_connect_oauth(*, actor: User, instance: str, tokens: TokenSet) -> ConnectionChange:
    """Connect with the tokens of a code exchange; if the connection is refused, the
    grant they belong to is revoked, so no live grant is left behind."""
    try:
        identity, access = _identify(
            instance=instance, token=tokens.access_token, auth_kind=AuthKind.OAUTH
        )
    except ConnectionRefused:
        _revoke_quietly(instance, tokens.refresh_token or tokens.access_token)
        raise
    # Outside the transaction: no network call holds database locks.
    member = _member_of(
        instance=instance, token=tokens.access_token, auth_kind=AuthKind.OAUTH, identity=identity
    )
    with transaction.atomic():
        return _save_connection(
            actor=actor,
            instance=instance,
            auth_kind=AuthKind.OAUTH,
            identity=identity,
            access=access,
            member=member,
            tokens=tokens,
            audit_details={
                "auth": "oauth",
                "scopes": sorted(identity.get("scopes") or tokens.scope),
            },
        )


@sensitive_variables("token")
def connection_connect_api_token(*, actor: User, instance: str, token: str) -> ConnectionChange:
    token = token.strip()
    if len(token) < 20 or any(ch.isspace() for ch in token):
        raise ConnectionRefused(
            "That does not look like a LaunchDarkly API access token. Copy the whole token "
            "(it starts with api-) from LaunchDarkly's Authorization page."
        )
    identity, access = _identify(instance=instance, token=token, auth_kind=AuthKind.API_TOKEN)
    member = _member_of(
        instance=instance, token=token, auth_kind=AuthKind.API_TOKEN, identity=identity
    )
    with transaction.atomic():
        return _save_connection(
            actor=actor,
            instance=instance,
            auth_kind=AuthKind.API_TOKEN,
            identity=identity,
            access=access,
            member=member,
            tokens=TokenSet(access_token=token, refresh_token="", expires_at=None, scope=[]),
            audit_details={"auth": "api_token", "token_hint": token[-4:]},
        )


def connection_register_randomization_unit(
    *, actor: User, connection: LaunchDarklyConnection, context_kind: str
) -> None:
    """Add a context kind to the project's randomization units (putExperimentationSettings
    replaces the whole list, so the registered ones are read and sent again, each with
    its default flag). Only on a person's explicit consent: it changes the project for
    every experiment, not only the connector's metrics."""
    client = client_for(connection)
    project = connection.project_key
    try:
        current = client.get_experimentation_settings(project)
        units = [
            {"randomizationUnit": unit["randomizationUnit"], "default": bool(unit.get("default"))}
            for unit in current.get("randomizationUnits") or []
            if isinstance(unit, dict) and unit.get("randomizationUnit")
        ]
        if any(unit["randomizationUnit"] == context_kind for unit in units):
            return
        client.put_experimentation_settings(
            project, [*units, {"randomizationUnit": context_kind, "default": not units}]
        )
    except errors.Forbidden as exc:
        raise ConnectionRefused(
            "LaunchDarkly refused: this connection's token may not change the project's "
            "experimentation settings. Nothing was changed."
        ) from exc
    except errors.LaunchDarklyError as exc:
        raise ConnectionRefused(
            f"LaunchDarkly did not register {context_kind}: {exc.message} Nothing was changed."
        ) from exc
    audit_record(
        actor=actor,
        action=AuditAction.LAUNCHDARKLY_UNIT_REGISTERED,
        target=f"{project}/{context_kind}",
    )


@sensitive_variables("token")
def connection_set_import_token(
    *, actor: User, connection: LaunchDarklyConnection, token: str
) -> LaunchDarklyConnection:
    """Store a dedicated token for the metric event import (LaunchDarkly recommends
    one allowing `importEventData`), after LaunchDarkly confirms it belongs to the
    connected account; its role and actions are read from the token itself. An empty
    token removes it (the connection's own token is used again)."""
    token = token.strip()
    if not token:
        connection.import_token_encrypted = connection.import_token_hint = ""
        connection.import_token_grants = []
        connection.save(update_fields=[*IMPORT_TOKEN_FIELDS, "updated_at"])
        audit_record(actor=actor, action=AuditAction.IMPORT_TOKEN_SET, target="removed")
        return connection
    if len(token) < 20 or any(ch.isspace() for ch in token):
        raise ConnectionRefused("That does not look like a LaunchDarkly API access token.")
    client = _client(instance=connection.instance, token=token, auth_kind=AuthKind.API_TOKEN)
    try:
        identity = client.get_caller_identity()
        access = _api_token_access(client, identity)
    except (errors.Unauthorized, errors.Forbidden) as exc:
        raise ConnectionRefused(
            "LaunchDarkly does not accept this token: it is unknown, revoked or expired."
        ) from exc
    except errors.LaunchDarklyError as exc:
        raise ConnectionRefused(
            "LaunchDarkly could not be asked about this token just now. Nothing was saved."
        ) from exc
    if identity.get("accountId") != connection.account_id:
        raise ConnectionRefused(
            "This token belongs to another LaunchDarkly account than the connection's."
        )
    connection.import_token_encrypted = crypto.encrypt(token)
    connection.import_token_hint = token[-4:]
    connection.import_token_grants = access.grants
    connection.save(update_fields=[*IMPORT_TOKEN_FIELDS, "updated_at"])
    audit_record(
        actor=actor,
        action=AuditAction.IMPORT_TOKEN_SET,
        target=connection.account_id,
        details={"token_hint": token[-4:], "grants": access.grants},
    )
    return connection


IMPORT_TOKEN_FIELDS = ("import_token_encrypted", "import_token_hint", "import_token_grants")


def connection_projects(*, connection: LaunchDarklyConnection) -> list[Project]:
    """Every project of the connected account (all pages), for the project picker."""
    return list(client_for(connection).list_projects())


def connection_choose_project(
    *, actor: User, connection: LaunchDarklyConnection, project_key: str
) -> ConnectionChange:
    """Send metrics to this project from now on. Asking LaunchDarkly about it happens
    outside any transaction: it may refresh the token, which must commit whatever
    happens next. Choosing another project than before cancels what was planned for
    the old one."""
    try:
        project = client_for(connection).get_project(project_key)
    except errors.NotFound as exc:
        raise ConnectionRefused(
            f"The project {project_key!r} no longer exists in LaunchDarkly. Choose another."
        ) from exc
    except errors.LaunchDarklyError as exc:
        raise ConnectionRefused(
            "LaunchDarkly could not be asked about this project just now. Try again."
        ) from exc
    with transaction.atomic():
        previous = connection.project_key
        connection.project_key = project["key"]
        connection.project_name = project.get("name", project["key"])
        connection.save(update_fields=["project_key", "project_name", "updated_at"])
        audit_record(
            actor=actor, action=AuditAction.LAUNCHDARKLY_PROJECT_CHOSEN, target=project["key"]
        )
        changed = bool(previous) and previous != connection.project_key
        cancelled = 0
        if changed:
            news = signals.target_changed.send(
                sender=LaunchDarklyConnection,
                connection=connection,
                reason=f"Cancelled: metrics now go to the project {connection.project_key}, "
                f"not {previous}; apply a plan again to create them there.",
            )
            cancelled = signals.cancelled_by(news)
    return ConnectionChange(connection=connection, target_changed=changed, cancelled=cancelled)


def connection_disconnect_would_cancel() -> int:
    """How many queued items a disconnect would cancel now (nothing changes)."""
    return signals.cancelled_by(signals.disconnect_would_cancel.send(sender=LaunchDarklyConnection))


def connection_disconnect(*, actor: User, connection: LaunchDarklyConnection) -> int:
    """Revoke what can be revoked, forget the secrets, stop queued work, audit. Returns
    how many queued items were cancelled."""
    if connection.auth_kind == AuthKind.OAUTH and connection.refresh_token_encrypted:
        # The secrets go regardless: a failed revoke must not keep them here.
        _revoke_quietly(connection.instance, connection.refresh_token())
    with transaction.atomic():
        news = signals.disconnected.send(
            sender=LaunchDarklyConnection,
            connection=connection,
            reason=f"Cancelled: LaunchDarkly was disconnected by {actor.email}.",
        )
        connection.clear_tokens()
        connection.status = Status.DISCONNECTED
        connection.status_reason = f"Disconnected by {actor.email}"
        connection.save()
        audit_record(
            actor=actor,
            action=AuditAction.LAUNCHDARKLY_DISCONNECTED,
            target=connection.account_id,
            details={"instance": connection.instance},
        )
    return signals.cancelled_by(news)


def connection_mark_needs_reauth(*, connection: LaunchDarklyConnection, reason: str) -> None:
    """Stop every worker from calling with this connection until a person reconnects."""
    updated = LaunchDarklyConnection.objects.filter(pk=connection.pk, status=Status.ACTIVE).update(
        status=Status.NEEDS_REAUTH, status_reason=reason[:300], updated_at=timezone.now()
    )
    connection.status, connection.status_reason = Status.NEEDS_REAUTH, reason[:300]
    if updated:  # the transition: once per incident, however many calls fail after it
        audit_record(
            actor=None,
            action=AuditAction.LAUNCHDARKLY_NEEDS_REAUTH,
            target=connection.account_id,
            details={"reason": reason[:300]},
        )
        signals.needs_reauth.send(
            sender=LaunchDarklyConnection, connection=connection, reason=reason
        )


def _expiring(connection: LaunchDarklyConnection) -> bool:
    return bool(
        connection.auth_kind == AuthKind.OAUTH
        and connection.expires_at
        and connection.expires_at - REFRESH_MARGIN <= timezone.now()
    )


def connection_fresh_access_token(*, connection: LaunchDarklyConnection) -> str:
    """The access token to call with, refreshed first if it is about to expire.

    The refresh runs under a lock shared by every worker, and re-reads the row inside
    it: LaunchDarkly rotates refresh tokens, so two workers spending the same one would
    leave one of them holding a dead token (and the connection needing reauth)."""
    if not connection.is_usable:
        raise ReauthorizationRequired(connection.status_reason or "Not connected.")
    if not _expiring(connection):
        return connection.access_token()
    with shared_lock(f"launchdarkly-refresh:{connection.pk}", timeout=60, wait=60):
        connection.refresh_from_db()
        if not connection.is_usable:
            raise ReauthorizationRequired(connection.status_reason or "Not connected.")
        if not _expiring(connection):
            return connection.access_token()  # another worker refreshed it meanwhile
        return _refresh(connection)


@sensitive_variables("rejected_token")
def connection_refresh_after_unauthorized(
    *, connection: LaunchDarklyConnection, rejected_token: str
) -> str:
    """LaunchDarkly answered 401 to `rejected_token`: refresh once, under the shared
    lock. If another worker already replaced the token, use theirs instead of
    spending the refresh token again."""
    with shared_lock(f"launchdarkly-refresh:{connection.pk}", timeout=60, wait=60):
        connection.refresh_from_db()
        if not connection.is_usable:
            raise ReauthorizationRequired(connection.status_reason or "Not connected.")
        if connection.access_token() != rejected_token:
            return connection.access_token()
        if connection.auth_kind != AuthKind.OAUTH or not connection.refresh_token_encrypted:
            raise ReauthorizationRequired("LaunchDarkly rejected the API access token.")
        return _refresh(connection)


@sensitive_variables("tokens", "refresh_token")
def _refresh(connection: LaunchDarklyConnection) -> str:
    """Spend the refresh token (caller holds the connection's refresh lock). The new
    tokens commit in a transaction of their own before the lock is released, so no
    rollback elsewhere can bring back a spent refresh token."""
    try:
        tokens = oauth_client(connection.instance).refresh(refresh_token=connection.refresh_token())
    except errors.InvalidGrant as exc:
        connection_mark_needs_reauth(
            connection=connection,
            reason="LaunchDarkly no longer accepts this connection's authorisation.",
        )
        raise ReauthorizationRequired(connection.status_reason) from exc
    # RFC 6749 §6: an answer without a refresh token means the old one stays valid.
    refresh_token = tokens.refresh_token or connection.refresh_token()
    connection.set_tokens(access_token=tokens.access_token, refresh_token=refresh_token)
    connection.expires_at = (
        datetime.fromtimestamp(tokens.expires_at, tz=UTC) if tokens.expires_at else None
    )
    with transaction.atomic():
        connection.save(
            update_fields=[
                "access_token_encrypted",
                "refresh_token_encrypted",
                "token_hint",
                "expires_at",
                "updated_at",
            ]
        )
    return tokens.access_token


def budget_for(connection: LaunchDarklyConnection) -> RateBudget:
    """LaunchDarkly limits per account: every connection to one account shares this."""
    return RateBudget(connection.account_id or f"connection-{connection.pk}")


@sensitive_variables("token")
def client_for(
    connection: LaunchDarklyConnection,
    *,
    token: str | None = None,
    on_rate_limit: RateLimitCallback | None = None,
    timeout: tuple[float, float] | None = None,
) -> LaunchDarklyClient:
    """The one LaunchDarkly client for a connection, with a fresh token (or `token`,
    one the caller just got fresh).

    Without `on_rate_limit` (a page asking for projects or context kinds) every answer's
    headers feed the account's shared budget, as workers' answers do, and the call is
    refused without asking while the account is paused after a 429. Background work
    passes its Gate's observer: the gate reserves each call and reports it itself."""
    assert connection.tenant_id == current_tenant().pk
    options: dict[str, Any] = {}
    if on_rate_limit is None:
        budget = budget_for(connection)
        paused_until = budget.paused_until()
        if paused_until is not None:
            raise errors.RateLimited(
                "LaunchDarkly is rate limiting this account.",
                retry_after_s=paused_until - time.time(),
                reset_at=paused_until,
            )
        on_rate_limit = budget.observe
    options["on_rate_limit"] = on_rate_limit
    if timeout is not None:
        options["timeout"] = timeout
    return _client(
        instance=connection.instance,
        token=token or connection_fresh_access_token(connection=connection),
        auth_kind=connection.auth_kind,
        **options,
    )

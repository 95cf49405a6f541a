"""Connecting a workspace to LaunchDarkly, keeping its token fresh, and letting go.

Every action runs in the workspace in scope, writes an audit row, stores tokens only
encrypted, and leaves nothing half-stored when LaunchDarkly says no.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from connector.connections.models import AuthKind, LaunchDarklyConnection, Status
from connector.launchdarkly import errors, instances
from connector.launchdarkly.client import LaunchDarklyClient
from connector.launchdarkly.oauth import OAuthClient, TokenSet
from connector.shared_state import shared_lock
from tenants.models import User
from tenants.scope import current_tenant
from tenants.services import audit_record

log = logging.getLogger(__name__)

# Refresh this long before expiry, so a token never dies in the middle of a sync.
REFRESH_MARGIN = timedelta(minutes=5)
# Roles (API tokens) or scopes (OAuth) that may create metrics.
WRITE_SCOPES = frozenset({"writer", "admin", "owner"})


class ConnectionRefused(Exception):
    """LaunchDarkly did not accept the credentials; the message says why, for the user."""


class ReauthorizationRequired(Exception):
    """The connection's credentials are dead: a person must reconnect."""


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


def _client(*, instance: str, token: str, auth_kind: str) -> LaunchDarklyClient:
    return LaunchDarklyClient(
        base_url=instances.api_base_url(instance), token=token, auth_kind=auth_kind
    )


def _identify(*, instance: str, token: str, auth_kind: str) -> dict:
    """Who the token is, and proof that it may write metrics; or ConnectionRefused."""
    try:
        identity = _client(
            instance=instance, token=token, auth_kind=auth_kind
        ).get_caller_identity()
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
    scopes = set(identity.get("scopes") or [])
    if scopes and not scopes & WRITE_SCOPES:
        raise ConnectionRefused(
            f"This token has the role {', '.join(sorted(scopes))}, which cannot create metrics. "
            "Use a token with the Writer role (or a custom role that allows creating metrics)."
        )
    return identity


def _save_connection(
    *,
    user: User,
    instance: str,
    auth_kind: str,
    identity: dict,
    tokens: TokenSet,
    audit_details: dict,
) -> LaunchDarklyConnection:
    """Store the (re)connection, audit it, and put paused work back in line."""
    existing = LaunchDarklyConnection.objects.first()
    connection = existing or LaunchDarklyConnection()
    switching_account = connection.account_id and connection.account_id != identity.get("accountId")
    connection.instance = instance
    connection.auth_kind = auth_kind
    connection.set_tokens(access_token=tokens.access_token, refresh_token=tokens.refresh_token)
    connection.expires_at = (
        datetime.fromtimestamp(tokens.expires_at, tz=UTC) if tokens.expires_at else None
    )
    connection.scopes = sorted(identity.get("scopes") or tokens.scope or [])
    connection.account_id = identity.get("accountId", "")
    connection.member_id = identity.get("memberId", "")
    connection.token_name = identity.get("tokenName", "") or ""
    connection.status = Status.ACTIVE
    connection.status_reason = ""
    connection.connected_by = user
    connection.connected_at = timezone.now()
    if switching_account:
        # Projects are per account: the old choice means nothing in the new one.
        connection.project_key = connection.project_name = ""
    connection.save()
    audit_record(
        actor=user,
        action="launchdarkly.reconnected" if existing else "launchdarkly.connected",
        target=connection.account_id,
        details={"instance": instance, **audit_details},
    )
    from connector.sync.services import sync_resume

    sync_resume()  # work paused by a dead token goes back in line (after commit)
    return connection


@transaction.atomic
def connection_connect_oauth(
    *, user: User, instance: str, tokens: TokenSet
) -> LaunchDarklyConnection:
    identity = _identify(instance=instance, token=tokens.access_token, auth_kind=AuthKind.OAUTH)
    return _save_connection(
        user=user,
        instance=instance,
        auth_kind=AuthKind.OAUTH,
        identity=identity,
        tokens=tokens,
        audit_details={"auth": "oauth", "scopes": sorted(identity.get("scopes") or tokens.scope)},
    )


@transaction.atomic
def connection_connect_api_token(
    *, user: User, instance: str, token: str
) -> LaunchDarklyConnection:
    token = token.strip()
    if len(token) < 20 or any(ch.isspace() for ch in token):
        raise ConnectionRefused(
            "That does not look like a LaunchDarkly API access token. Copy the whole token "
            "(it starts with api-) from LaunchDarkly's Authorization page."
        )
    identity = _identify(instance=instance, token=token, auth_kind=AuthKind.API_TOKEN)
    return _save_connection(
        user=user,
        instance=instance,
        auth_kind=AuthKind.API_TOKEN,
        identity=identity,
        tokens=TokenSet(access_token=token, refresh_token="", expires_at=None, scope=[]),
        audit_details={"auth": "api_token", "token_hint": token[-4:]},
    )


def connection_projects(*, connection: LaunchDarklyConnection) -> list[dict]:
    """Every project of the connected account (all pages), for the project picker."""
    return list(client_for(connection).list_projects())


@transaction.atomic
def connection_choose_project(
    *, user: User, connection: LaunchDarklyConnection, project_key: str
) -> LaunchDarklyConnection:
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
    connection.project_key = project["key"]
    connection.project_name = project.get("name", project["key"])
    connection.save(update_fields=["project_key", "project_name", "updated_at"])
    audit_record(actor=user, action="launchdarkly.project_chosen", target=project["key"])
    return connection


def connection_disconnect(*, user: User, connection: LaunchDarklyConnection) -> None:
    """Revoke what can be revoked, forget the secrets, stop queued work, audit."""
    if connection.auth_kind == AuthKind.OAUTH and connection.refresh_token_encrypted:
        try:
            # Revoking the refresh token ends the whole grant (RFC 7009 §2.1).
            oauth_client(connection.instance).revoke(token=connection.refresh_token())
        except errors.LaunchDarklyError:
            # The secrets go regardless: a failed revoke must not keep them here.
            log.warning("revoking the OAuth grant of connection %s failed", connection.pk)
    with transaction.atomic():
        from connector.sync.services import sync_cancel_unfinished

        sync_cancel_unfinished(reason=f"Cancelled: LaunchDarkly was disconnected by {user.email}.")
        connection.clear_tokens()
        connection.status = Status.DISCONNECTED
        connection.status_reason = f"Disconnected by {user.email}"
        connection.save()
        audit_record(
            actor=user,
            action="launchdarkly.disconnected",
            target=connection.account_id,
            details={"instance": connection.instance},
        )


def connection_mark_needs_reauth(*, connection: LaunchDarklyConnection, reason: str) -> None:
    """Stop every worker from calling with this connection until a person reconnects."""
    updated = LaunchDarklyConnection.objects.filter(pk=connection.pk, status=Status.ACTIVE).update(
        status=Status.NEEDS_REAUTH, status_reason=reason[:300], updated_at=timezone.now()
    )
    connection.status, connection.status_reason = Status.NEEDS_REAUTH, reason[:300]
    if updated:  # the transition: once per incident, however many calls fail after it
        from connector.sync.notify import notify_needs_reauth

        audit_record(
            actor=None,
            action="launchdarkly.needs_reauth",
            target=connection.account_id,
            details={"reason": reason[:300]},
        )
        notify_needs_reauth(reason=reason)


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


def _refresh(connection: LaunchDarklyConnection) -> str:
    """Spend the refresh token (caller holds the connection's refresh lock)."""
    try:
        tokens = oauth_client(connection.instance).refresh(refresh_token=connection.refresh_token())
    except errors.InvalidGrant as exc:
        connection_mark_needs_reauth(
            connection=connection,
            reason="LaunchDarkly no longer accepts this connection's authorisation.",
        )
        raise ReauthorizationRequired(connection.status_reason) from exc
    connection.set_tokens(access_token=tokens.access_token, refresh_token=tokens.refresh_token)
    connection.expires_at = (
        datetime.fromtimestamp(tokens.expires_at, tz=UTC) if tokens.expires_at else None
    )
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


def client_for(connection: LaunchDarklyConnection) -> LaunchDarklyClient:
    """The LaunchDarkly client for this connection, with a fresh token."""
    assert connection.tenant_id == current_tenant().pk
    return _client(
        instance=connection.instance,
        token=connection_fresh_access_token(connection=connection),
        auth_kind=connection.auth_kind,
    )

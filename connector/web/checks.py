"""System checks: production refuses the defaults that only serve `make run`.

Each default below makes the development setup work with nothing configured; in
production each is a hole (the sandbox's OAuth secret is public, the development
encryption key is in the repository, a loopback PUBLIC_URL puts the wrong address in
emails and OAuth redirects). So with DJANGO_ENV=production each is an error that
`manage.py check` (and `migrate`, which the release phase runs) reports by name.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, register

# The development values of connector/settings.py, refused in production.
DEVELOPMENT_OAUTH_CLIENT_ID = "connector-dev"
DEVELOPMENT_OAUTH_CLIENT_SECRET = "connector-dev-secret"
DEVELOPMENT_TOKEN_KEY = "ZGV2LW9ubHktZmVybmV0LWtleS1ub3QtZm9yLXByb2Q="
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}  # noqa: S104 (refused, not bound)


@register(Tags.security)
def production_refuses_development_defaults(app_configs, **kwargs) -> list[Error]:
    if not settings.PRODUCTION:
        return []
    errors = []
    keys = list(settings.TOKEN_ENCRYPTION_KEYS)
    if not keys:
        errors.append(
            Error(
                "TOKEN_ENCRYPTION_KEYS is not set.",
                hint="Set it to one or more Fernet keys, newest first: "
                'python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"',
                id="connector.E001",
            )
        )
    if DEVELOPMENT_TOKEN_KEY in keys:
        errors.append(
            Error(
                "TOKEN_ENCRYPTION_KEYS holds the public development key.",
                hint="Generate a key of your own; re-encrypt stored tokens with "
                "`manage.py rotate_token_keys` before dropping the development key.",
                id="connector.E002",
            )
        )
    client_id = settings.LAUNCHDARKLY_OAUTH_CLIENT_ID
    if not client_id or client_id == DEVELOPMENT_OAUTH_CLIENT_ID:
        errors.append(
            Error(
                "LAUNCHDARKLY_OAUTH_CLIENT_ID is not set (or is the sandbox's client).",
                hint="Set it to the client id LaunchDarkly gave when you registered the "
                "OAuth client; the settings page shows the redirect URI to register.",
                id="connector.E003",
            )
        )
    secret = settings.LAUNCHDARKLY_OAUTH_CLIENT_SECRET
    if not secret or secret == DEVELOPMENT_OAUTH_CLIENT_SECRET:
        errors.append(
            Error(
                "LAUNCHDARKLY_OAUTH_CLIENT_SECRET is not set (or is the sandbox's public secret).",
                hint="Set it to the client secret LaunchDarkly gave for the OAuth client.",
                id="connector.E004",
            )
        )
    public = urlsplit(settings.PUBLIC_URL)
    if public.scheme != "https" or not public.hostname or public.hostname in LOOPBACK_HOSTS:
        errors.append(
            Error(
                f"PUBLIC_URL must be the connector's external https address, not "
                f"{settings.PUBLIC_URL or 'empty'}.",
                hint="For example PUBLIC_URL=https://connector.example.com: emails, "
                "password resets and the OAuth redirect URI are built from it.",
                id="connector.E005",
            )
        )
    return errors


@register()
def item_limit_fits_the_stale_claim_limit(app_configs, **kwargs) -> list[Error]:
    """An item's time limit plus one call must end before its claim looks abandoned."""
    from connector.launchdarkly.transport import DEFAULT_TIMEOUT

    one_call = DEFAULT_TIMEOUT[0] + settings.SYNC_READ_TIMEOUT_S
    if settings.SYNC_ITEM_TIME_LIMIT_S + one_call < settings.SYNC_STALE_CLAIM_S:
        return []
    return [
        Error(
            f"SYNC_ITEM_TIME_LIMIT_S ({settings.SYNC_ITEM_TIME_LIMIT_S:g} s) plus one call "
            f"({one_call:g} s) must be less than SYNC_STALE_CLAIM_S "
            f"({settings.SYNC_STALE_CLAIM_S} s).",
            hint="Otherwise a live worker's item can be taken over while it still works.",
            id="connector.E006",
        )
    ]

"""Authentication of the HTTP API by per-workspace API keys.

`Authorization: Bearer <key>`: the key alone determines the workspace, so a request
can only ever read or write the catalog of the key's own workspace. No session and
no cookie is involved, which is why the API needs no CSRF token (django-ninja
exempts its views; only its cookie-based auth classes check CSRF).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja.security import HttpBearer

from connector.sources.models import ApiKey
from connector.sources.services import api_key_hash
from tenants.scope import tenant_scope

# `last_used_at` is for people deciding which keys to revoke; minute precision is
# plenty, and it spares a write on every request of a busy client.
LAST_USED_PRECISION = timedelta(minutes=1)


def unauthorized() -> JsonResponse:
    reason = "Send a valid, unrevoked workspace API key as 'Authorization: Bearer <key>'."
    response = JsonResponse({"errors": [{"field": "Authorization", "reason": reason}]}, status=401)
    # RFC 6750 section 3: a 401 names the scheme the client must use.
    response["WWW-Authenticate"] = 'Bearer realm="api", error="invalid_token"'
    return response


def api_key_from_token(raw_key: str) -> ApiKey | None:
    if not raw_key.strip():
        return None
    # Keys are looked up across workspaces on purpose: the key is what picks one.
    api_key = (
        ApiKey.objects.unscoped()
        .select_related("tenant")
        .filter(key_hash=api_key_hash(raw_key.strip()), revoked_at__isnull=True)
        .first()
    )
    if api_key is None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_PRECISION:
        ApiKey.objects.unscoped().filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


class ApiKeyAuth(HttpBearer):
    """`request.auth` becomes the workspace's `ApiKey`; no key, or an unknown or
    revoked one, raises ninja's AuthenticationError (answered by `unauthorized`)."""

    openapi_description = "A workspace API key, shown once when it is created."

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return api_key_from_token(token)


def in_api_key_scope(view: Callable[..., object]) -> Callable[..., object]:
    """Run an operation in the scope of its API key's workspace. An operation without
    a key (the public OpenAPI document) runs with no workspace, so a catalog query
    there raises instead of reading some workspace's rows."""

    @wraps(view)
    def scoped(request: HttpRequest, *args, **kwargs) -> HttpResponse | object:
        api_key = getattr(request, "auth", None)
        if api_key is None:
            return view(request, *args, **kwargs)
        with tenant_scope(api_key.tenant):
            return view(request, *args, **kwargs)

    return scoped

"""Authentication of the HTTP API by per-workspace API keys.

`Authorization: Bearer <key>`: the key alone determines the workspace, so a request
can only ever read or write the catalog of the key's own workspace. No session and
no cookie is involved, which is why the API views are CSRF-exempt.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from connector.sources.models import ApiKey
from connector.sources.services import api_key_hash
from tenants.scope import tenant_scope

# `last_used_at` is for people deciding which keys to revoke; minute precision is
# plenty, and it spares a write on every request of a busy client.
LAST_USED_PRECISION = timedelta(minutes=1)


def unauthorized(reason: str) -> JsonResponse:
    response = JsonResponse({"errors": [{"field": "Authorization", "reason": reason}]}, status=401)
    # RFC 6750 section 3: a 401 names the scheme the client must use.
    response["WWW-Authenticate"] = 'Bearer realm="api", error="invalid_token"'
    return response


def api_key_from_request(request: HttpRequest) -> ApiKey | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, raw_key = header.partition(" ")
    if scheme.lower() != "bearer" or not raw_key.strip():
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


def api_key_required(view: Callable) -> Callable:
    """Run the view in the scope of the API key's workspace, or answer 401."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        api_key = api_key_from_request(request)
        if api_key is None:
            return unauthorized(
                "Send a valid, unrevoked workspace API key as 'Authorization: Bearer <key>'."
            )
        request.api_key = api_key  # type: ignore[attr-defined]
        with tenant_scope(api_key.tenant):
            return view(request, *args, **kwargs)

    return wrapped

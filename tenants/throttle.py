"""Sign-in throttle, inside authentication itself.

Every door that signs people in (the sign-in page, `/admin/login/`, any later one)
calls `django.contrib.auth.authenticate()`, so the throttle is the authentication
backend: no door can forget it.

Failures are counted in two scopes:

- an account *from one address*: after SIGNIN_THROTTLE_SOFT failures each attempt
  waits twice as long as the one before, after SIGNIN_THROTTLE_HARD that address is
  locked out of that account for SIGNIN_THROTTLE_LOCKOUT_S. A stranger who knows an
  email locks only their own address out of it; the owner, elsewhere, signs in.
- one address, whatever the account (guessing across accounts), ADDRESS_LENIENCY
  times as lenient because many people can share one address (an office, a NAT).

A count expires: its window opens at the first failure and closes LOCKOUT_S later,
so a slow trickle of failures never adds up to a lock.

An attempt is reserved (counted) by one conditional UPDATE *before* the password is
hashed, so concurrent guesses cannot all pass a check that none of them has updated
yet; a success gives its reservation back. Counts live in the database, which every
process shares in both configurations and where one UPDATE is atomic.

When an address gets locked out of an account, the account's owner is emailed (at
most once per lockout period) a link to choose a new password; completing a reset
clears every count of that account, so its owner is never kept out for long.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from connector.mail import send_safe_mail
from tenants.models import SignInCounter

logger = logging.getLogger(__name__)

ADDRESS_LENIENCY = 3
MAX_STEP_WAIT_S = 5 * 60
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Refusal:
    wait_s: int

    @property
    def message(self) -> str:
        minutes, seconds = divmod(self.wait_s, 60)
        when = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        return f"Too many failed sign-in attempts. Try again in {when}."


@dataclass(frozen=True)
class _Scope:
    key: str
    account: str  # the account's hash for an account scope, "" for an address scope
    soft: int
    hard: int


def _hash(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _account(email: str) -> str:
    return _hash("account", email.strip().lower())


def _scopes(email: str, address: str) -> list[_Scope]:
    soft, hard = settings.SIGNIN_THROTTLE_SOFT, settings.SIGNIN_THROTTLE_HARD
    account = _account(email)
    return [
        _Scope(_hash("account-from", account, address), account, soft, hard),
        _Scope(_hash("address", address), "", soft * ADDRESS_LENIENCY, hard * ADDRESS_LENIENCY),
    ]


def _now() -> datetime:
    # time.time(), not timezone.now(): tests move this one clock instead of sleeping.
    return datetime.fromtimestamp(time.time(), tz=UTC)


def _window() -> timedelta:
    return timedelta(seconds=settings.SIGNIN_THROTTLE_LOCKOUT_S)


def client_address(request: HttpRequest) -> str:
    """The address a request came from. Behind TRUSTED_PROXY_HOPS proxies of our own,
    each appending the address it saw to X-Forwarded-For, that is the entry the
    outermost of them added; entries further left are whatever the client sent and
    prove nothing. Without trusted proxies the header is ignored (anyone can send it)."""
    hops = settings.TRUSTED_PROXY_HOPS
    if hops:
        header = request.META.get("HTTP_X_FORWARDED_FOR", "")
        forwarded = [entry.strip() for entry in header.split(",") if entry.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


def _reserve_one(scope: _Scope, now: datetime) -> bool:
    SignInCounter.objects.get_or_create(
        key=scope.key,
        # Not `now` for the next attempt: a concurrent attempt whose clock read a
        # microsecond earlier must not find itself refused by a row made just now.
        defaults={"account": scope.account, "window_started_at": now, "next_attempt_at": _EPOCH},
    )
    expired = Q(window_started_at__lte=now - _window(), next_attempt_at__lte=now)
    open_ = Q(failures__lt=scope.hard, next_attempt_at__lte=now)
    reserved = SignInCounter.objects.filter(Q(key=scope.key) & (expired | open_)).update(
        failures=Case(When(expired, then=Value(1)), default=F("failures") + 1),
        window_started_at=Case(When(expired, then=Value(now)), default=F("window_started_at")),
    )
    return reserved == 1


def _give_back(scope: _Scope) -> None:
    SignInCounter.objects.filter(key=scope.key, failures__gt=0).update(failures=F("failures") - 1)


def _refusal(scope: _Scope, now: datetime) -> Refusal:
    counter = SignInCounter.objects.get(key=scope.key)
    until = counter.next_attempt_at
    if counter.failures >= scope.hard:  # attempts still in flight fill the window
        until = max(until, counter.window_started_at + _window())
    return Refusal(wait_s=max(1, math.ceil((until - now).total_seconds())))


def reserve(*, email: str, address: str) -> Refusal | None:
    """Count this attempt in every scope before its password is checked, or say how
    long to wait. An attempt refused in one scope is given back to the others."""
    now = _now()
    reserved: list[_Scope] = []
    for scope in _scopes(email, address):
        if not _reserve_one(scope, now):
            for earlier in reserved:
                _give_back(earlier)
            return _refusal(scope, now)
        reserved.append(scope)
    return None


def _step_s(failures: int, scope: _Scope) -> int:
    if failures >= scope.hard:
        return settings.SIGNIN_THROTTLE_LOCKOUT_S
    if failures >= scope.soft:
        return min(2 ** (failures - scope.soft), MAX_STEP_WAIT_S)
    return 0


def record_failure(*, email: str, address: str) -> None:
    """The reserved attempt failed: it stays counted, and the next one must wait."""
    now = _now()
    for scope in _scopes(email, address):
        failures = (
            SignInCounter.objects.filter(key=scope.key).values_list("failures", flat=True).first()
        )
        step = _step_s(failures or 0, scope)
        if not step:
            continue
        until = now + timedelta(seconds=step)
        # Only ever later: a slower concurrent failure must not shorten a lockout.
        SignInCounter.objects.filter(key=scope.key, next_attempt_at__lt=until).update(
            next_attempt_at=until
        )
        if scope.account and (failures or 0) >= scope.hard:
            _offer_unlock(email=email, address=address)


def record_success(*, email: str, address: str) -> None:
    """The owner proved it from this address: that count starts over. The address's
    own count only gets this attempt back: a success must not launder its failures."""
    account_from, address_scope = _scopes(email, address)
    SignInCounter.objects.filter(key=account_from.key).delete()
    _give_back(address_scope)


def forget_account(*, email: str) -> None:
    """Clear every count of an account, from every address (its owner has just chosen
    a new password through the emailed link)."""
    SignInCounter.objects.filter(account=_account(email)).delete()


def forget_closed_windows() -> int:
    """Delete the counts whose window has closed and that lock nothing out any more;
    returns how many."""
    now = _now()
    deleted, _ = SignInCounter.objects.filter(
        window_started_at__lte=now - _window(), next_attempt_at__lte=now
    ).delete()
    return deleted


def _offer_unlock(*, email: str, address: str) -> None:
    user = get_user_model().objects.filter(email__iexact=email.strip(), is_active=True).first()
    if user is None:
        return
    # Once per lockout period, however many addresses get locked out of the account.
    if not cache.add(
        f"signin-unlock-mail:{user.pk}", 1, timeout=settings.SIGNIN_THROTTLE_LOCKOUT_S
    ):
        return
    link = settings.PUBLIC_URL + reverse(
        "tenants:password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    body = render_to_string(
        "tenants/email/signin_paused.txt",
        {
            "email": user.email,
            "address": address or "an unknown address",
            "minutes": settings.SIGNIN_THROTTLE_LOCKOUT_S // 60,
            "link": link,
        },
    )

    def send() -> None:
        try:
            send_safe_mail(subject="Sign-in to your account is paused", body=body, to=[user.email])
        except OSError:  # a warning that cannot be sent must not fail the sign-in page
            logger.warning("could not send the sign-in pause email to user %s", user.pk)

    transaction.on_commit(send)


class ThrottledModelBackend(ModelBackend):
    """Django's ModelBackend behind the throttle. A refused attempt raises
    PermissionDenied, which makes `authenticate()` stop without asking any other
    backend, and leaves the refusal on the request for the form's message."""

    @classmethod
    def path(cls) -> str:
        return f"{cls.__module__}.{cls.__qualname__}"

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        address = client_address(request) if request is not None else ""
        refusal = reserve(email=username, address=address)
        if refusal is not None:
            if request is not None:
                request.signin_refusal = refusal
            raise PermissionDenied(refusal.message)
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            record_failure(email=username, address=address)
        else:
            record_success(email=username, address=address)
        return user

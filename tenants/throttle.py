"""Sign-in throttle: slows down, then refuses, repeated failures for one account or
from one address.

After SIGNIN_THROTTLE_SOFT failures each further attempt must wait twice as long as
the previous one (so guessing slows to a crawl without holding a server thread);
after SIGNIN_THROTTLE_HARD failures the account or address is refused for
SIGNIN_THROTTLE_LOCKOUT_S. State lives in the cache, which every web process shares
(Redis, or the file cache of the embedded default).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

# Many people can share one address (an office, a carrier NAT): be more lenient there.
ADDRESS_LENIENCY = 3
MAX_STEP_WAIT_S = 5 * 60


@dataclass(frozen=True)
class Refusal:
    wait_s: int

    @property
    def message(self) -> str:
        minutes, seconds = divmod(self.wait_s, 60)
        when = f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
        return f"Too many failed sign-in attempts. Try again in {when}."


def _keys(email: str, address: str) -> list[tuple[str, int]]:
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return [(f"signin-fail:acct:{account}", 1), (f"signin-fail:addr:{address}", ADDRESS_LENIENCY)]


def _wait_for(record: dict, leniency: int, now: float) -> float:
    failures, last = record["n"], record["at"]
    soft, hard = settings.SIGNIN_THROTTLE_SOFT * leniency, settings.SIGNIN_THROTTLE_HARD * leniency
    if failures >= hard:
        return last + settings.SIGNIN_THROTTLE_LOCKOUT_S - now
    if failures >= soft:
        return last + min(2 ** (failures - soft), MAX_STEP_WAIT_S) - now
    return 0


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


def check(*, email: str, address: str) -> Refusal | None:
    """A refusal if this attempt comes too soon, else None."""
    now = time.time()
    waits = [
        _wait_for(record, leniency, now)
        for key, leniency in _keys(email, address)
        if (record := cache.get(key))
    ]
    longest = max(waits, default=0)
    return Refusal(wait_s=math.ceil(longest)) if longest > 0 else None


def record_failure(*, email: str, address: str) -> None:
    now = time.time()
    for key, _ in _keys(email, address):
        record = cache.get(key) or {"n": 0, "at": now}
        cache.set(
            key,
            {"n": record["n"] + 1, "at": now},
            timeout=settings.SIGNIN_THROTTLE_LOCKOUT_S * 2,
        )


def record_success(*, email: str, address: str) -> None:
    # Only the account's count resets: a success must not launder an address's failures.
    cache.delete(_keys(email, address)[0][0])

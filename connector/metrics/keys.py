"""Deterministic LaunchDarkly metric keys.

A metric key is derived from the event's exact key, the metric kind and its variant
(a metric set's "p90", a filter's digest) only, so
renaming an event's display name never changes it, and the same event and kind give
the same key on every run and every worker (which makes creates idempotent: a retry
meets a 409 for its own key).

LaunchDarkly: keys may contain letters, digits, '.', '_' and '-'. We also lowercase.
When slugging loses information (case, other characters, truncation), two event keys
could meet on one slug ("Sign Up" and "sign-up"); the key then carries a short hash
of the exact event key, which keeps them apart whatever order they arrive in.
"""

from __future__ import annotations

import hashlib
import re

MAX_KEY_LENGTH = 100
_INVALID = re.compile(r"[^a-z0-9._-]+")
_EDGES = "._-"


def group_key_for(name: str) -> str:
    """A metric group's key from its name: the same name gives the same key on every
    run, so a create that was answered but not recorded meets its own 409."""
    slug = re.sub(r"-{2,}", "-", _INVALID.sub("-", name.lower())).strip(_EDGES) or "group"
    return slug[:MAX_KEY_LENGTH].rstrip(_EDGES)


def _digest(event_key: str, length: int) -> str:
    return hashlib.sha256(event_key.encode()).hexdigest()[:length]


def metric_key_for(event_key: str, kind: str, *, variant: str = "", digest_length: int = 0) -> str:
    """The metric key for this event, kind and variant ("" for the plain metric, whose
    key is what it always was). `digest_length` forces a hash suffix of that length
    (the clash rule asks for a longer one when a shorter one collides)."""
    slug = _INVALID.sub("-", event_key.lower()).strip(_EDGES)
    slug = re.sub(r"-{2,}", "-", slug) or "event"
    suffix = f"-{variant}-{kind}" if variant else f"-{kind}"
    lossless = slug == event_key and len(slug) + len(suffix) <= MAX_KEY_LENGTH
    if lossless and not digest_length:
        return slug + suffix
    digest = "-" + _digest(event_key, digest_length or 8)
    room = MAX_KEY_LENGTH - len(suffix) - len(digest)
    return slug[:room].rstrip(_EDGES) + digest + suffix

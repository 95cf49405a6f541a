"""Error tracking with Sentry, initialised by settings only when SENTRY_DSN is set
(otherwise sentry_sdk is never imported)."""

from __future__ import annotations


def sentry_init(*, dsn: str, environment: str, release: str) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.scrubber import EventScrubber

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        # No user, cookies or client addresses.
        send_default_pii=False,
        # Tokens must never leave: frames' local variables hold them (a client's
        # headers, a form's token field), and so can request bodies (the API token
        # form). The scrubber also looks inside nested dicts.
        include_local_variables=False,
        max_request_body_size="never",
        event_scrubber=EventScrubber(recursive=True),
        # Errors only (no traces_sample_rate: tracing is off), and no sentry-trace or
        # baggage headers added to our calls to LaunchDarkly.
        trace_propagation_targets=[],
    )

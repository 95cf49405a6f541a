"""`python manage.py ldsandbox`: run the local LaunchDarkly stand-in in the foreground.

The Django settings only supply defaults (the connector's OAuth client and redirect
URI); the sandbox itself runs outside Django with its own in-memory state.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from sandbox.server import SandboxServer
from sandbox.state import DEMO_EMAIL, DEMO_PASSWORD, OAuthClientSeed, SandboxOptions


class Command(BaseCommand):
    help = "Run the local LaunchDarkly sandbox (OAuth, REST API, event import, /_sandbox/)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument(
            "--token-ttl", type=float, default=3600, help="OAuth access token lifetime, seconds"
        )
        parser.add_argument(
            "--code-ttl", type=float, default=600, help="authorization code lifetime, seconds"
        )
        parser.add_argument(
            "--rate-window",
            type=float,
            default=10.0,
            help="rate-limit window, seconds (LaunchDarkly's is 10)",
        )
        parser.add_argument(
            "--no-refresh-rotation",
            action="store_true",
            help="answer refreshes without a new refresh token (RFC 6749 §6 allows it)",
        )
        parser.add_argument(
            "--quiet", action="store_true", help="no start-up line (make run prints a welcome)"
        )
        parser.add_argument("--oauth-client-id", default=settings.LAUNCHDARKLY_OAUTH_CLIENT_ID)
        parser.add_argument(
            "--oauth-client-secret", default=settings.LAUNCHDARKLY_OAUTH_CLIENT_SECRET
        )
        parser.add_argument(
            "--oauth-redirect-uri",
            default=f"{settings.PUBLIC_URL}/connect/launchdarkly/callback",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        sandbox_options = SandboxOptions(
            token_ttl=options["token_ttl"],
            code_ttl=options["code_ttl"],
            rate_window_s=options["rate_window"],
            rotate_refresh_tokens=not options["no_refresh_rotation"],
            oauth_client=OAuthClientSeed(
                client_id=options["oauth_client_id"],
                client_secret=options["oauth_client_secret"],
                redirect_uri=options["oauth_redirect_uri"],
            ),
        )
        server = SandboxServer(options["host"], options["port"], sandbox_options)
        if not options["quiet"]:
            self.stdout.write(
                f"LaunchDarkly sandbox on {server.base_url} (overview {server.base_url}/_sandbox/,"
                f" sign in as {DEMO_EMAIL} / {DEMO_PASSWORD})"
            )
            self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.httpd.server_close()

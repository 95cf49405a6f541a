"""`python manage.py welcome`: the last thing `make run` prints, once everything answers.

One short block: where to open the connector, how to sign in to it, and how to sign
in to the local LaunchDarkly sandbox on its consent page. It waits until the web server
and the sandbox answer, so the URLs it prints work when a person reads them, and then
(with --stay) keeps running quietly, because honcho stops every process when one ends.

It lives with the sandbox because it is a development tool: production has neither.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from sandbox.state import DEMO_EMAIL, DEMO_PASSWORD


def welcome_block(*, public_url: str, sandbox_url: str, sign_in: dict[str, str]) -> str:
    rows = [
        ("Open", f"{public_url}/"),
        ("Sign in as", f"{sign_in['email']} / {sign_in['password']}"),
        ("", ""),
        ("LaunchDarkly", f"the local sandbox at {sandbox_url}"),
        ("Its sign-in", f"{DEMO_EMAIL} / {DEMO_PASSWORD}  (on its consent page)"),
        ("Its overview", f"{sandbox_url}/_sandbox/  (metrics, API access tokens)"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"  {label.ljust(width)}  {value}".rstrip() for label, value in rows]
    rule = "─" * (max(len(line) for line in lines) + 2)
    return "\n".join(
        [
            rule,
            "  Metric Connector is running",
            "",
            *lines,
            "",
            "  Stop with Ctrl-C. Only warnings and errors are logged (make run LOG=info for more).",
            rule,
        ]
    )


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own local URLs)
            return True
    except urllib.error.HTTPError:
        return True  # it answered, if not with 200
    except (urllib.error.URLError, OSError):
        return False


class Command(BaseCommand):
    help = "Wait for the web server and the sandbox, then print how to sign in (make run)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait, at most")
        parser.add_argument("--stay", action="store_true", help="keep running after printing")

    def handle(self, *args: Any, **options: Any) -> None:
        public_url = settings.PUBLIC_URL
        sandbox_url = (settings.LAUNCHDARKLY_BASE_URL or "").rstrip("/")
        if not sandbox_url:
            raise CommandError(
                "LAUNCHDARKLY_BASE_URL is not set (make run points it at the sandbox)"
            )
        deadline = time.monotonic() + options["wait"]
        targets = [f"{public_url}/signin/", f"{sandbox_url}/_sandbox/state"]
        while not all(_answers(url) for url in targets):
            if time.monotonic() > deadline:
                raise CommandError(f"nothing answered at {' or '.join(targets)}: see the log above")
            time.sleep(0.3)
        self.stdout.write(
            welcome_block(
                public_url=public_url, sandbox_url=sandbox_url, sign_in=settings.DEMO_SIGN_IN
            )
        )
        self.stdout.flush()
        while options["stay"]:
            time.sleep(3600)

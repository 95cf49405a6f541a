"""Pull a workspace's event catalog from a source product through its adapter.

    POSTHOG_PERSONAL_API_KEY=phx_... python manage.py import_catalog \\
        --workspace acme --source posthog --base-url https://us.posthog.com --project-id 12345

The source's secret comes from the environment, never from the command line
(which other users of the machine can read in the process list)."""

import os

from django.core.management.base import BaseCommand, CommandError

from connector.sources.adapters.base import AdapterError, adapter_for
from connector.sources.services import catalog_import
from tenants.models import Tenant
from tenants.scope import tenant_scope

SECRET_ENV = {"posthog": "POSTHOG_PERSONAL_API_KEY"}


class Command(BaseCommand):
    help = "Import a workspace's event catalog from a source product (e.g. PostHog)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", required=True, help="The workspace's slug.")
        parser.add_argument("--source", default="posthog", choices=sorted(SECRET_ENV))
        parser.add_argument("--base-url", default="https://us.posthog.com")
        parser.add_argument("--project-id", required=True)

    def handle(self, *args, **options) -> None:
        tenant = Tenant.objects.filter(slug=options["workspace"]).first()
        if tenant is None:
            raise CommandError(f"No workspace {options['workspace']!r}.")
        secret_name = SECRET_ENV[options["source"]]
        api_key = os.environ.get(secret_name, "")
        if not api_key:
            raise CommandError(f"Set {secret_name} in the environment.")
        try:
            adapter = adapter_for(
                options["source"],
                base_url=options["base_url"],
                project_id=options["project_id"],
                api_key=api_key,
            )
            with tenant_scope(tenant):
                outcome = catalog_import(adapter=adapter)
        except AdapterError as exc:
            raise CommandError(str(exc)) from None
        counts = outcome.counts
        self.stdout.write(
            f"{counts['created']} created, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged, {counts['rejected']} rejected, "
            f"{outcome.removed} marked removed"
        )
        for result in outcome.rejected[:20]:
            reasons = "; ".join(f"{e.field} {e.reason}" for e in result.errors)
            self.stderr.write(f"rejected {result.key!r}: {reasons}")

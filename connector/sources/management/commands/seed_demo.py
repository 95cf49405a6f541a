"""Seed a demo user and workspace for `make run`. Safe to run again."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from connector.sources.demo import seed_demo_catalog
from tenants.models import AuditAction, Membership, Role, Tenant, User
from tenants.scope import tenant_scope
from tenants.services import audit_record

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "demo-password-2026"
DEMO_SLUG = "demo"


class Command(BaseCommand):
    help = "Create the demo user and workspace (idempotent) and print how to sign in."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        user, created = User.objects.get_or_create(email=DEMO_EMAIL, defaults={"name": "Demo User"})
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        tenant, tenant_created = Tenant.objects.get_or_create(
            slug=DEMO_SLUG, defaults={"name": "Demo Workspace"}
        )
        Membership.objects.get_or_create(user=user, tenant=tenant, defaults={"role": Role.OWNER})
        if tenant_created:
            with tenant_scope(tenant):
                audit_record(actor=user, action=AuditAction.WORKSPACE_CREATED, target=DEMO_SLUG)
        with tenant_scope(tenant):
            catalog = seed_demo_catalog()
        self.stdout.write(
            f"  Demo event catalog: {catalog['created']} added, {catalog['updated']} updated, "
            f"{catalog['unchanged']} unchanged"
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"\n  Open {settings.PUBLIC_URL}/ and sign in as {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
            )
        )

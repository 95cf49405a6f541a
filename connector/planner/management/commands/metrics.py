"""Metrics as code from the command line (docs/metrics-as-code.md):

    python manage.py metrics plan   --workspace acme --file metrics.yaml
    python manage.py metrics apply  --workspace acme --file metrics.yaml [--as EMAIL] [--wait]
    python manage.py metrics export --workspace acme [--file metrics.yaml]

The same engine as the picker's review page: `plan` prints the plan that page would
show for the file, `apply` saves and applies it (the review page shows it too)."""

from __future__ import annotations

import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from connector.planner.document import (
    MAX_DOCUMENT_BYTES,
    Document,
    DocumentInvalid,
    document_apply,
    document_export,
    document_parse,
    document_plan,
    document_refresh,
    plan_summary,
)
from connector.planner.plans import PlanNeedsConfirmation, PlanNotApplicable
from connector.sync.models import FINISHED_STATUSES, ItemStatus, SyncItem, SyncRun
from connector.sync.selectors import run_progress
from tenants.models import Membership, Role, Tenant, User
from tenants.scope import tenant_scope

BLOCKED_EXIT = 2
EXIT_STATUS = (
    "Exit status: 0 when the whole file can be applied; 1 when the file has problems (each "
    "printed with its place; nothing is changed) or apply is refused; 2 when the plan blocks "
    "something (each printed with why: apply applies the rest, as the review page does)."
)


class Command(BaseCommand):
    help = (
        "Metrics as code: plan or apply a YAML file of a workspace's metrics and groups, or "
        "export them as one. " + EXIT_STATUS
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="plan|apply|export")
        plan = actions.add_parser(
            "plan",
            help="Print what applying the file would do. Changes nothing.",
            description="Print one line per metric and group: action, key, name, why; then "
            "the counts. " + EXIT_STATUS,
        )
        apply = actions.add_parser(
            "apply",
            help="Add the file's missing events, save its plan and start the sync.",
            description="Apply the file as the review page applies a plan: all or nothing "
            "for the file's problems, blocked rows left out. " + EXIT_STATUS,
        )
        export = actions.add_parser("export", help="Write the workspace's metrics file.")
        for sub in (plan, apply, export):
            sub.add_argument("--workspace", required=True, help="The workspace's slug.")
        for sub in (plan, apply):
            sub.add_argument("--file", required=True, help="The metrics file; - reads stdin.")
        export.add_argument("--file", help="Where to write it (default: standard output).")
        apply.add_argument(
            "--as",
            dest="actor",
            metavar="EMAIL",
            help="The admin recorded as applying it (default: no user, as for an API key).",
        )
        apply.add_argument(
            "--confirm-in-use",
            action="store_true",
            help="Change metrics that experiments use (refused otherwise).",
        )
        apply.add_argument(
            "--wait", action="store_true", help="Wait until the sync run finishes; print it."
        )
        apply.add_argument(
            "--timeout", type=float, default=600, help="Seconds --wait waits at most (600)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug=options["workspace"]).first()
        if tenant is None:
            raise CommandError(f"No workspace {options['workspace']!r}.")
        with tenant_scope(tenant):
            if options["action"] == "export":
                self.export(options.get("file"))
            elif options["action"] == "plan":
                self.plan(self.read(options["file"]))
            else:
                actor = self.actor(tenant, options.get("actor"))
                self.apply(self.read(options["file"]), actor, options)

    # --- the three actions --------------------------------------------------------------

    def export(self, path: str | None) -> None:
        text = document_export()
        if path:
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
            self.stderr.write(f"Wrote {path}.")
        else:
            self.stdout.write(text, ending="")

    def plan(self, document: Document) -> None:
        note = document_refresh(document)  # as the review page reads LaunchDarkly first
        try:
            plan, to_add = document_plan(document)
        except DocumentInvalid as exc:
            raise self.invalid(exc) from None
        summary = plan_summary(plan, to_add, note=note)
        self.print_plan(summary)
        self.exit_if_blocked(summary)

    def apply(self, document: Document, actor: User | None, options: dict[str, Any]) -> None:
        note = document_refresh(document)
        try:
            preview, to_add = document_plan(document)
            plan, run = document_apply(
                document=document,
                actor=actor,
                confirm_in_use=options["confirm_in_use"],
                via="metrics command",
            )
        except DocumentInvalid as exc:
            raise self.invalid(exc) from None
        except PlanNeedsConfirmation as exc:
            raise CommandError(
                f"{exc} Run again with --confirm-in-use. Nothing was changed."
            ) from None
        except PlanNotApplicable as exc:
            raise CommandError(f"{exc} Nothing was changed.") from None
        summary = plan_summary(preview, to_add, note=note)
        self.print_plan(summary)
        slug = plan.tenant.slug
        review = settings.PUBLIC_URL + reverse(
            "planner:plan", kwargs={"slug": slug, "plan_id": plan.pk}
        )
        if run is None:
            self.stdout.write(
                f"Plan {plan.pk} applied: nothing to send, LaunchDarkly holds what the file "
                f"says. Review: {review}"
            )
        else:
            page = settings.PUBLIC_URL + reverse(
                "sync:run", kwargs={"slug": slug, "run_id": run.pk}
            )
            self.stdout.write(
                f"Plan {plan.pk} applied: run {run.pk} sends {run.total} item"
                f"{'s' if run.total != 1 else ''}. Follow it: {page}"
                + ("" if options["wait"] else " (or apply with --wait)")
            )
            if run.queue_reached is False:
                self.stdout.write(
                    "The task queue cannot be reached right now; the run starts by itself "
                    "when it is back."
                )
            if options["wait"]:
                self.wait(run, options["timeout"])
        self.exit_if_blocked(summary)

    # --- helpers --------------------------------------------------------------------------

    def read(self, path: str) -> Document:
        try:
            # One byte past the cap is enough for document_parse to refuse a larger file.
            if path == "-":
                text: str | bytes = sys.stdin.buffer.read(MAX_DOCUMENT_BYTES + 1)
            else:
                with open(path, "rb") as file:
                    text = file.read(MAX_DOCUMENT_BYTES + 1)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
        try:
            return document_parse(text)
        except DocumentInvalid as exc:
            raise self.invalid(exc, path) from None

    def invalid(self, exc: DocumentInvalid, path: str = "the file") -> CommandError:
        for error in exc.errors:
            self.stderr.write(str(error))
        count = len(exc.errors)
        return CommandError(
            f"{path}: {count} problem{'s' if count != 1 else ''}; nothing was changed."
        )

    def actor(self, tenant: Tenant, email: str | None) -> User | None:
        if not email:
            return None
        membership = (
            Membership.objects.select_related("user")
            .filter(tenant=tenant, user__email__iexact=email)
            .first()
        )
        if membership is None or not membership.has_role(Role.ADMIN):
            raise CommandError(f"{email} is not an admin of workspace {tenant.slug!r}.")
        return membership.user

    def print_plan(self, summary: dict[str, Any]) -> None:
        rows = [("metric", row) for row in summary["metrics"]]
        rows += [("group", row) for row in summary["groups"]]
        width = max((len(row["key"]) for _, row in rows), default=0)
        for what, row in rows:
            why = row["reason"]
            if row["changes"]:
                changed = ", ".join(change["field"] for change in row["changes"])
                why = f"{why} Changes: {changed}.".strip()
            line = f"{row['action']:<9}  {what:<6}  {row['key']:<{width}}  {row['name']}"
            self.stdout.write(f"{line}  ({why})" if why else line)
        if summary["events_to_add"]:
            self.stdout.write(
                "events to add to the catalog: " + ", ".join(summary["events_to_add"])
            )
        self.stdout.write(
            f"metrics: {_counted(summary['counts']['metrics'])}; "
            f"groups: {_counted(summary['counts']['groups'])}"
        )
        if summary["note"]:
            self.stdout.write(f"note: {summary['note']}")
        if summary["problem"]:
            self.stdout.write(f"blocked: {summary['problem']}")

    def exit_if_blocked(self, summary: dict[str, Any]) -> None:
        blocked = summary["blocked"]
        if blocked:
            for reason in blocked:
                self.stderr.write(f"blocked: {reason}")
            count = len(blocked)
            raise CommandError(
                f"{count} thing{'s' if count != 1 else ''} of the file cannot be applied.",
                returncode=BLOCKED_EXIT,
            )

    def wait(self, run: SyncRun, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            run.refresh_from_db()
            if run.finished_at is not None:
                break
            if time.monotonic() > deadline:
                raise CommandError(
                    f"Run {run.pk} has not finished after {timeout:.0f} s; it goes on. "
                    f"{_counted(run_progress(run=run).counts)}"
                )
            time.sleep(1)
        progress = run_progress(run=run)
        self.stdout.write(
            f"Run {run.pk} finished in {run.duration_s} s: {_counted(progress.counts)}."
        )
        failed = SyncItem.objects.filter(run=run).exclude(status=ItemStatus.DONE)
        failed = failed.filter(status__in=FINISHED_STATUSES).select_related("mapping", "group")
        problems = [f"{item.target_key}: {item.status}, {item.error_message}" for item in failed]
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"Run {run.pk}: {len(problems)} item(s) did not go through.")


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {name}" for name, n in counts.items() if n) or "nothing"

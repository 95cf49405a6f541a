"""The overview's planning steps: pick events into a plan, review and apply it."""

from django.dispatch import receiver
from django.urls import reverse

from connector.metrics.models import MetricPlan
from tenants.overview import Step, workspace_steps


@receiver(workspace_steps, dispatch_uid="metrics.steps")
def plan_steps(*, membership, **_) -> list[Step]:
    slug = membership.tenant.slug
    latest = MetricPlan.objects.order_by("-created_at", "-pk").first()
    applied = MetricPlan.objects.exclude(applied_at=None).order_by("-applied_at").first()
    if applied is not None:
        apply_state = f"Plan {applied.pk} applied on {applied.applied_at:%Y-%m-%d %H:%M} UTC"
    elif latest is not None:
        apply_state = f"Plan {latest.pk} is waiting for your review."
    else:
        apply_state = "Nothing is sent to LaunchDarkly before you apply a plan."
    return [
        Step(
            order=40,
            title="Pick events and their metric kind",
            done=latest is not None,
            state=f"{MetricPlan.objects.count()} plan(s) made" if latest else "No plan yet.",
            url=reverse("planner:picker", args=[slug]),
            action="Pick events",
        ),
        Step(
            order=50,
            title="Review the plan and apply it",
            done=applied is not None,
            state=apply_state,
            url=reverse("planner:plan", args=[slug, latest.pk])
            if latest
            else reverse("planner:picker", args=[slug]),
            action="Review the plan",
        ),
    ]

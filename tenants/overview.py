"""The workspace overview's checklist: from "connect LaunchDarkly" to "metrics in
LaunchDarkly", each step with its state and a link.

The steps belong to the packages above (connections, sources, metrics, sync), which
tenants must not import; they answer `workspace_steps` instead, each with the steps it
knows about. The overview puts them in order and names the first one not done as the
next step, so the page always has one clear thing to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from django.dispatch import Signal

from tenants.models import Membership

# Sent in the workspace's scope with `membership`; receivers return a list of Step.
workspace_steps = Signal()


@dataclass(frozen=True)
class Step:
    order: int  # where it goes in the checklist
    title: str  # what the step is, e.g. "Connect LaunchDarkly"
    done: bool
    state: str  # what is true now, e.g. "294 events in the catalog"
    url: str  # where the step is done (or looked at once done)
    action: str  # the link's text, e.g. "Connect LaunchDarkly"
    admin_only: bool = True  # members read the state; admins do the step


@dataclass(frozen=True)
class Checklist:
    steps: list[Step]
    next_step: Step | None  # the first step not done, or None when all are

    @property
    def done_count(self) -> int:
        return sum(step.done for step in self.steps)


def checklist_for(membership: Membership) -> Checklist:
    steps: list[Step] = []
    for _, answer in workspace_steps.send(sender=Membership, membership=membership):
        steps.extend(cast(list[Step], answer))
    steps.sort(key=lambda step: step.order)
    next_step = next((step for step in steps if not step.done), None)
    return Checklist(steps=steps, next_step=next_step)

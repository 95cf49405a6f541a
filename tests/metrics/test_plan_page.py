"""The plan review page as a person reads it: compact rows grouped by action, one
truthful state before and after applying, and exactly the tags LaunchDarkly gets."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from itertools import pairwise

import pytest
from django.urls import reverse
from django.utils import timezone

from connector.metrics.models import MetricMapping
from connector.planner.plans import PlanAction, plan_compute
from connector.sync import services
from connector.sync.models import SyncRun
from tenants.scope import tenant_scope
from tests.metrics.conftest import make_event, make_events, make_plan
from tests.sync.conftest import connect_workspace

pytestmark = pytest.mark.django_db

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


# --- a small DOM, to test the page's structure rather than its strings ---------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    parent: Node | None = None
    children: list[Node | str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set((self.attrs.get("class") or "").split())

    @property
    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text for c in self.children]
        return " ".join("".join(parts).split())

    def all(self, tag: str = "", cls: str = "") -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (not tag or child.tag == tag) and (not cls or cls in child.classes):
                    found.append(child)
                found += child.all(tag, cls)
        return found

    def one(self, tag: str = "", cls: str = "") -> Node:
        (found,) = self.all(tag, cls)
        return found

    def ancestors(self) -> list[Node]:
        node, up = self.parent, []
        while node is not None:
            up.append(node)
            node = node.parent
        return up


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = self.at = Node("#document", {})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.at)
        self.at.children.append(node)
        if tag not in VOID:
            self.at = node

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.at
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.at = node.parent

    def handle_data(self, data: str) -> None:
        self.at.children.append(data)


def dom(response) -> Node:
    assert response.status_code == 200
    builder = TreeBuilder()
    builder.feed(response.content.decode())
    return builder.root


def closed_details_around(node: Node, within: Node) -> bool:
    """`node` sits in a <details> that is closed, between it and `within`."""
    for up in node.ancestors():
        if up is within:
            return False
        if up.tag == "details" and "open" not in up.attrs:
            return True
    return False


def plan_rows(page: Node) -> list[Node]:
    return [
        tr
        for table in page.all("table", "plan-rows")
        for tbody in table.all("tbody")
        for tr in tbody.all("tr")
    ]


# --- helpers --------------------------------------------------------------------------


def review_url(workspace, plan):
    return reverse("planner:plan", args=[workspace.slug, plan.pk])


def apply_url(workspace, plan):
    return reverse("planner:plan_apply", args=[workspace.slug, plan.pk])


def mark_synced(workspace):
    with tenant_scope(workspace):
        for mapping in MetricMapping.objects.all():
            mapping.applied_hash = mapping.desired_hash
            mapping.status = "synced"
            mapping.save()


def run_all(workspace):
    """Pump and run the ready items in this process, as workers would, until none is."""
    with tenant_scope(workspace):
        for _ in range(100):
            ready = services.pump()
            if not ready:
                return
            for item_id in ready:
                services.item_run(item_id=item_id)


def field_of(row: Node, label: str) -> str:
    """The value of a row's field, as listed in its <dl>."""
    (dl,) = row.all("dl")
    items = [c for c in dl.children if isinstance(c, Node)]
    (value,) = [dd for dt, dd in pairwise(items) if dt.tag == "dt" and dt.text == label]
    return value.text


def applied_note(page: Node) -> Node:
    return page.one(cls="plan-state")


# --- 1. compact at any size ------------------------------------------------------------


def test_review__sixty_items__one_table_row_each_details_closed_grouped(
    client_of, admin, workspace, connected
):
    events = make_events(workspace, 58)
    # 10 applied as chosen (unchanged), 5 with other tags (update), 2 removed (blocked).
    removed = [make_event(workspace, f"gone_{i}", removed_at=timezone.now()) for i in range(2)]
    client = client_of(admin)
    same = make_plan(workspace, admin.user, ids=[e.pk for e in events[:10]], tags=("web",))
    client.post(apply_url(workspace, same))
    old = make_plan(workspace, admin.user, ids=[e.pk for e in events[10:15]], tags=("old",))
    client.post(apply_url(workspace, old))
    mark_synced(workspace)
    plan = make_plan(
        workspace,
        admin.user,
        ids=[*(e.pk for e in events), *(e.pk for e in removed)],
        tags=("web",),
    )

    page = dom(client.get(review_url(workspace, plan)))

    counts = {li.text for li in page.one("ul", "counts").all("li")}
    assert {"Create: 43", "Update: 5", "Adopt: 0", "Unchanged: 10", "Blocked: 2"} <= counts
    rows = plan_rows(page)
    assert len(rows) == 60  # one table row per metric, no more
    keys = [tr.one("code", "metric-key").text for tr in rows]
    assert len(set(keys)) == 60
    # Grouped by action, in the order of the summary.
    actions = [next(c[4:] for c in tr.classes if c.startswith("row-")) for tr in rows]
    assert actions == sorted(actions, key=PlanAction.ORDER.index)
    for action in ("create", "update", "unchanged", "blocked"):
        assert page.all(cls=f"group-{action}"), action
    # Every row's full field list, and an update's differences, are folded away.
    for tr in rows:
        (fields,) = tr.all("dl")
        assert closed_details_around(fields, within=tr)
    updates = [tr for tr in rows if "row-update" in tr.classes]
    assert len(updates) == 5
    for tr in updates:
        changes = tr.one("ul", "changes")
        assert closed_details_around(changes, within=tr) and "tags" in changes.text
    # Unchanged rows are folded into their group.
    for tr in rows:
        folded = any(up.tag == "details" and "open" not in up.attrs for up in tr.ancestors())
        assert folded == ("row-unchanged" in tr.classes)
    # Blocked rows say why on their line.
    blocked = [tr for tr in rows if "row-blocked" in tr.classes]
    assert all("removed at the source" in tr.text for tr in blocked)


def test_review__summary_links_to_each_group(client_of, admin, workspace, connected):
    events = make_events(workspace, 150)
    plan = make_plan(workspace, admin.user, ids=[e.pk for e in events])
    client = client_of(admin)

    page = dom(client.get(review_url(workspace, plan)))
    links = {a.text: a.attrs["href"] for a in page.one("ul", "counts").all("a")}
    unchanged = dom(client.get(review_url(workspace, plan), {"action": "unchanged"}))

    assert links == {"Create: 150": "?action=create"}  # more than one page: the group alone
    assert len(plan_rows(page)) == 100 and page.all("nav", "pagination")
    assert "No event of this plan has the action unchanged" in unchanged.text


def test_review__one_page__summary_links_jump_to_the_groups(client_of, admin, workspace, connected):
    events = make_events(workspace, 3)
    gone = make_event(workspace, "gone", removed_at=timezone.now())
    plan = make_plan(workspace, admin.user, ids=[*(e.pk for e in events), gone.pk])

    page = dom(client_of(admin).get(review_url(workspace, plan)))

    links = {a.text: a.attrs["href"] for a in page.one("ul", "counts").all("a")}
    assert links == {"Create: 3": "#group-create", "Blocked: 1": "#group-blocked"}
    assert page.all(cls="group-create")[0].attrs["id"] == "group-create"


def test_review__filtered_to_unchanged__that_group_is_open(client_of, admin, workspace, connected):
    event = make_event(workspace, "signup")
    client = client_of(admin)
    client.post(apply_url(workspace, make_plan(workspace, admin.user, ids=[event.pk])))
    mark_synced(workspace)
    plan = make_plan(workspace, admin.user, ids=[event.pk])

    page = dom(client.get(review_url(workspace, plan), {"action": "unchanged"}))

    (row,) = plan_rows(page)
    assert not any(up.tag == "details" and "open" not in up.attrs for up in row.ancestors())


# --- 2. one truthful state, before and after applying ----------------------------------


def test_review__not_applied__nothing_sent_yet_and_the_apply_button(
    client_of, admin, workspace, connected
):
    events = make_events(workspace, 3)
    plan = make_plan(workspace, admin.user, ids=[e.pk for e in events])

    page = dom(client_of(admin).get(review_url(workspace, plan)))

    assert "Nothing has been sent yet." in page.text
    assert page.one("button", "primary").text == "Apply: send 3 metrics"
    assert "Applied on" not in page.text


def test_review__applied__says_when_by_whom_links_its_run_and_its_progress(
    client_of, admin, workspace, ld
):
    client = client_of(admin)
    connect_workspace(client, workspace, ld)
    events = make_events(workspace, 3)
    plan = make_plan(workspace, admin.user, ids=[e.pk for e in events])
    client.post(apply_url(workspace, plan))
    with tenant_scope(workspace):
        run = SyncRun.objects.get()
        plan.refresh_from_db()
    run_url = reverse("sync:run", args=[workspace.slug, run.pk])
    applied_on = f"Applied on {timezone.localtime(plan.applied_at):%Y-%m-%d %H:%M} UTC"

    before = dom(client.get(review_url(workspace, plan)))
    run_all(workspace)
    after = dom(client.get(review_url(workspace, plan)))

    for page in (before, after):
        assert "Nothing has been sent yet" not in page.text
        assert "Apply: send" not in page.text
        note = applied_note(page)
        assert note.text.startswith(f"{applied_on} by {admin.user.email}.")
        assert note.one("a").attrs["href"] == run_url and note.one("a").text == f"Run {run.pk}"
    assert f"Run {run.pk}: running, 0 of 3 sent." in applied_note(before).text
    assert f"Run {run.pk}: 3 of 3 sent." in applied_note(after).text


def test_review__applied_run_with_a_failure__says_how_many_failed(client_of, admin, workspace, ld):
    client = client_of(admin)
    connect_workspace(client, workspace, ld)
    events = make_events(workspace, 3)
    plan = make_plan(workspace, admin.user, ids=[e.pk for e in events])
    client.post(apply_url(workspace, plan))
    with tenant_scope(workspace):
        # A key LaunchDarkly refuses (400): that item fails at once.
        MetricMapping.objects.filter(source_event=events[0]).update(metric_key="Bad Key")
        run = SyncRun.objects.get()

    run_all(workspace)
    page = dom(client.get(review_url(workspace, plan)))

    note = applied_note(page)
    assert f"Run {run.pk}: 2 of 3 sent, 1 failed." in note.text
    assert "warning" in note.classes


def test_review__applied_with_nothing_to_send__says_so_without_a_run(
    client_of, admin, workspace, connected
):
    event = make_event(workspace, "signup")
    client = client_of(admin)
    client.post(apply_url(workspace, make_plan(workspace, admin.user, ids=[event.pk])))
    mark_synced(workspace)
    plan = make_plan(workspace, admin.user, ids=[event.pk])
    client.post(apply_url(workspace, plan))

    page = dom(client.get(review_url(workspace, plan)))

    note = applied_note(page)
    assert f"by {admin.user.email}." in note.text
    assert "Nothing needed to be sent" in note.text and not note.all("a")
    assert "Nothing has been sent yet" not in page.text


# --- 3. the tags shown are the tags LaunchDarkly gets -----------------------------------


def test_review__tags_shown_are_exactly_the_bodys_tags(client_of, admin, workspace, connected):
    events = make_events(workspace, 2, numeric_every=2)  # one numeric, one binary
    plan = make_plan(workspace, admin.user, ids=[e.pk for e in events], tags=("web", "checkout"))
    with tenant_scope(workspace):
        bodies = {row.body["key"]: row.body for row in plan_compute(plan=plan).rows}

    page = dom(client_of(admin).get(review_url(workspace, plan)))

    rows = plan_rows(page)
    assert len(rows) == 2
    for tr in rows:
        body = bodies[tr.one("code", "metric-key").text]
        shown = field_of(tr, "Tags").split(", ")
        assert shown == body["tags"]  # every tag LaunchDarkly gets, the managed one too
        assert len(shown) == 3

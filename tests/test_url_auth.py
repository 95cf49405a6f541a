"""Every URL pattern of the project, walked against another workspace's objects.

For each workspace route: a member of workspace A asks for workspace B's pages and
for B's objects under A's own address, and a plain member asks for admin-only
pages. Each answer must be byte-for-byte the answer for an object that does not
exist. A new URL pattern fails `test_every_url_pattern_is_classified` until it is
added to ROUTES (or PUBLIC, with a reason), and a new URL argument fails until
OBJECT_BUILDERS can make one for a workspace.
"""

import re
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tenants.models import Role
from tests.factories import MembershipFactory, TenantFactory
from tests.imports.factories import make_batch, make_occurrence_upload
from tests.metrics.conftest import make_plan
from tests.sources.factories import ApiKeyFactory, CatalogUploadFactory
from tests.sync.factories import make_item, make_run


@dataclass(frozen=True)
class Route:
    method: str = "get"
    role: str = Role.MEMBER  # the least role that may use it


# Workspace routes: every one takes the workspace slug from the URL.
ROUTES = {
    "tenants:workspace": Route(),
    "tenants:members": Route(),
    "tenants:member_invite": Route("post", Role.ADMIN),
    "tenants:member_role": Route("post", Role.ADMIN),
    "tenants:audit": Route(role=Role.ADMIN),
    "connections:settings": Route(),
    "connections:oauth_begin": Route("post", Role.ADMIN),
    "connections:api_token": Route("post", Role.ADMIN),
    "connections:project": Route(role=Role.ADMIN),
    "connections:disconnect": Route("post", Role.ADMIN),
    "planner:picker": Route(),
    "planner:plan_create": Route("post", Role.ADMIN),
    "planner:plan": Route(role=Role.ADMIN),
    "planner:plan_apply": Route("post", Role.ADMIN),
    "planner:plan_choose": Route("post", Role.ADMIN),
    "planner:plan_groups": Route(role=Role.ADMIN),
    "planner:conventions": Route(role=Role.ADMIN),
    "connections:import_token": Route("post", Role.ADMIN),
    "imports:status": Route(),
    "imports:settings": Route(role=Role.ADMIN),
    "imports:replay": Route("post", Role.ADMIN),
    "imports:upload": Route(role=Role.ADMIN),
    "imports:upload_preview": Route(role=Role.ADMIN),
    "imports:upload_apply": Route("post", Role.ADMIN),
    "planner:register_unit": Route("post", Role.ADMIN),
    "sources:upload": Route(role=Role.ADMIN),
    "sources:preview": Route(role=Role.ADMIN),
    "sources:upload_apply": Route("post", Role.ADMIN),
    "sources:api_keys": Route(role=Role.ADMIN),
    "sources:api_key_revoke": Route("post", Role.ADMIN),
    "sync:status": Route(),
    "sync:settings": Route(role=Role.ADMIN),
    "sync:run": Route(),
    "sync:progress": Route(),
    "sync:retry_failed": Route("post", Role.ADMIN),
    "sync:item_retry": Route("post", Role.ADMIN),
    "metrics_code:import": Route(role=Role.ADMIN),
    "metrics_code:import_plan": Route("post", Role.ADMIN),
    "metrics_code:export": Route(),
}

# Routes with no workspace in them, and why that is safe.
PUBLIC = {
    "healthz": "load balancer probe, no data",
    "readyz": "load balancer probe, no data",
    "metrics": "Prometheus scrape: 404 unless METRICS_TOKEN is set, then 401 without it "
    "(tests/observability/test_metrics_endpoint.py)",
    "tenants:home": "lists only the signed-in user's own memberships",
    "tenants:signup": "creates a new workspace for the visitor",
    "tenants:login": "sign in",
    "tenants:logout": "sign out",
    "tenants:password_reset": "answers the same for known and unknown emails",
    "tenants:password_reset_done": "static page",
    "tenants:password_reset_confirm": "guarded by Django's signed token",
    "tenants:password_reset_complete": "static page",
    "tenants:workspace_new": "creates a workspace owned by the user",
    "sync:ops": "staff only; anyone else gets 404 (tests/sync/test_pages.py)",
    "tenants:invitation": "guarded by a 256-bit single-use token, bound to the invitee's email",
    "connections:oauth_callback": "LaunchDarkly's one fixed redirect URI; the workspace comes "
    "from the single-use OAuth state in the user's own session (tests/connections/test_oauth.py)",
    "api:openapi": "the API's public description, no data",
    "api:events": "authenticated by a workspace API key; see tests/sources",
    "api:event": "authenticated by a workspace API key; see tests/sources",
    "api:events_archive": "authenticated by a workspace API key; see tests/sources",
    "api:track": "authenticated by a workspace API key; see tests/imports",
    "api:metrics_plan": "authenticated by a workspace API key; see tests/metrics",
    "api:metrics_apply": "authenticated by a workspace API key; see tests/metrics",
    "api:metrics_export": "authenticated by a workspace API key; see tests/metrics",
}

# How to make, in a given workspace, the object a URL argument names.
OBJECT_BUILDERS = {
    "membership_id": lambda tenant: MembershipFactory(tenant=tenant).pk,
    "plan_id": lambda tenant: make_plan(tenant, None, ids=[]).pk,
    "key_id": lambda tenant: ApiKeyFactory(tenant=tenant).pk,
    "upload_id": lambda tenant: CatalogUploadFactory(tenant=tenant).pk,
    "run_id": lambda tenant: make_run(tenant).pk,
    "item_id": lambda tenant: make_item(tenant).pk,
    "batch_id": lambda tenant: make_batch(tenant).pk,
    "occurrence_upload_id": lambda tenant: make_occurrence_upload(tenant).pk,
}
MISSING_ID = 2_147_483_000


def walk(resolver=None, prefix=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # staff only; covered by test_admin__* below
            namespace = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            yield from walk(entry, namespace)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{prefix}{entry.name}", entry


def route_arguments(pattern):
    return sorted(pattern.pattern.converters)


CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')


def answer(client, method, url):
    response = getattr(client, method)(url)
    return response.status_code, CSRF.sub(b"", response.content)


def test_every_url_pattern_is_classified():
    names = {name for name, _ in walk()}
    unclassified = names - ROUTES.keys() - PUBLIC.keys()
    assert not unclassified, f"add these URL patterns to ROUTES or PUBLIC: {unclassified}"
    stale = (ROUTES.keys() | PUBLIC.keys()) - names
    assert not stale, f"no longer URL patterns: {stale}"
    for name, pattern in walk():
        if name in ROUTES:
            args = set(route_arguments(pattern)) - {"slug"}
            assert "slug" in route_arguments(pattern), f"{name} has no workspace slug"
            assert args <= OBJECT_BUILDERS.keys(), f"{name}: no builder for {args}"


@pytest.mark.django_db
def test_every_workspace_route__other_workspace__answers_like_missing(client):
    a, b = TenantFactory(), TenantFactory()
    outsider = MembershipFactory(tenant=a, role=Role.OWNER)  # all powers, but in A only
    plain_member = MembershipFactory(tenant=a, role=Role.MEMBER)
    checks = 0

    for name, pattern in walk():
        if name not in ROUTES:
            continue
        route = ROUTES[name]
        args = [arg for arg in route_arguments(pattern) if arg != "slug"]
        objects_of = {t.pk: {arg: OBJECT_BUILDERS[arg](t) for arg in args} for t in (a, b)}
        missing_objects = dict.fromkeys(args, MISSING_ID)

        def url(tenant_slug, objects, name=name):
            return reverse(name, kwargs={"slug": tenant_slug, **objects})

        client.force_login(outsider.user)
        missing_workspace = answer(client, route.method, url("no-such-workspace", objects_of[b.pk]))
        assert missing_workspace[0] == 404, name

        # B's page, with B's objects, as someone who is not in B.
        assert answer(client, route.method, url(b.slug, objects_of[b.pk])) == missing_workspace, (
            name
        )
        checks += 1

        if args:
            # B's objects under A's own address.
            missing_object = answer(client, route.method, url(a.slug, missing_objects))
            assert missing_object[0] == 404, name
            assert answer(client, route.method, url(a.slug, objects_of[b.pk])) == missing_object, (
                name
            )
            checks += 1

        if route.role != Role.MEMBER:
            client.force_login(plain_member.user)
            expected = answer(client, route.method, url("no-such-workspace", objects_of[a.pk]))
            got = answer(client, route.method, url(a.slug, objects_of[a.pk]))
            assert got == expected, f"{name} reveals itself to a plain member"
            checks += 1

    print(f"url auth checks: {checks}")
    assert checks >= len(ROUTES)


@pytest.mark.django_db
def test_admin__non_staff_member__sent_to_admin_sign_in(client, member):
    client.force_login(member.user)
    response = client.get(reverse("admin:tenants_auditevent_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_admin__staff__sees_every_model_across_workspaces_read_only(client, member):
    from tenants.scope import tenant_scope
    from tenants.services import audit_record

    with tenant_scope(member.tenant):
        audit_record(actor=member.user, action="test.action", target="visible-in-admin")
    staff = MembershipFactory(user__is_staff=True, user__is_superuser=True).user
    client.force_login(staff)
    for model in ("user", "tenant", "membership", "invitation", "auditevent"):
        response = client.get(reverse(f"admin:tenants_{model}_changelist"))
        assert response.status_code == 200, model
    page = client.get(reverse("admin:tenants_auditevent_changelist")).content.decode()
    assert "visible-in-admin" in page
    assert client.get(reverse("admin:tenants_auditevent_add")).status_code == 403

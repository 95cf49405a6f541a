"""Canary: real tokens pass through every path, and appear nowhere they must not.

The tokens minted by the sandbox (an API token, and the OAuth access and refresh
tokens) are searched for in every raw column of every table, every log record at
DEBUG level, every task message published, and every page rendered."""

import logging

import pytest
from celery.signals import before_task_publish
from django.db import connection as db
from django.test import Client
from django.urls import reverse

from connector import __version__
from connector.connections.models import LaunchDarklyConnection
from tests.connections.conftest import consent, local_path


def raw_database_values():
    with db.cursor() as cursor:
        for table in db.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # table names come from introspection
            for row in cursor.fetchall():
                for value in row:
                    if value is not None:
                        yield table, value if isinstance(value, str) else repr(value)


@pytest.fixture
def task_messages():
    published = []

    def record(body=None, headers=None, **kwargs):
        published.append(repr(body) + repr(headers))

    before_task_publish.connect(record, weak=False)
    yield published
    before_task_publish.disconnect(record)


@pytest.mark.django_db
def test_canary__tokens_through_every_path__nowhere_in_db_logs_tasks_or_pages(
    client_of,
    admin,
    member,
    workspace,
    ld,
    caplog,
    task_messages,
    django_capture_on_commit_callbacks,
):
    caplog.set_level(logging.DEBUG)
    pages = []
    admin_client = client_of(admin)

    def visit(method, url, data=None, client=admin_client):
        with django_capture_on_commit_callbacks(execute=True):
            response = getattr(client, method)(url, data or {})
        pages.append(response.content.decode())
        return response

    slug = workspace.slug
    # A pasted API token: refused once as a reader, then accepted as a writer.
    reader = ld.mint_token("reader")
    visit(
        "post",
        reverse("connections:api_token", args=[slug]),
        {"instance": "commercial", "token": reader},
    )
    api_token = ld.mint_token("writer")
    visit(
        "post",
        reverse("connections:api_token", args=[slug]),
        {"instance": "commercial", "token": api_token},
    )
    visit("get", reverse("connections:project", args=[slug]))
    visit("post", reverse("connections:project", args=[slug]), {"project_key": "default"})
    visit("get", reverse("connections:settings", args=[slug]))
    member_client = Client()
    member_client.force_login(member.user)
    visit("get", reverse("connections:settings", args=[slug]), client=member_client)

    # Then OAuth, which replaces it: access and refresh tokens.
    begin = visit(
        "post", reverse("connections:oauth_begin", args=[slug]), {"instance": "commercial"}
    )
    visit("get", local_path(consent(begin["Location"])))
    row = LaunchDarklyConnection.objects.unscoped().get()
    oauth_access, oauth_refresh = row.access_token(), row.refresh_token()
    visit("get", reverse("connections:project", args=[slug]))
    visit("get", reverse("connections:settings", args=[slug]))
    visit("get", reverse("tenants:audit", args=[slug]))
    visit("post", reverse("connections:disconnect", args=[slug]))

    canaries = {
        "reader": reader,
        "api": api_token,
        "access": oauth_access,
        "refresh": oauth_refresh,
    }
    assert all(len(value) >= 20 for value in canaries.values())
    leaks = []
    for name, secret in canaries.items():
        leaks += [f"{name} in table {t}" for t, v in raw_database_values() if secret in v]
        leaks += [f"{name} in log {r.name}" for r in caplog.records if secret in r.getMessage()]
        leaks += [f"{name} in a task message" for m in task_messages if secret in m]
        leaks += [f"{name} in a page" for p in pages if secret in p]
    assert leaks == []
    assert len(pages) == 12 and len(caplog.records) > 0
    assert "connections_launchdarklyconnection" in {t for t, _ in raw_database_values()}


@pytest.mark.django_db
def test_every_outbound_call__user_agent_and_api_version(client_of, admin, workspace, ld):
    client = client_of(admin)
    slug = workspace.slug
    begin = client.post(reverse("connections:oauth_begin", args=[slug]), {"instance": "commercial"})
    client.get(local_path(consent(begin["Location"])))
    client.get(reverse("connections:project", args=[slug]))
    client.post(reverse("connections:project", args=[slug]), {"project_key": "default"})
    client.post(reverse("connections:disconnect", args=[slug]))

    # The consent page is the person's browser, not the connector: leave it out.
    calls = [r for r in ld.requests_since(0) if not r["path"].startswith("/trust/oauth/authorize")]
    paths = {r["path"].split("?")[0] for r in calls}
    assert {"/trust/oauth/token", "/trust/oauth/revoke", "/api/v2/caller-identity"} <= paths
    assert {"/api/v2/projects", "/api/v2/projects/default"} <= paths
    assert {r["user_agent"] for r in calls} == {f"MetricSync-Acme-int/{__version__}"}
    assert {r["ld_api_version"] for r in calls} == {"20240415"}

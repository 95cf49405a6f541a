"""Pages that call LaunchDarkly spend the account's shared rate budget, as workers do:
a 429 met by a page pauses the workers too, and the page does not ask again while
the account is paused."""

import pytest
from django.urls import reverse

from connector.connections.services import budget_for
from tests.sync.conftest import connect_workspace

ROUTE = "POST /api/v2/metrics/{projectKey}"


@pytest.mark.django_db
@pytest.mark.parametrize("retry_after_mode", [False, True])
def test_page_meets_429__account_paused_for_workers__page_does_not_ask_again(
    client_of, admin, workspace, ld, retry_after_mode
):
    connection = connect_workspace(client_of(admin), workspace, ld)
    ld.set_limits(global_per_10s=1, retry_after_mode=retry_after_mode)
    page = reverse("connections:project", args=[workspace.slug])
    client = client_of(admin)

    answers = [client.get(page) for _ in range(2)]  # the window's one call, then a 429
    assert [a.status_code for a in answers] == [200, 400]
    budget = budget_for(connection)
    assert budget.paused_until() is not None
    assert budget.acquire(ROUTE) > 0  # a worker now waits instead of meeting a 429

    seen = ld.requests_since(0)[-1]["seq"]
    again = client.get(page)
    assert again.status_code == 400
    assert "LaunchDarkly is rate limiting this account" in again.content.decode()
    assert ld.requests_since(seen) == []  # refused here, without asking LaunchDarkly

"""The shared rate budget of one LaunchDarkly account (connector/launchdarkly/budget.py), on the
configured shared state (Redis or files), with the clock given explicitly."""

import pytest

from connector.launchdarkly.budget import RESERVATION_TTL_S, UNKNOWN_RESET_WAIT_S, RateBudget
from connector.launchdarkly.ratelimit import RateLimitInfo

ROUTE = "POST /api/v2/metrics/{projectKey}"
NOW = 1_800_000_000.0


def answered(budget, *, route_left, reset_in, now=NOW, global_left=None, limited=False):
    budget.release(
        ROUTE,
        RateLimitInfo(
            global_remaining=global_left, route_remaining=route_left, reset_at=now + reset_in
        ),
        rate_limited=limited,
        now=now,
    )


@pytest.fixture
def budget():
    return RateBudget("acct-under-test")


def test_budget__nothing_known__calls_allowed(budget):
    assert [budget.acquire(ROUTE, now=NOW) for _ in range(3)] == [0, 0, 0]


def test_budget__calls_in_flight_count_against_what_is_left(budget):
    assert budget.acquire(ROUTE, now=NOW) == 0
    answered(budget, route_left=2, reset_in=5)

    # Two left: two reservations, then the third waits for the window's reset.
    assert budget.acquire(ROUTE, now=NOW) == 0
    assert budget.acquire(ROUTE, now=NOW) == 0
    assert budget.acquire(ROUTE, now=NOW + 1) == pytest.approx(4)
    # Another route has its own window, but shares the account's global one.
    assert budget.acquire("GET /api/v2/metrics/{projectKey}", now=NOW + 1) == 0


def test_budget__window_resets__budget_of_the_last_window_back(budget):
    budget.acquire(ROUTE, now=NOW)
    answered(budget, route_left=0, reset_in=5)
    assert budget.acquire(ROUTE, now=NOW + 1) > 0

    assert budget.acquire(ROUTE, now=NOW + 5) == 0  # the limit learned: 0 left + 1 used


def test_budget__answers_out_of_order__late_one_does_not_raise_the_budget(budget):
    for _ in range(2):
        budget.acquire(ROUTE, now=NOW)
    answered(budget, route_left=0, reset_in=5)
    answered(budget, route_left=1, reset_in=5)  # sent first, answered last

    assert budget.acquire(ROUTE, now=NOW + 1) == pytest.approx(4)


def test_budget__answer_from_a_window_that_is_over__ignored(budget):
    budget.acquire(ROUTE, now=NOW)
    answered(budget, route_left=5, reset_in=10)
    budget.acquire(ROUTE, now=NOW)
    answered(budget, route_left=0, reset_in=-1)  # the old window's last word

    assert budget.acquire(ROUTE, now=NOW + 1) == 0


def test_budget__rate_limited__whole_account_pauses_until_reset(budget):
    budget.acquire(ROUTE, now=NOW)
    answered(budget, route_left=0, global_left=0, reset_in=7, limited=True)

    assert budget.acquire("GET /api/v2/projects", now=NOW + 2) == pytest.approx(5)
    assert budget.limited_until(now=NOW + 2) == pytest.approx(NOW + 7)
    assert budget.limited_until(now=NOW + 8) is None


def test_budget__reservation_of_a_worker_that_died__expires(budget):
    budget.acquire(ROUTE, now=NOW)
    answered(budget, route_left=1, reset_in=60)
    assert budget.acquire(ROUTE, now=NOW) == 0  # never released: its worker died
    assert budget.acquire(ROUTE, now=NOW + 1) > 0

    assert budget.acquire(ROUTE, now=NOW + RESERVATION_TTL_S + 1) == 0


def test_budget__spent_with_unknown_reset__looks_again_soon(budget):
    budget.acquire(ROUTE, now=NOW)
    budget.release(ROUTE, RateLimitInfo(route_remaining=0), now=NOW)

    assert budget.acquire(ROUTE, now=NOW + 1) == UNKNOWN_RESET_WAIT_S

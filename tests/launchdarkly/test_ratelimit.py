from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connector.launchdarkly.ratelimit import (
    DEFAULT_WAIT_S,
    MAX_WAIT_S,
    MIN_WAIT_S,
    RateLimitInfo,
    parse_rate_limit_headers,
)

NOW = 1_800_000_000.0


def test_parse__launchdarkly_headers__reads_remaining_and_reset_in_milliseconds():
    info = parse_rate_limit_headers(
        {
            "X-Ratelimit-Global-Remaining": "90",
            "X-Ratelimit-Route-Remaining": "4",
            "X-Ratelimit-Reset": str(int((NOW + 7.5) * 1000)),
        },
        NOW,
    )
    assert info == RateLimitInfo(
        global_remaining=90, route_remaining=4, reset_at=NOW + 7.5, retry_after_s=None
    )


def test_parse__header_names_in_any_case__are_read():
    info = parse_rate_limit_headers({"retry-after": "3", "x-ratelimit-route-remaining": "0"}, NOW)
    assert (info.retry_after_s, info.route_remaining) == (3.0, 0)


def test_parse__no_headers__everything_none():
    assert parse_rate_limit_headers({}, NOW) == RateLimitInfo()


@pytest.mark.parametrize("value", ["soon", "", "nan", "inf", "Mon, 99 Foo 2026"])
def test_parse__unreadable_values__are_ignored(value):
    headers = {
        "Retry-After": value,
        "X-Ratelimit-Reset": value,
        "X-Ratelimit-Global-Remaining": value,
    }
    assert parse_rate_limit_headers(headers, NOW) == RateLimitInfo()


def test_parse__retry_after_http_date__becomes_seconds_from_now():
    now = datetime(2027, 1, 15, 8, 0, 0, tzinfo=UTC).timestamp()
    info = parse_rate_limit_headers({"Retry-After": "Fri, 15 Jan 2027 08:00:30 GMT"}, now)
    assert info.retry_after_s == 30.0


def test_parse__retry_after_date_in_the_past__is_zero_seconds():
    info = parse_rate_limit_headers({"Retry-After": "Thu, 01 Jan 2015 00:00:00 GMT"}, NOW)
    assert info.retry_after_s == 0.0


def test_wait__retry_after_only__waits_that_long():
    assert RateLimitInfo(retry_after_s=12).wait_s(NOW) == 12


def test_wait__reset_only__waits_until_reset():
    assert RateLimitInfo(reset_at=NOW + 4.25).wait_s(NOW) == pytest.approx(4.25)


@pytest.mark.parametrize(("retry_after", "reset_in", "expected"), [(3, 8, 8), (9, 2, 9)])
def test_wait__both_headers__takes_the_later(retry_after, reset_in, expected):
    info = RateLimitInfo(retry_after_s=retry_after, reset_at=NOW + reset_in)
    assert info.wait_s(NOW) == pytest.approx(expected)


def test_wait__no_headers__waits_one_launchdarkly_window():
    assert RateLimitInfo().wait_s(NOW) == DEFAULT_WAIT_S == 10


def test_wait__reset_in_the_past__still_waits_a_little():
    assert RateLimitInfo(reset_at=NOW - 30).wait_s(NOW) == MIN_WAIT_S > 0


def test_wait__absurd_headers__capped():
    assert RateLimitInfo(retry_after_s=86_400, reset_at=NOW + 86_400).wait_s(NOW) == MAX_WAIT_S


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Ratelimit-Reset": str(int((NOW + 10 * 365 * 86_400) * 1000))},  # ten years
        {"X-Ratelimit-Reset": "1e15"},  # year 33658
        {"Retry-After": "99999999"},
        {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
    ],
)
def test_parse__reset_or_retry_after_absurdly_far__marked_absurd_values_dropped(headers):
    info = parse_rate_limit_headers({**headers, "X-Ratelimit-Route-Remaining": "0"}, NOW)
    assert info.absurd and "ahead" in info.absurd
    assert (info.reset_at, info.retry_after_s, info.route_remaining) == (None, None, None)


def test_clamp_wait__bounds_every_wait():
    from connector.launchdarkly.ratelimit import clamp_wait

    assert clamp_wait(-5) == 0 and clamp_wait(3) == 3 and clamp_wait(1e12) == MAX_WAIT_S

from __future__ import annotations

import pytest

from connector.launchdarkly import errors


@pytest.mark.parametrize(
    ("error_type", "retryable"),
    [
        (errors.TransportError, True),
        (errors.Timeout, True),
        (errors.MalformedResponse, True),
        (errors.ServerError, True),
        (errors.RateLimited, True),
        (errors.Unauthorized, False),
        (errors.Forbidden, False),
        (errors.NotFound, False),
        (errors.Conflict, False),
        (errors.InvalidRequest, False),
        (errors.UnexpectedStatus, False),
        (errors.UnexpectedRedirect, False),
        (errors.OAuthError, False),
        (errors.InvalidGrant, False),
    ],
)
def test_errors__retryable__only_for_what_may_succeed_unchanged(error_type, retryable):
    assert issubclass(error_type, errors.LaunchDarklyError)
    assert error_type.retryable is retryable


def test_errors__str__message_with_status_and_code():
    error = errors.Conflict("Metric exists", status=409, code="conflict", request_id="r-1")
    assert str(error) == "Metric exists (409 conflict)"
    assert str(errors.TransportError("GET /api/v2/projects: connection failed")) == (
        "GET /api/v2/projects: connection failed"
    )

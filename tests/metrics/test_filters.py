"""Property filters: what people write, what LaunchDarkly receives, and what is refused.

LaunchDarkly's limits follow statsig-to-ld's converter (internal/converter/filters.go):
at most 10 leaves, strings up to 1,024 characters, equality as `in`, numbers as JSON
numbers, one value and no negation for comparisons, no `exists` on SDK-event metrics.
"""

import pytest

from connector.metrics.desired import MANAGED_TAG, fingerprint, metric_body
from connector.metrics.filters import (
    FilterRefused,
    describe,
    event_filter,
    filter_digest,
    parse_conditions,
)
from connector.metrics.keys import metric_key_for
from connector.metrics.models import MetricKind, MetricMapping
from connector.sources.models import SourceEvent

PROPERTIES = {"plan": "string", "amount": "number", "trial": "boolean", "country": "string"}


def parse(text):
    return parse_conditions(text, PROPERTIES)


def test_equality__is_written_as_in_with_the_value_as_typed():
    assert event_filter(parse("plan = pro")) == {
        "type": "eventProperty",
        "attribute": "plan",
        "op": "in",
        "values": ["pro"],
        "negate": False,
    }


def test_numbers__are_json_numbers_not_strings():
    leaf = event_filter(parse("amount > 100"))
    assert leaf["op"] == "greaterThan"
    assert leaf["values"] == [100]
    assert isinstance(leaf["values"][0], int)
    assert event_filter(parse("amount = 12.5"))["values"] == [12.5]


def test_several_conditions__an_and_group_in_a_canonical_order():
    first = event_filter(parse("plan = pro and amount >= 10"))
    second = event_filter(parse("amount >= 10\nplan = pro"))

    assert first == second
    assert first["type"] == "group"
    assert first["op"] == "and"
    assert [leaf["attribute"] for leaf in first["values"]] == ["amount", "plan"]


def test_not_in_and_not_equal__negate_in():
    leaf = event_filter(parse("country not in (US, CA)"))
    assert (leaf["op"], leaf["negate"], leaf["values"]) == ("in", True, ["CA", "US"])
    assert event_filter(parse("plan != free"))["negate"] is True


def test_text_operators__map_to_launchdarkly_names():
    assert event_filter(parse("plan starts with ent"))["op"] == "startsWith"
    assert event_filter(parse("plan ends with -annual"))["op"] == "endsWith"
    assert event_filter(parse("plan contains pro"))["op"] == "contains"


def test_booleans__are_json_booleans():
    assert event_filter(parse("trial = true"))["values"] == [True]


def test_quoted_values__keep_spaces_and_commas():
    leaf = event_filter(parse('country in ("New Zealand", "Korea, Republic of")'))
    assert leaf["values"] == ["Korea, Republic of", "New Zealand"]
    assert describe(parse('country in ("New Zealand", UK)')) == 'country in ("New Zealand", UK)'


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("plan is set", "exists"),
        ("plan ~ ^pro", "regular expressions"),
        ("plan = pro or plan = team", "AND"),
        ("amount > lots", "not one"),
        ("plan > 3", "comparison needs a number property"),
        ("amount contains 3", "works on text"),
        ("size = large", "no property “size”"),
        ("address.city = Paris", "flat, top-level"),
        ('plan = ""', "empty value"),
        ("trial = maybe", "true or false"),
        ("amount > 0.123456789012345", "14 decimal places"),
        ("plan", "is not a condition"),
    ],
)
def test_inexpressible_conditions__are_refused_with_the_reason(text, reason):
    with pytest.raises(FilterRefused) as refused:
        parse(text)
    assert reason in str(refused.value)


def test_long_strings__over_launchdarklys_limit_are_refused():
    parse("plan = " + "p" * 1024)
    with pytest.raises(FilterRefused, match=r"1,024"):
        parse("plan = " + "p" * 1025)


def test_more_than_ten_leaves__are_refused_never_trimmed():
    properties = {f"p{i}": "number" for i in range(11)}
    ten = " and ".join(f"p{i} > 1" for i in range(10))
    assert len(event_filter(parse_conditions(ten, properties))["values"]) == 10
    with pytest.raises(FilterRefused, match="at most 10"):
        parse_conditions(ten + " and p10 > 1", properties)


def test_digest__stable_and_order_free_and_part_of_the_key():
    one = filter_digest(parse("plan = pro and amount > 100"))
    other = filter_digest(parse("amount > 100 and plan = pro"))
    different = filter_digest(parse("plan = team and amount > 100"))

    assert one == other != different
    assert filter_digest([]) == ""
    assert metric_key_for("purchase", "binary", variant=one) == f"purchase-{one}-binary"
    assert metric_key_for("purchase", "binary") == "purchase-binary"


def _mapping(**fields):
    event = SourceEvent(key="purchase", properties=PROPERTIES)
    return MetricMapping(
        source_event=event,
        kind=MetricKind.BINARY,
        metric_key="purchase-binary",
        name="Purchase",
        randomization_units=["user"],
        **fields,
    )


def test_metric_body__carries_filters_and_the_fingerprint_sees_them():
    plain = metric_body(_mapping(), event_key="purchase")
    filtered = metric_body(
        _mapping(filters=[c.to_json() for c in parse("plan = pro")]), event_key="purchase"
    )

    assert "filters" not in plain
    assert filtered["filters"]["attribute"] == "plan"
    assert fingerprint(plain) != fingerprint(filtered)
    assert MANAGED_TAG in filtered["tags"]


def test_fingerprint__of_a_metric_without_filters_is_unchanged_by_their_arrival():
    """A metric applied before filters existed keeps its fingerprint: a LaunchDarkly
    answer with `filters` absent or null is the same as ours without them."""
    body = metric_body(_mapping(), event_key="purchase")
    assert fingerprint(body) == fingerprint({**body, "filters": None})

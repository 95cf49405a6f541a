"""Metric event filters (`filters` on postMetric and patchMetric): which filters
LaunchDarkly accepts, and which imported events a filter lets through.

What LaunchDarkly publishes (contract rows FLT-1 to FLT-7; FLT-8 is the matching):
- Spec: MetricPost `filters` is an `EventFilter`, "only supported for custom metrics";
  its required fields are `type`, `op`, `values` and `negate`; `type` is one of
  contextAttribute, eventProperty, group; `values` holds "the context attribute / event
  property values or group member nodes. Numeric values must not exceed 14 decimal
  places"; `negate` "take[s] the inverse of the operator"; `Operator` is any string.
- s2ld (launchdarkly-labs/statsig-to-ld, `internal/converter/filters.go` and
  `internal/launchdarkly/types.go`, "Constraints LaunchDarkly enforces on save"): group
  nodes combine with `and` or `or` and "must not set Attribute, ContextKind, or Negate";
  "Maximum nesting depth 3 and maximum 10 leaf clauses"; strings of at most 1,024
  characters; leaf operators in, contains, startsWith, endsWith, lessThan,
  lessThanOrEqual, greaterThan, greaterThanOrEqual, before, after, exists; "exists"
  takes no values, "any other operator needs at least one"; "The comparison operators
  additionally require exactly one and forbid Negate" and must carry a JSON number
  (LaunchDarkly "ignores a filter value that is not a number, so a string here would
  quietly match nothing"); leaf values are "scalar strings, numbers, and booleans";
  "The 'exists' operator is not available on hosted metrics"; a hosted filter "keeps
  the JSON type, so "5" and 5 are different filters".

Ours (open; LaunchDarkly does not publish them):
- the sandbox models hosted metrics (SDK or imported events) only, so `exists` is
  always refused, and warehouse-only rules are not applied;
- `before` and `after` are refused as not modelled: their value format is unpublished;
- `contextKind` is not required on a contextAttribute leaf (s2ld says it is), but an
  eventProperty leaf may not carry one;
- depth counts nodes from the root, so group > group > leaf is the deepest tree;
- a group needs at least one member node.

Matching imported events (ours; LaunchDarkly does not publish its matching rules): an
eventProperty leaf reads the event's `data` by top-level key; a contextAttribute leaf
can only read `key`, from the event's `contextKeys` (events carry no other attribute).
`in` is any-of with JSON equality (a boolean is not a number, "5" is not 5);
contains / startsWith / endsWith compare strings, the comparisons numbers; a value that
is a list matches when any element does. An attribute that is absent or null matches
no leaf, negated or not, as in LaunchDarkly's flag targeting clauses; otherwise
`negate` inverts the leaf. Groups: `and` all, `or` any.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

NODE_TYPES = ("eventProperty", "contextAttribute", "group")
GROUP_OPS = ("and", "or")
SET_OPS = ("in", "contains", "startsWith", "endsWith")
TEXT_OPS = ("contains", "startsWith", "endsWith")
COMPARISON_OPS = ("lessThan", "lessThanOrEqual", "greaterThan", "greaterThanOrEqual")
UNMODELLED_OPS = ("before", "after")
LEAF_OPS = (*SET_OPS, *COMPARISON_OPS, *UNMODELLED_OPS, "exists")
MAX_LEAVES = 10
MAX_DEPTH = 3
MAX_STRING_LENGTH = 1024
MAX_DECIMAL_PLACES = 14
REQUIRED = ("type", "op", "values", "negate")


# --- what LaunchDarkly accepts -------------------------------------------------------------


def filter_problems(root: Any) -> list[str]:
    """Every reason LaunchDarkly would refuse this `filters` value, each naming where
    in the tree it is (`filters.values[1].op: ...`); empty when it is acceptable."""
    problems: list[str] = []
    leaves = _check_node(root, "filters", 1, problems)
    if leaves > MAX_LEAVES:
        problems.append(f"filters: at most {MAX_LEAVES} conditions (leaves); this has {leaves}")
    return problems


def _check_node(node: Any, where: str, depth: int, problems: list[str]) -> int:
    """Appends the node's problems; answers how many leaves it holds."""
    if depth > MAX_DEPTH:
        problems.append(f"{where}: filters nest at most {MAX_DEPTH} levels deep")
        return 0
    if not isinstance(node, dict):
        problems.append(f"{where}: must be a filter object {{type, op, values, negate}}")
        return 0
    missing = [name for name in REQUIRED if name not in node]
    if missing:
        problems.append(f"{where}: {', '.join(missing)} required")
        return 0
    kind, op, values, negate = (node[name] for name in REQUIRED)
    if not isinstance(negate, bool):
        problems.append(f"{where}.negate: must be true or false")
    if not isinstance(values, list):
        problems.append(f"{where}.values: must be an array")
        return 0
    if not isinstance(op, str):
        problems.append(f"{where}.op: must be a string")
        return 0
    if kind == "group":
        return _check_group(node, where, depth, problems)
    if kind in NODE_TYPES:
        _check_leaf(node, where, problems)
        return 1
    problems.append(f"{where}.type: must be one of {', '.join(NODE_TYPES)}")
    return 0


def _check_group(node: dict[str, Any], where: str, depth: int, problems: list[str]) -> int:
    if node["op"] not in GROUP_OPS:
        problems.append(f"{where}.op: a group combines its members with and or or")
    for name in ("attribute", "contextKind"):
        if name in node:
            problems.append(f"{where}.{name}: a group node must not set it")
    if node["negate"] is True:
        problems.append(f"{where}.negate: a group node cannot be negated")
    if not node["values"]:
        problems.append(f"{where}.values: a group needs at least one member node")
    return sum(
        _check_node(child, f"{where}.values[{index}]", depth + 1, problems)
        for index, child in enumerate(node["values"])
    )


def _check_leaf(node: dict[str, Any], where: str, problems: list[str]) -> None:
    kind, op, values, negate = (node[name] for name in REQUIRED)
    attribute = node.get("attribute")
    if not isinstance(attribute, str) or not attribute:
        problems.append(f"{where}.attribute: required for a {kind} condition")
    context_kind = node.get("contextKind")
    if kind == "eventProperty" and context_kind is not None:
        problems.append(f"{where}.contextKind: only contextAttribute conditions name one")
    elif context_kind is not None and (not isinstance(context_kind, str) or not context_kind):
        problems.append(f"{where}.contextKind: must be a context kind's key")
    if op in GROUP_OPS:
        problems.append(f"{where}.op: {op} combines the members of a group node")
    elif op == "exists":
        problems.append(
            f"{where}.op: exists is not available on metrics of LaunchDarkly-hosted "
            "(SDK or imported) events"
        )
    elif op in UNMODELLED_OPS:
        problems.append(
            f"{where}.op: {op} is not modelled by the sandbox (LaunchDarkly has it; the "
            "format of its value is not published)"
        )
    elif op in COMPARISON_OPS:
        if negate is True:
            problems.append(f"{where}.negate: {op} cannot be negated")
        if len(values) != 1:
            problems.append(f"{where}.values: {op} takes exactly one value, not {len(values)}")
        elif not _is_number(values[0]):
            problems.append(
                f"{where}.values: {op} takes a JSON number, not {_show(values[0])}: "
                "LaunchDarkly compares numerically, so it would match nothing"
            )
        else:
            _check_scalar(values[0], f"{where}.values[0]", problems)
    elif op in SET_OPS:
        if not values:
            problems.append(f"{where}.values: {op} takes at least one value")
        for index, value in enumerate(values):
            _check_scalar(value, f"{where}.values[{index}]", problems)
    else:
        problems.append(f"{where}.op: unknown operator {op!r}; one of {', '.join(LEAF_OPS)}")


def _check_scalar(value: Any, where: str, problems: list[str]) -> None:
    if isinstance(value, str):
        if len(value) > MAX_STRING_LENGTH:
            problems.append(
                f"{where}: {len(value)} characters; at most {MAX_STRING_LENGTH} are allowed"
            )
    elif isinstance(value, bool):
        return
    elif isinstance(value, int | float):
        if not math.isfinite(value):
            problems.append(f"{where}: must be a finite number")
        elif _decimal_places(value) > MAX_DECIMAL_PLACES:
            problems.append(f"{where}: at most {MAX_DECIMAL_PLACES} decimal places")
    else:
        problems.append(f"{where}: must be a string, a number or a boolean")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _decimal_places(number: int | float) -> int:
    if isinstance(number, int):
        return 0
    exponent = Decimal(repr(number)).as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _show(value: Any) -> str:
    return f"the string {value!r}" if isinstance(value, str) else repr(value)


# --- which events a filter lets through ----------------------------------------------------


def event_matches(node: dict[str, Any], data: Any, context_keys: dict[str, str]) -> bool:
    """Whether an imported event with these `data` and `contextKeys` passes an accepted
    filter (see the module docstring for the rules)."""
    if node["type"] == "group":
        members = (event_matches(child, data, context_keys) for child in node["values"])
        return all(members) if node["op"] == "and" else any(members)
    actual = _attribute(node, data if isinstance(data, dict) else {}, context_keys)
    if actual is None:
        return False
    candidates = actual if isinstance(actual, list) else [actual]
    hit = any(
        _op_matches(node["op"], candidate, expected)
        for candidate in candidates
        for expected in node["values"]
    )
    return hit != node["negate"]


def _attribute(node: dict[str, Any], data: dict[str, Any], context_keys: dict[str, str]) -> Any:
    attribute = node["attribute"]
    if node["type"] == "eventProperty":
        return data.get(attribute)
    if attribute != "key":
        return None  # imported events carry each context's key and nothing else
    kind = node.get("contextKind")
    if kind is not None:
        return context_keys.get(kind)
    return list(context_keys.values()) or None


def _op_matches(op: str, actual: Any, expected: Any) -> bool:
    if op == "in":
        return _json_equal(actual, expected)
    if op in TEXT_OPS:
        if not (isinstance(actual, str) and isinstance(expected, str)):
            return False
        if op == "contains":
            return expected in actual
        return actual.startswith(expected) if op == "startsWith" else actual.endswith(expected)
    if op in COMPARISON_OPS and _is_number(actual) and _is_number(expected):
        return {
            "lessThan": actual < expected,
            "lessThanOrEqual": actual <= expected,
            "greaterThan": actual > expected,
            "greaterThanOrEqual": actual >= expected,
        }[op]
    return False


def _json_equal(left: Any, right: Any) -> bool:
    """Equality of JSON values of the same type: true is not 1, "5" is not 5."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    return False

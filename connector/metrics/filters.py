"""Property filters: "plan = pro", "amount > 100", and LaunchDarkly's EventFilter.

A metric may count only the occurrences whose properties pass its conditions (AND-ed).
Conditions are kept in our own small form, `{"property", "op", "values"}`, written by
people as text (`parse_conditions`) and turned into LaunchDarkly's `filters`
(`event_filter`). LaunchDarkly's limits are those of its statsig-to-ld converter
(internal/converter/filters.go): at most 10 leaves, strings of at most 1,024
characters, equality written as `in`, numbers as JSON numbers (a string compared with
`greaterThan` quietly matches nothing), numeric comparisons with exactly one value and
no negation, and no `exists` on a metric of SDK events. A condition that cannot be
expressed exactly is refused with the reason: dropping one of AND-ed conditions would
widen the metric and count more than asked, a wrong answer that looks right.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_LEAVES = 10
MAX_STRING_LENGTH = 1024
# EventFilter: "Numeric values must not exceed 14 decimal places."
MAX_DECIMAL_PLACES = 14

# Our operators: what the text says -> (LaunchDarkly op, negate).
OPERATORS: dict[str, tuple[str, bool]] = {
    "=": ("in", False),
    "!=": ("in", True),
    "in": ("in", False),
    "not in": ("in", True),
    "contains": ("contains", False),
    "not contains": ("contains", True),
    "starts with": ("startsWith", False),
    "ends with": ("endsWith", False),
    ">": ("greaterThan", False),
    ">=": ("greaterThanOrEqual", False),
    "<": ("lessThan", False),
    "<=": ("lessThanOrEqual", False),
}
COMPARISONS = frozenset({">", ">=", "<", "<="})
TEXT_ONLY = frozenset({"contains", "not contains", "starts with", "ends with"})
# Operators people try that LaunchDarkly cannot take exactly, and why.
REFUSED_OPERATORS = {
    "is set": "LaunchDarkly refuses the “exists” check on metrics of SDK events, which these are",
    "is not set": "LaunchDarkly refuses the “exists” check on metrics of SDK events, "
    "which these are",
    "~": "LaunchDarkly's event filters have no regular expressions",
    "matches": "LaunchDarkly's event filters have no regular expressions",
    "or": "conditions are combined with AND; for “either of”, use “in (a, b)” on one property",
}

_CONDITION = re.compile(
    r"^\s*(?P<property>[^\s=!<>~]+)\s*"
    r"(?P<op>not\s+in|not\s+contains|starts\s+with|ends\s+with|is\s+not\s+set|is\s+set"
    r"|in|contains|matches|!=|>=|<=|=|>|<|~)"
    r"\s*(?P<rest>.*?)\s*$",
    re.IGNORECASE | re.DOTALL,
)


class FilterRefused(ValueError):
    """A condition LaunchDarkly cannot express exactly; the message says why."""


@dataclass(frozen=True)
class Condition:
    property: str
    op: str
    values: tuple[Any, ...]

    def to_json(self) -> dict[str, Any]:
        return {"property": self.property, "op": self.op, "values": list(self.values)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Condition:
        return cls(str(data["property"]), str(data["op"]), tuple(data.get("values") or ()))

    def __str__(self) -> str:
        shown = [_show(value) for value in self.values]
        if self.op in ("in", "not in"):
            return f"{self.property} {self.op} ({', '.join(shown)})"
        return f"{self.property} {self.op} {shown[0] if shown else ''}".strip()


def _show(value: Any) -> str:
    if isinstance(value, str):
        return json.dumps(value) if re.search(r"[\s,()\"']", value) or not value else value
    return json.dumps(value)


def describe(conditions: list[dict[str, Any]] | list[Condition]) -> str:
    """The conditions as people write them: `plan = pro and amount > 100`."""
    return " and ".join(str(_condition(c)) for c in conditions)


def _condition(value: dict[str, Any] | Condition) -> Condition:
    return value if isinstance(value, Condition) else Condition.from_json(value)


# --- reading what people wrote ------------------------------------------------------------


def parse_conditions(text: str, properties: dict[str, str]) -> list[Condition]:
    """Conditions from text, one per line or joined by " and ", checked against the
    event's property types. FilterRefused names the condition and the reason."""
    parts = [
        part.strip()
        for line in text.splitlines()
        for part in re.split(r"\s+and\s+", line, flags=re.IGNORECASE)
        if part.strip()
    ]
    conditions = [_parse_one(part, properties) for part in parts]
    return normalised(conditions, properties)


def _parse_one(text: str, properties: dict[str, str]) -> Condition:
    if re.search(r"\s+or\s+", text, flags=re.IGNORECASE):
        raise FilterRefused(f"“{text}”: {REFUSED_OPERATORS['or']}.")
    match = _CONDITION.match(text)
    if match is None:
        raise FilterRefused(
            f"“{text}” is not a condition: write a property, an operator and a value, "
            "e.g. “plan = pro” or “amount > 100”."
        )
    name = match["property"]
    op = re.sub(r"\s+", " ", match["op"].lower())
    if op in REFUSED_OPERATORS:
        raise FilterRefused(f"“{text}”: {REFUSED_OPERATORS[op]}.")
    rest = match["rest"]
    if op in ("in", "not in"):
        inner = rest[1:-1] if rest.startswith("(") and rest.endswith(")") else rest
        raw_values = _split_values(inner)
    else:
        raw_values = [_unquote(rest)]
    kind = properties.get(name, "")
    values = tuple(_typed(value, kind) for value in raw_values)
    return Condition(name, op, values)


def _split_values(inner: str) -> list[str]:
    values, current, quote = [], "", ""
    for char in inner:
        if quote:
            if char == quote:
                quote = ""
            else:
                current += char
        elif char in "\"'":
            quote = char
        elif char == ",":
            values.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip() or values:
        values.append(current.strip())
    return values


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _typed(raw: str | Any, kind: str) -> Any:
    """A value as the property's type holds it: numbers as JSON numbers."""
    if not isinstance(raw, str):
        return raw
    if kind == "number":
        try:
            number = Decimal(raw.strip())
        except InvalidOperation:
            return raw  # refused by the type check, with the property's name
        return (
            int(number) if number == number.to_integral_value() and "." not in raw else float(raw)
        )
    if kind == "boolean" and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    return raw


# --- checking: exactly expressible, or refused -------------------------------------------


def normalised(
    conditions: list[Condition] | list[dict[str, Any]], properties: dict[str, str]
) -> list[Condition]:
    """The conditions checked against LaunchDarkly's limits and the event's property
    types, in a canonical order (AND does not care about order; keys and fingerprints
    must not either). FilterRefused says what cannot be expressed exactly."""
    checked = [_checked(_condition(c), properties) for c in conditions]
    if len(checked) > MAX_LEAVES:
        raise FilterRefused(
            f"{len(checked)} conditions, but LaunchDarkly allows at most {MAX_LEAVES} in a "
            "metric's filter."
        )
    unique = sorted(set(checked), key=lambda c: (c.property, c.op, json.dumps(c.values)))
    return unique


def _checked(condition: Condition, properties: dict[str, str]) -> Condition:
    name, op, values = condition.property, condition.op, condition.values
    label = f"“{condition}”"
    if op in REFUSED_OPERATORS:
        raise FilterRefused(f"{label}: {REFUSED_OPERATORS[op]}.")
    if op not in OPERATORS:
        raise FilterRefused(f"{label}: LaunchDarkly has no operator “{op}” for event filters.")
    if not name or "." in name or "[" in name:
        raise FilterRefused(
            f"{label}: LaunchDarkly filters only flat, top-level properties of an event."
        )
    if name not in properties:
        known = ", ".join(sorted(properties)) or "none yet"
        raise FilterRefused(
            f"{label}: the event has no property “{name}” (its properties: {known})."
        )
    kind = properties[name]
    if not values:
        raise FilterRefused(f"{label}: a condition needs at least one value.")
    if op not in ("in", "not in") and len(values) != 1:
        raise FilterRefused(f"{label}: “{op}” takes exactly one value.")
    if op in COMPARISONS and kind != "number":
        raise FilterRefused(
            f"{label}: a comparison needs a number property; “{name}” holds {kind or 'text'}, "
            "and LaunchDarkly would match nothing."
        )
    if op in TEXT_ONLY and kind != "string":
        raise FilterRefused(f"{label}: “{op}” works on text; “{name}” holds {kind}s.")
    for value in values:
        _check_value(label, name, kind, value)
    if op in ("in", "not in"):  # any-of: the order of values means nothing
        values = tuple(sorted(set(values), key=json.dumps))
    return Condition(name, op, tuple(values))


def _check_value(label: str, name: str, kind: str, value: Any) -> None:
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FilterRefused(f"{label}: “{name}” is a number, and {_show(value)} is not one.")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise FilterRefused(f"{label}: {value} is not a finite number.")
            exponent = Decimal(repr(value)).as_tuple().exponent
            if isinstance(exponent, int) and -exponent > MAX_DECIMAL_PLACES:
                raise FilterRefused(
                    f"{label}: LaunchDarkly takes numbers of at most {MAX_DECIMAL_PLACES} "
                    "decimal places."
                )
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise FilterRefused(f"{label}: “{name}” is true or false, not {_show(value)}.")
    else:
        if not isinstance(value, str):
            raise FilterRefused(f"{label}: “{name}” holds text, and {_show(value)} is not text.")
        if not value:
            # statsig-to-ld refuses it too: an empty value and a missing one differ in
            # LaunchDarkly, and the text cannot say which was meant.
            raise FilterRefused(f"{label}: an empty value cannot be told from a missing one.")
        if len(value) > MAX_STRING_LENGTH:
            raise FilterRefused(
                f"{label}: a value of {len(value)} characters; LaunchDarkly allows at most "
                f"{MAX_STRING_LENGTH:,}."
            )


# --- LaunchDarkly's form ------------------------------------------------------------------


def event_filter(conditions: list[dict[str, Any]] | list[Condition]) -> dict[str, Any] | None:
    """LaunchDarkly's `filters` (EventFilter) for checked conditions: one leaf as it is,
    several in an AND group; None without conditions."""
    leaves = [_leaf(_condition(c)) for c in conditions]
    if not leaves:
        return None
    if len(leaves) == 1:
        return leaves[0]
    # The spec requires `negate` on every node; statsig-to-ld leaves it off group nodes.
    return {"type": "group", "op": "and", "values": leaves, "negate": False}


def _leaf(condition: Condition) -> dict[str, Any]:
    op, negate = OPERATORS[condition.op]
    return {
        "type": "eventProperty",
        "attribute": condition.property,
        "op": op,
        "values": list(condition.values),
        "negate": negate,
    }


def filter_digest(conditions: list[dict[str, Any]] | list[Condition]) -> str:
    """A short, stable name for a set of conditions, for metric keys ("" for none)."""
    if not conditions:
        return ""
    canonical = json.dumps([_condition(c).to_json() for c in conditions], sort_keys=True)
    return "f" + hashlib.sha256(canonical.encode()).hexdigest()[:8]


def properties_needed(conditions: list[dict[str, Any]]) -> set[str]:
    """The occurrence properties the conditions read: event import forwards them."""
    return {str(condition["property"]) for condition in conditions}

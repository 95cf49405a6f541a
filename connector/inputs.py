"""Numbers typed by people and clients (query strings, form values, file cells), read
strictly so that bad input gets a clear message instead of a 500.

`str.isdigit()` is true for '²' and '٣', and `int()` refuses the first (a 500 where it
was trusted) and reads the second as 3, along with ' 7', '1_000' and fullwidth digits.
Every place that turns user text into a whole number goes through `whole_number`.
"""

from __future__ import annotations

import re

# ASCII digits only: `\d` would match every script's digits too.
_DIGITS = re.compile(r"[0-9]+")
ID_MAX = 2**63 - 1  # BigAutoField: PostgreSQL's bigint and SQLite's INTEGER both end here
PAGE_MAX = 1_000_000  # far more pages than any list has; larger is "not a page"


def whole_number(text: str | None, *, maximum: int, minimum: int = 0) -> int:
    """`text` as a whole number from `minimum` to `maximum` (both >= 0), or a
    ValueError whose message says what is expected."""
    # Bounded before int(): a 10 kB string of digits is refused without converting it.
    if (
        not isinstance(text, str)
        or len(text) > len(str(maximum))
        or not _DIGITS.fullmatch(text)
        or not minimum <= int(text) <= maximum
    ):
        raise ValueError(f"must be a whole number from {minimum} to {maximum}")
    return int(text)


def whole_number_or_none(text: str | None, *, maximum: int, minimum: int = 0) -> int | None:
    """`whole_number`, with None for anything that is not one."""
    try:
        return whole_number(text, maximum=maximum, minimum=minimum)
    except ValueError:
        return None

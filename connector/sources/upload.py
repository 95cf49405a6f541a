"""Catalog files (JSON or CSV) turned into event definitions with their line
numbers, and the preview of what applying them would do.

A file that cannot be read as a whole (not UTF-8, a wrong CSV header, broken
JSON) is refused with a message and the offending lines. A file that can be read
becomes rows; a row that is wrong on its own (a bad value, a key repeated in the
file) is marked as an error and left out when the file is applied.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from connector.inputs import whole_number
from connector.sources.models import CatalogUpload
from connector.sources.services import events_plan
from connector.sources.validation import FIELDS, VOLUME_MAX, is_storable

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
TOO_LARGE = (
    f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB. "
    "Split the catalog into smaller files and upload them one after the other."
)
MAX_ROWS = 5000
MAX_SHOWN_LINES = 10
CSV_EXAMPLE = "key,name,description,value_kind,unit,first_seen,last_seen,volume"
# What the preview calls the upsert's outcomes: it speaks of the file, not the API.
ACTIONS = {"created": "add", "updated": "change", "unchanged": "unchanged", "rejected": "error"}


class UploadRejected(Exception):
    """The file cannot be read. `lines` are (line number, text) to show the person."""

    def __init__(self, message: str, lines: list[tuple[int, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.lines = lines or []


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    bad: list[tuple[int, str]] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            shown = raw.decode("utf-8", errors="replace").rstrip("\r")
            bad.append(
                (number, f"{shown}   (byte 0x{raw[exc.start]:02X} at column {exc.start + 1})")
            )
            if len(bad) >= MAX_SHOWN_LINES:
                break
    raise UploadRejected(
        "The file is not UTF-8 text (it may have been saved as Latin-1 or Windows-1252). "
        "Save it as UTF-8 (in Excel: 'CSV UTF-8') and upload it again.",
        bad,
    )


def _row(line: int, definition: dict | None, errors: list[dict] | None = None) -> dict:
    return {"line": line, "definition": definition, "errors": errors or []}


# --- CSV ----------------------------------------------------------------------------


def _parse_csv(text: str) -> list[dict]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise UploadRejected(f"The CSV header cannot be read: {exc}.", [(1, text[:200])]) from None
    first_line = text.split("\n", 1)[0].rstrip("\r")
    if not header or not any(cell.strip() for cell in header):
        raise UploadRejected("The file is empty: the first line must be the header.")
    columns = [cell.strip().lower() for cell in header]
    unknown = [c for c in columns if c not in FIELDS]
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if unknown or repeated or "key" not in columns:
        problems = []
        if unknown:
            problems.append("unknown columns: " + ", ".join(repr(c) for c in unknown))
        if repeated:
            problems.append("repeated columns: " + ", ".join(repeated))
        if "key" not in columns:
            problems.append("no 'key' column")
        raise UploadRejected(
            f"The CSV header is wrong ({'; '.join(problems)}). The first line must name "
            f"columns from: {', '.join(FIELDS)}; only 'key' is required. "
            f"For example: {CSV_EXAMPLE}",
            [(1, first_line)],
        )
    rows: list[dict] = []
    previous_end = 1
    lines = text.splitlines()
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            line = reader.line_num
            raise UploadRejected(
                f"Line {line} cannot be read as CSV: {exc}.",
                [(line, lines[line - 1] if line <= len(lines) else "")],
            ) from None
        line, previous_end = previous_end + 1, reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # blank line
        if len(rows) >= MAX_ROWS:
            raise UploadRejected(f"The file has more than {MAX_ROWS} events; split it.")
        if len(cells) != len(columns):
            rows.append(
                _row(
                    line,
                    None,
                    [
                        {
                            "field": "",
                            "reason": f"has {len(cells)} cells; the header has {len(columns)}",
                        }
                    ],
                )
            )
            continue
        definition: dict[str, Any] = {}
        cell_errors: list[dict] = []
        for column, cell in zip(columns, cells, strict=True):
            if cell == "":
                continue  # an empty cell leaves the stored value alone
            definition[column] = cell
            if column == "volume":
                try:
                    definition[column] = whole_number(cell.strip(), maximum=VOLUME_MAX)
                except ValueError as exc:
                    cell_errors.append({"field": "volume", "reason": str(exc)})
        rows.append(_row(line, definition, cell_errors))
    return rows


# --- JSON ---------------------------------------------------------------------------

_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _array_items(text: str, pos: int) -> list[tuple[int, Any]]:
    """The items of the JSON array starting at `pos`, each with its offset."""
    decoder = json.JSONDecoder()
    items = []
    pos = _skip(text, pos + 1)
    while text[pos] != "]":
        value, end = decoder.raw_decode(text, pos)
        items.append((pos, value))
        pos = _skip(text, end)
        if text[pos] == ",":
            pos = _skip(text, pos + 1)
    return items


def _events_array(text: str) -> list[tuple[int, Any]] | None:
    """Items with offsets for `[...]` or `{"events": [...]}`; the text is valid JSON."""
    decoder = json.JSONDecoder()
    pos = _skip(text, 0)
    if text[pos] == "[":
        return _array_items(text, pos)
    if text[pos] != "{":
        return None
    pos = _skip(text, pos + 1)
    while text[pos] != "}":
        name, pos = decoder.raw_decode(text, pos)
        pos = _skip(text, _skip(text, pos) + 1)  # past the colon
        if name == "events" and text[pos] == "[":
            return _array_items(text, pos)
        _, pos = decoder.raw_decode(text, pos)
        pos = _skip(text, pos)
        if text[pos] == ",":
            pos = _skip(text, pos + 1)
    return None


def _parse_json(text: str) -> list[dict]:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        shown = [
            (n, lines[n - 1])
            for n in range(max(1, exc.lineno - 1), min(len(lines), exc.lineno) + 1)
        ]
        raise UploadRejected(
            f"The file is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}.",
            shown,
        ) from None
    except (ValueError, RecursionError):
        raise UploadRejected("The file is not valid JSON (too deeply nested).") from None
    items = _events_array(text)
    if items is None:
        raise UploadRejected(
            'The JSON must be an array of event definitions, or {"events": [...]} as the '
            "API takes it."
        )
    if len(items) > MAX_ROWS:
        raise UploadRejected(f"The file has more than {MAX_ROWS} events; split it.")
    # Offsets only grow: count the newlines since the previous item, not from the start
    # each time (that was quadratic: 5,000 items of a 4.6 MB file took seconds).
    rows, line, counted_to = [], 1, 0
    for offset, value in items:
        line += text.count("\n", counted_to, offset)
        counted_to = offset
        rows.append(_row(line, value))
    return rows


# --- Both ---------------------------------------------------------------------------


def _storable(value: Any) -> bool:
    try:
        if isinstance(value, str):
            return is_storable(value)
        if isinstance(value, list):
            return all(_storable(item) for item in value)
        if isinstance(value, dict):
            return all(_storable(k) and _storable(v) for k, v in value.items())
    except RecursionError:
        return False
    return True


def _mark_unstorable(rows: list[dict]) -> None:
    """Rows are stored before they are validated, and PostgreSQL's jsonb refuses NUL
    and lone surrogates (JSON escapes can carry both): such a row keeps only what can
    be stored, and an error for each field that cannot."""
    reason = "must be valid Unicode text without NUL characters"
    for row in rows:
        definition = row["definition"]
        if _storable(definition):
            continue
        if not isinstance(definition, dict):
            row["definition"] = None
            row["errors"].append({"field": "", "reason": reason})
            continue
        kept = {k: v for k, v in definition.items() if _storable(k) and _storable(v)}
        for name in definition:
            if name not in kept:
                shown = name if is_storable(name) else "(a field name)"
                row["errors"].append({"field": shown, "reason": reason})
        row["definition"] = kept


def _mark_repeated_keys(rows: list[dict]) -> None:
    lines_of: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        key = (row["definition"] or {}).get("key") if isinstance(row["definition"], dict) else None
        if isinstance(key, str):
            lines_of[key].append(row["line"])
    for row in rows:
        key = row["definition"].get("key") if isinstance(row["definition"], dict) else None
        if isinstance(key, str) and len(lines_of[key]) > 1:
            where = ", ".join(str(n) for n in lines_of[key])
            row["errors"].append(
                {"field": "key", "reason": f"appears more than once in the file (lines {where})"}
            )


def parse_upload(*, filename: str, data: bytes) -> tuple[str, list[dict]]:
    """(format, rows) of a catalog file, or `UploadRejected`."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRejected(TOO_LARGE)
    text = _decode(data)
    if not text.strip():
        raise UploadRejected("The file is empty.")
    lowered = filename.lower()
    if lowered.endswith(".json") or (
        not lowered.endswith(".csv") and text.lstrip()[:1] in ("[", "{")
    ):
        file_format, rows = "json", _parse_json(text)
    else:
        file_format, rows = "csv", _parse_csv(text)
    if not rows:
        raise UploadRejected("The file holds no events.")
    _mark_unstorable(rows)
    _mark_repeated_keys(rows)
    return file_format, rows


def definitions_of(upload: CatalogUpload) -> list[Any]:
    """The rows that applying the upload sends to the upsert."""
    return [row["definition"] for row in upload.rows if not row["errors"]]


@dataclass
class PreviewRow:
    line: int
    key: str | None
    action: str  # add | change | unchanged | error
    errors: list[dict] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


@dataclass
class Preview:
    rows: list[PreviewRow]
    counts: dict[str, int]


def preview(upload: CatalogUpload) -> Preview:
    """What applying the upload would do to the catalog as it is now. Writes nothing."""
    usable = [row for row in upload.rows if not row["errors"]]
    plan = events_plan(definitions=[row["definition"] for row in usable], origin="upload")
    outcome = {id(row): result for row, result in zip(usable, plan.results, strict=True)}
    rows = []
    for row in upload.rows:
        definition = row["definition"] if isinstance(row["definition"], dict) else {}
        key = definition.get("key") if isinstance(definition.get("key"), str) else None
        result = outcome.get(id(row))
        if result is None:
            rows.append(PreviewRow(row["line"], key, "error", row["errors"]))
        else:
            rows.append(
                PreviewRow(
                    row["line"],
                    key,
                    ACTIONS[str(result.status)],
                    [e.as_dict() for e in result.errors],
                    result.changed,
                )
            )
    counts = {action: 0 for action in ("add", "change", "unchanged", "error")}
    for row in rows:
        counts[row.action] += 1
    return Preview(rows, counts)

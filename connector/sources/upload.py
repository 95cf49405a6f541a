"""Catalog files (JSON or CSV) turned into event definitions with their line
numbers, and the preview of what applying them would do.

A file that cannot be read as a whole (not UTF-8, a wrong CSV header, broken
JSON) is refused with a message and the offending lines. A file that can be read
becomes rows; a row that is wrong on its own (a bad value, a key repeated in the
file, a CSV quote that never closes) is marked as an error. No CSV line is ever
swallowed into another: a quote that does not close sensibly is an error on its
own line, and the lines after it are read on their own. While rows have errors the
file is applied only by naming the lines to skip (`Preview.skip_value`).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterator
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
CSV_EXAMPLE = (
    "key,name,description,value_kind,unit,value_property,first_seen,last_seen,volume,properties"
)
# A CSV cell cannot hold an object: the `properties` column is written `plan:string; amount:number`.
CSV_PROPERTIES_EXAMPLE = "plan:string; amount:number; trial:boolean"
# What the preview calls the upsert's outcomes: it speaks of the file, not the API.
DASH = "\u2013"  # en dash, between the first and last line of a range
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

_QUOTE_OR_COMMA = re.compile(r'[",]')


def _scan_line(line: str, quoted: bool) -> tuple[bool, int | None, str | None]:
    """One physical line (without its end) read as the csv module reads it: a quote
    opens a quoted cell only as the cell's first character, `""` inside one is a
    quote, and text after a closing quote is kept (the module is not strict).

    `quoted`: whether the line starts inside a quoted cell. Returns whether it ends
    inside one, the column of the quote that opened that cell if it opened on this
    line, and for a line that starts quoted how the cell closes on it: "clean",
    "stray" (text follows the closing quote, so that quote was surely not meant to
    close anything) or None."""
    if not quoted and '"' not in line:
        return False, None, None
    opened: int | None = None
    close: str | None = None
    field_start = -1 if quoted else 0
    pos, length = 0, len(line)
    while pos < length:
        if quoted:
            at = line.find('"', pos)
            if at < 0:
                return True, opened, close
            after = line[at + 1 : at + 2]
            if after == '"':
                pos = at + 2
                continue
            quoted = False
            if opened is None and close is None:
                close = "clean" if after in (",", "") else "stray"
            field_start = at + 2 if after == "," else -1
            pos = field_start if after == "," else at + 1
            continue
        match = _QUOTE_OR_COMMA.search(line, pos)
        if match is None:
            break
        at = match.start()
        if match.group() == ",":
            field_start = at + 1
        elif at == field_start:
            quoted, opened = True, at
        pos = at + 1
    return quoted, opened, close


class _Lines:
    """The file's lines for one csv reader, from wherever `pos` is set: the reader
    takes lines only as a record needs them, so it reads exactly the record there."""

    def __init__(self, lines: list[str]) -> None:
        self.lines, self.pos = lines, 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _lines_phrase(first: int, last: int) -> str:
    return f"line {first}" if first == last else f"lines {first}{DASH}{last}"


def _quote_error(lines: list[str], columns: list[str], start: int, last: int | None) -> dict:
    """The error row of the line at index `start`, whose quote does not close on it.
    `last` is the index of the line whose quote would close it, None if none does."""
    text = lines[start].rstrip("\r\n")
    _, opened, _ = _scan_line(text, False)
    before = next(csv.reader([text[:opened]]), []) if opened else []
    cell = len(before) - 1 if opened else 0
    where = f"the {columns[cell]} cell" if cell < len(columns) else f"cell {cell + 1}"
    definition = None
    if "key" in columns and columns.index("key") < cell and before[columns.index("key")]:
        definition = {"key": before[columns.index("key")]}
    line = start + 1
    end = len(lines) if last is None else last + 1
    if last is not None:
        reason = (
            f"a quote opens here, in {where}, and is not closed on this line: the next "
            f"quote, on line {end}, would close it, so {_lines_phrase(line, end)} would "
            "be read as one cell"
        )
    elif end > line:
        reason = (
            f"a quote opens here, in {where}, and is never closed, so "
            f"{_lines_phrase(line, end)} (to the end of the file) would be read as one cell"
        )
    else:
        reason = f"a quote opens here, in {where}, and is never closed"
    if end > line:
        reason += "; the lines after it are read on their own"
    reason += '. Close the quote, or write a quote that is part of the text as "".'
    return _row(line, definition, [{"field": "", "reason": reason}])


def _parse_csv(text: str) -> list[dict]:
    lines = io.StringIO(text, newline="").readlines()
    first_line = lines[0].rstrip("\r\n")
    columns = [cell.lower() for cell in read_csv_header(first_line, example=CSV_EXAMPLE)]
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
    for record in csv_records(lines, columns):
        if record.unreadable is not None:
            rows.append(record.unreadable)
            continue
        if len(rows) >= MAX_ROWS:
            raise UploadRejected(f"The file has more than {MAX_ROWS} events; split it.")
        cells, line = record.cells, record.line
        if len(cells) != len(columns):
            reason = f"has {len(cells)} cells; the header has {len(columns)}"
            at = columns.index("key")
            shown = {"key": cells[at]} if at < len(cells) and cells[at] else None
            rows.append(_row(line, shown, [{"field": "", "reason": reason}]))
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
            elif column == "properties":
                declared, problem = _properties_cell(cell)
                if problem:
                    cell_errors.append({"field": "properties", "reason": problem})
                definition[column] = declared
        row = _row(line, definition, cell_errors)
        if record.end_line is not None:
            row["end_line"] = record.end_line
        rows.append(row)
    return rows


def _quoted(text: str) -> str:
    # Errors are stored with the rows: never text PostgreSQL's jsonb would refuse.
    return f"“{text[:60]}”" if is_storable(text) else "(text with a NUL character)"


def _properties_cell(cell: str) -> tuple[dict[str, str], str]:
    """`plan:string; amount:number` as {"plan": "string", "amount": "number"}, or why
    the cell cannot be read. Names and types are then checked as the API checks them
    (validation.validate_definition); types are read case-insensitively, as people
    type them into a spreadsheet."""
    declared: dict[str, str] = {}
    for part in cell.split(";"):
        if not part.strip():
            continue  # a trailing ";", or an empty pair
        name, colon, kind = (piece.strip() for piece in part.rpartition(":"))
        if not colon or not name:
            return declared, (
                f"{_quoted(part.strip())} is not a name:type pair; write the properties as "
                f"{CSV_PROPERTIES_EXAMPLE}"
            )
        if name in declared:
            return declared, f"names the property {_quoted(name)} twice"
        declared[name] = kind.lower()
    return declared, ""


def read_csv_header(first_line: str, *, example: str) -> list[str]:
    """The cells of a CSV file's header line, stripped; UploadRejected, with `example`
    of a good header, when the line cannot be read or names nothing."""
    quoted, opened, _ = _scan_line(first_line, False)
    if quoted:
        raise UploadRejected(
            f"The CSV header cannot be read: a quote opens on line 1 (column {(opened or 0) + 1}) "
            f"and is never closed on that line. Column names need no quotes, for example: "
            f"{example}",
            [(1, first_line)],
        )
    try:
        header = next(csv.reader([first_line]), None)
    except csv.Error as exc:
        raise UploadRejected(
            f"The CSV header cannot be read: {exc}.", [(1, first_line[:200])]
        ) from None
    if not header or not any(cell.strip() for cell in header):
        raise UploadRejected("The file is empty: the first line must be the header.")
    return [cell.strip() for cell in header]


@dataclass
class CsvRecord:
    """One record of a CSV file after its header: its cells, or, when it cannot be
    read, the error row for it (`unreadable`, shaped as `_row`)."""

    line: int  # where it starts (1-based)
    end_line: int | None  # where it ends, when a quoted cell runs over several lines
    cells: list[str]
    unreadable: dict | None = None


def csv_records(lines: list[str], columns: list[str]) -> Iterator[CsvRecord]:
    """The records of a CSV file's lines after the header (blank ones left out), for
    every uploader of CSV files (the catalog's, the event import's). A quoted cell may
    run over several lines; a quote that does not close sensibly is an error on its
    own line, and the next line is read on its own: no line is ever swallowed into
    another."""
    feed = _Lines(lines)
    reader = csv.reader(feed)
    start = 1  # index of the line the next record starts on (line numbers are +1)
    while start < len(lines):
        body = lines[start].rstrip("\r\n")
        line, end = start + 1, start
        if '"' not in body:  # the csv module would split it just so
            cells = body.split(",") if body.strip() else []
        else:
            quoted, _, _ = _scan_line(body, False)
            closed_on, stray = None, False
            while quoted and end + 1 < len(lines):
                end += 1
                quoted, _, close = _scan_line(lines[end].rstrip("\r\n"), True)
                if close and closed_on is None:
                    closed_on, stray = end, close == "stray"
            if quoted or stray:
                error = _quote_error(lines, columns, start, None if quoted else closed_on)
                yield CsvRecord(line, None, [], unreadable=error)
                start += 1
                continue
            feed.pos = start
            try:
                cells = next(reader, [])
            except csv.Error as exc:
                reason = f"cannot be read as CSV: {exc}"
                error = _row(line, None, [{"field": "", "reason": reason}])
                if end > start:
                    error["end_line"] = end + 1
                yield CsvRecord(line, end + 1 if end > start else None, [], unreadable=error)
                start = end + 1
                continue
            if end > start and len(cells) != len(columns):
                error = _quote_error(lines, columns, start, closed_on)
                yield CsvRecord(line, None, [], unreadable=error)
                start += 1
                continue
        next_start = end + 1
        if any(cell.strip() for cell in cells):
            yield CsvRecord(line, end + 1 if end > start else None, cells)
        start = next_start


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


MAX_NAMED_LINES = 6  # more lines than this are named as the first few "and N more"


def _listed(items: list[str], total: int | None = None) -> str:
    """ "3", "3 and 5", "3, 7 and 12", or the first few "and 38 more" (of `total`)."""
    total = len(items) if total is None else total
    if total > MAX_NAMED_LINES:
        shown = MAX_NAMED_LINES - 1
        return f"{', '.join(items[:shown])} and {total - shown} more"
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _rows(count: int, what: str = "row") -> str:
    return f"{count} {what}{'' if count == 1 else 's'}"


@dataclass
class PreviewRow:
    line: int
    key: str | None
    action: str  # add | change | unchanged | error
    errors: list[dict] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    end_line: int | None = None  # a CSV row whose quoted cell runs over several lines

    @property
    def lines(self) -> str:
        return f"{self.line}{DASH}{self.end_line}" if self.end_line else str(self.line)


@dataclass
class Preview:
    """What applying would do, and what the page says about it. A file with rows in
    error is applied only by naming the lines to skip (`skip_value`): the person
    chooses it, and the server refuses any other choice."""

    rows: list[PreviewRow]
    counts: dict[str, int]
    blank_lines: list[int] = field(default_factory=list)  # the first few
    blank_count: int = 0

    @property
    def error_rows(self) -> list[PreviewRow]:
        return [row for row in self.rows if row.action == "error"]

    @property
    def error_lines(self) -> list[int]:
        return [row.line for row in self.error_rows]

    @property
    def valid_count(self) -> int:
        return self.counts["add"] + self.counts["change"] + self.counts["unchanged"]

    @property
    def changes_anything(self) -> bool:
        return bool(self.counts["add"] or self.counts["change"])

    @property
    def can_skip(self) -> bool:
        """Whether applying the valid rows and skipping the rest would do something."""
        return bool(self.error_rows) and self.changes_anything

    @property
    def skip_value(self) -> str:
        return ",".join(str(line) for line in self.error_lines)

    def _error_lines_phrase(self) -> str:
        labels = [row.lines for row in self.error_rows]
        return f"line{'' if len(labels) == 1 else 's'} {_listed(labels)}"

    @property
    def skipped_phrase(self) -> str:
        """ "lines 3, 7 and 12", or "the 43 rows with errors (lines 3, ... and 38 more)"."""
        if len(self.error_rows) > MAX_NAMED_LINES:
            return f"the {_rows(len(self.error_rows))} with errors ({self._error_lines_phrase()})"
        return self._error_lines_phrase()

    @property
    def blocked_text(self) -> str:
        """Why the primary Apply is disabled while rows have errors."""
        count = len(self.error_rows)
        if not count:
            return ""
        if count == 1:
            return "1 row has errors: fix it and upload again."
        return f"{count} rows have errors: fix them and upload again."

    @property
    def skip_label(self) -> str:
        return (
            f"Apply the {self.valid_count} valid {'row' if self.valid_count == 1 else 'rows'}, "
            f"skipping {self.skipped_phrase}"
        )

    @property
    def refusal(self) -> str:
        """The message of an apply without the explicit choice to skip the errors."""
        count = len(self.error_rows)
        has = "has" if count == 1 else "have"
        which = f"{_rows(count)} {has} errors ({self._error_lines_phrase()})"
        them = "it" if count == 1 else "them"
        if not self.can_skip:
            return (
                f"Nothing was applied: {which}, and no other row would change the catalog. "
                f"Fix {them} and upload the file again."
            )
        return (
            f"Nothing was applied: {which}. Fix {them} and upload the file again, or "
            f"choose “{self.skip_label}”."
        )

    @property
    def skipped_text(self) -> str:
        """For the success message of an apply that skipped the rows with errors."""
        if len(self.error_rows) > MAX_NAMED_LINES:
            return f"Skipped {self.skipped_phrase}."
        has = "has" if len(self.error_rows) == 1 else "have"
        return f"Skipped {self.skipped_phrase}, which {has} errors."

    @property
    def blank_text(self) -> str:
        if not self.blank_count:
            return ""
        labels = [str(line) for line in self.blank_lines]
        if self.blank_count == 1:
            return f"Line {labels[0]} is blank and was skipped."
        return f"Lines {_listed(labels, self.blank_count)} are blank and were skipped."


def posted_lines(value: str | None) -> list[int] | None:
    """The line numbers of a posted skip choice ("3,7,12"), None if it is not one."""
    if not value:
        return []
    try:
        return [whole_number(part, maximum=MAX_UPLOAD_BYTES) for part in value.split(",")]
    except ValueError:
        return None


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
        end_line = row.get("end_line")
        if result is None:
            rows.append(PreviewRow(row["line"], key, "error", row["errors"], end_line=end_line))
        else:
            rows.append(
                PreviewRow(
                    row["line"],
                    key,
                    ACTIONS[str(result.status)],
                    [e.as_dict() for e in result.errors],
                    result.changed,
                    end_line,
                )
            )
    counts = {action: 0 for action in ("add", "change", "unchanged", "error")}
    for row in rows:
        counts[row.action] += 1
    return Preview(rows, counts, *_blank_lines(upload.file_format, rows))


def _blank_lines(file_format: str, rows: list[PreviewRow]) -> tuple[list[int], int]:
    """The first few and the number of CSV lines between the header and the last row
    that no row covers: blank ones, which the reader skips (every other line belongs
    to a row)."""
    if file_format != "csv":
        return [], 0
    first: list[int] = []
    count, covered_to = 0, 1
    for row in rows:
        if row.line > covered_to + 1:
            first.extend(range(covered_to + 1, min(row.line, covered_to + 1 + MAX_NAMED_LINES)))
            count += row.line - covered_to - 1
        covered_to = max(covered_to, row.end_line or row.line)
    return first[:MAX_NAMED_LINES], count

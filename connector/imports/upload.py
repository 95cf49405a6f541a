"""Files of occurrences (JSON lines or CSV) turned into track items with their line
numbers, the preview of what sending them would do, and sending them.

The file is read like a catalog file (connector/sources/upload.py, whose decoding
and CSV quote scanning are reused): a file that cannot be read as a whole (not
UTF-8, a wrong CSV header, too large) is refused with a message; a line that cannot
be read on its own (broken JSON, a quote that never closes, the wrong number of
cells) is an error row with its line and the reason, and the other lines are read
on their own. What each readable row would become (accepted, refused with the field
and the reason, not mapped, counted) is `occurrences_check`'s answer, asked each
time the preview is shown: the catalog, metrics and settings may change between an
upload and its application. Applying sends the readable rows through
`occurrences_ingest`, exactly as `POST /api/v1/track` would.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from connector.imports.ingest import (
    ACCEPTED,
    COUNTED,
    MAX_BATCH,
    NOT_MAPPED,
    REFUSED,
    occurrences_check,
    occurrences_ingest,
)
from connector.imports.models import OccurrenceUpload
from connector.sources.models import PropertyType, SourceEvent
from connector.sources.upload import (
    MAX_UPLOAD_BYTES,
    UploadRejected,
    _decode,
    _storable,
    csv_records,
    posted_lines,
    read_csv_header,
)
from tenants.scope import current_tenant_or_none

if TYPE_CHECKING:
    from tenants.models import User

__all__ = ["MAX_UPLOAD_BYTES", "UploadRejected", "posted_lines"]

TOO_LARGE = (
    f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB. "
    "Split the occurrences into smaller files and upload them one after the other."
)
MAX_ROWS = 50_000
TOO_MANY = f"The file has more than {MAX_ROWS:,} occurrences. Split it into smaller files."
MAX_SHOWN_ROWS = 20  # of each kind, on the preview
MAX_NAMED_LINES = 6
ERROR = "error"  # a row that cannot be read: it is never sent
KINDS = (ACCEPTED, REFUSED, NOT_MAPPED, COUNTED, ERROR)
SECTIONS = (
    (ERROR, "Lines that cannot be read", ""),
    (REFUSED, "Refused", ""),
    (NOT_MAPPED, "Not mapped", "Counted, not sent: no metric in LaunchDarkly measures the event."),
    (COUNTED, "Counted, not sent", "Not in the catalog; the settings count such events."),
    (ACCEPTED, "Accepted", "To be sent to LaunchDarkly."),
)
CSV_EXAMPLE = (
    "event,timestamp,value,user_id,account_id,prop.plan\n"
    "signup,2026-01-31T12:00:00Z,,u-1,acme,pro\n"
    "load_time,1769860800000,812.5,u-2,,"
)
JSONL_EXAMPLE = (
    '{"event": "signup", "timestamp": "2026-01-31T12:00:00Z", "contexts": {"user_id": "u-1"}}\n'
    '{"event": "load_time", "value": 812.5, "contexts": {"user_id": "u-2", "account_id": "acme"}}'
)
CSV_NAMED_COLUMNS = ("event", "timestamp", "value")
PROPERTY_PREFIX = "prop."
_UNIX_MS = re.compile(r"[0-9]+")


def _row(line: int, occurrence: dict | None, errors: list[dict] | None = None) -> dict:
    return {"line": line, "occurrence": occurrence, "errors": errors or []}


def _error(line: int, reason: str, field: str = "") -> dict:
    return _row(line, None, [{"field": field, "reason": reason}])


# --- JSON lines ---------------------------------------------------------------------


def _parse_json_lines(text: str) -> list[dict]:
    rows: list[dict] = []
    # Split on newlines only: str.splitlines would also split on characters a JSON
    # string may hold raw (U+2028), and count lines differently from an editor.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        if len(rows) >= MAX_ROWS:
            raise UploadRejected(TOO_MANY)
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append(_error(number, f"is not valid JSON: {exc.msg} at column {exc.colno}"))
            continue
        except (ValueError, RecursionError):
            rows.append(_error(number, "is not valid JSON (too deeply nested)"))
            continue
        if not isinstance(value, dict):
            rows.append(_error(number, "must be one occurrence, a JSON object, per line"))
            continue
        rows.append(_row(number, value))
    return rows


# --- CSV ----------------------------------------------------------------------------


def _number(cell: str) -> int | float | None:
    """The number a cell holds, None if it holds none (then it stays text)."""
    text = cell.strip()
    if _UNIX_MS.fullmatch(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _column_name(cell: str) -> str:
    lowered = cell.lower()
    if lowered in CSV_NAMED_COLUMNS:
        return lowered
    if lowered.startswith(PROPERTY_PREFIX):
        return PROPERTY_PREFIX + cell[len(PROPERTY_PREFIX) :]
    return cell


def _header(first_line: str) -> list[str]:
    # Identity names are the source's own (user_id, account_id): kept as written.
    columns = read_csv_header(first_line, example=CSV_EXAMPLE.splitlines()[0])
    named = [_column_name(c) for c in columns]
    problems = []
    repeated = sorted({c for c in named if named.count(c) > 1})
    if repeated:
        problems.append("repeated columns: " + ", ".join(repr(c) for c in repeated))
    if "" in named:
        problems.append(f"column {named.index('') + 1} has no name")
    if any(c == PROPERTY_PREFIX for c in named):
        problems.append(f"a '{PROPERTY_PREFIX}' column needs a property name after the dot")
    if "event" not in named:
        problems.append("no 'event' column")
    if problems:
        raise UploadRejected(
            f"The CSV header is wrong ({'; '.join(problems)}). The first line must name an "
            "'event' column, optionally 'timestamp', 'value' and 'prop.<name>' columns for "
            "properties; every other column is an identity whose cells are context keys. "
            f"For example: {CSV_EXAMPLE.splitlines()[0]}",
            [(1, first_line)],
        )
    return named


def _occurrence_of(
    columns: list[str], cells: list[str], declared: dict[str, dict[str, str]]
) -> dict[str, Any]:
    occurrence: dict[str, Any] = {}
    contexts: dict[str, str] = {}
    properties: dict[str, Any] = {}
    for column, cell in zip(columns, cells, strict=True):
        if cell == "":
            continue  # an identity the row does not have, a property it does not set
        if column == "event":
            occurrence["event"] = cell.strip()
        elif column in ("timestamp", "value"):
            # Text that is not a number stays text: the check then refuses it with its
            # reason ("value must be a number"), or reads it as an ISO 8601 date-time.
            number = _number(cell)
            occurrence[column] = cell.strip() if number is None else number
        elif column.startswith(PROPERTY_PREFIX):
            name = column[len(PROPERTY_PREFIX) :]
            kind = declared.get(occurrence.get("event", ""), {}).get(name, "")
            properties[name] = _cell_value(cell, kind)
        else:
            contexts[column] = cell.strip()
    occurrence["contexts"] = contexts
    if properties:
        occurrence["properties"] = properties
    return occurrence


def _cell_value(cell: str, kind: str) -> Any:
    """A CSV cell has no type: the catalog's declared type of the property decides (a
    string filter must meet text, a boolean one true or false). Undeclared, a cell that
    reads as a number is taken as one, so a value property (prop.duration) counts."""
    if kind == PropertyType.STRING:
        return cell
    if kind == PropertyType.BOOLEAN and cell.strip().lower() in ("true", "false"):
        return cell.strip().lower() == "true"
    number = _number(cell)
    return cell if number is None else number


def _declared_properties(columns: list[str]) -> dict[str, dict[str, str]]:
    """The catalog's declared property types of the file's events (in one query), or
    nothing outside a workspace (parsing alone, as in tests)."""
    if current_tenant_or_none() is None or not any(c.startswith(PROPERTY_PREFIX) for c in columns):
        return {}
    return dict(SourceEvent.objects.exclude(properties={}).values_list("key", "properties"))


def _parse_csv(text: str) -> list[dict]:
    lines = io.StringIO(text, newline="").readlines()
    columns = _header(lines[0].rstrip("\r\n"))
    declared = _declared_properties(columns)
    rows: list[dict] = []
    for record in csv_records(lines, columns):
        if record.unreadable is not None:
            # The catalog's error row, with this file's name for what a row holds.
            rows.append(_row(record.unreadable["line"], None, record.unreadable["errors"]))
            if "end_line" in record.unreadable:
                rows[-1]["end_line"] = record.unreadable["end_line"]
            continue
        if len(rows) >= MAX_ROWS:
            raise UploadRejected(TOO_MANY)
        cells = record.cells
        if len(cells) != len(columns):
            rows.append(
                _error(record.line, f"has {len(cells)} cells; the header has {len(columns)}")
            )
            continue
        row = _row(record.line, _occurrence_of(columns, cells, declared))
        if record.end_line is not None:
            row["end_line"] = record.end_line
        rows.append(row)
    return rows


# --- Both ---------------------------------------------------------------------------


def parse_upload(*, filename: str, data: bytes) -> tuple[str, list[dict]]:
    """(format, rows) of a file of occurrences, or `UploadRejected`."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadRejected(TOO_LARGE)
    text = _decode(data)
    if not text.strip():
        raise UploadRejected("The file is empty.")
    lowered = filename.lower()
    if lowered.endswith((".jsonl", ".ndjson", ".json")) or (
        not lowered.endswith(".csv") and text.lstrip()[:1] == "{"
    ):
        file_format, rows = "jsonl", _parse_json_lines(text)
    else:
        file_format, rows = "csv", _parse_csv(text)
    if not rows:
        raise UploadRejected("The file holds no occurrences.")
    for row in rows:
        # Rows are stored before they are checked, and PostgreSQL's jsonb refuses NUL
        # and lone surrogates (JSON escapes can carry both).
        if row["occurrence"] is not None and not _storable(row["occurrence"]):
            row["occurrence"] = None
            row["errors"].append(
                {"field": "", "reason": "must be valid Unicode text without NUL characters"}
            )
    return file_format, rows


def upload_create(
    *, actor: User, filename: str, file_format: str, rows: list[dict]
) -> OccurrenceUpload:
    return OccurrenceUpload.objects.create(
        filename=filename[:200], file_format=file_format, rows=rows, created_by=actor
    )


def _unreadable(row: dict) -> bool:
    return row["occurrence"] is None or bool(row["errors"])


def _readable(upload: OccurrenceUpload) -> list[dict]:
    return [row for row in upload.rows if not _unreadable(row)]


def _listed(labels: list[str]) -> str:
    """ "3", "3 and 5", "3, 7 and 12", or the first few "and 38 more"."""
    if len(labels) > MAX_NAMED_LINES:
        shown = MAX_NAMED_LINES - 1
        return f"{', '.join(labels[:shown])} and {len(labels) - shown} more"
    if len(labels) == 1:
        return labels[0]
    return f"{', '.join(labels[:-1])} and {labels[-1]}"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


@dataclass
class PreviewRow:
    line: int
    event: str | None
    kind: str  # accepted | refused | not_mapped | counted | error
    errors: list[dict] = field(default_factory=list)


@dataclass
class Preview:
    """What sending the file would do now. While rows cannot be read, the file is
    sent only by naming their lines to skip (`skip_value`), as for catalog files."""

    counts: dict[str, int]
    shown: dict[str, list[PreviewRow]]  # the first rows of each kind
    error_lines: list[int]
    sendable: int  # the rows that can be read, whatever the check says of them

    @property
    def sections(self) -> list[dict[str, Any]]:
        """The kinds the file has, problems first, each with its first rows."""
        return [
            {
                "kind": kind,
                "title": title,
                "note": note,
                "count": self.counts[kind],
                "rows": self.shown[kind],
            }
            for kind, title, note in SECTIONS
            if self.counts.get(kind)
        ]

    @property
    def can_skip(self) -> bool:
        return bool(self.error_lines) and self.sendable > 0

    @property
    def skip_value(self) -> str:
        return ",".join(str(line) for line in self.error_lines)

    @property
    def skipped_phrase(self) -> str:
        labels = [str(line) for line in self.error_lines]
        return f"line{'' if len(labels) == 1 else 's'} {_listed(labels)}"

    @property
    def skip_label(self) -> str:
        return f"Apply the {_plural(self.sendable, 'valid row')}, skipping {self.skipped_phrase}"

    @property
    def blocked_text(self) -> str:
        count = len(self.error_lines)
        if not count:
            return ""
        if count == 1:
            return "1 line cannot be read: fix it and upload again."
        return f"{count:,} lines cannot be read: fix them and upload again."

    @property
    def refusal(self) -> str:
        """The message of an apply without the explicit choice to skip the errors."""
        count = len(self.error_lines)
        which = f"{_plural(count, 'line')} cannot be read ({self.skipped_phrase})"
        if not self.can_skip:
            return f"Nothing was sent: {which}, and no other line can be. Fix the file."
        return f"Nothing was sent: {which}. Fix the file, or choose “{self.skip_label}”."


def preview(upload: OccurrenceUpload) -> Preview:
    """What sending the upload's readable rows would answer now. Stores nothing."""
    readable = _readable(upload)
    results = occurrences_check(items=[row["occurrence"] for row in readable])
    outcome = {id(row): result for row, result in zip(readable, results, strict=True)}
    counts = dict.fromkeys(KINDS, 0)
    shown: dict[str, list[PreviewRow]] = {kind: [] for kind in KINDS}
    error_lines: list[int] = []
    for row in upload.rows:
        result = outcome.get(id(row))
        kind = ERROR if result is None else result.status
        counts[kind] += 1
        if kind == ERROR:
            error_lines.append(row["line"])
        if len(shown[kind]) < MAX_SHOWN_ROWS:
            event = (row["occurrence"] or {}).get("event")
            errors = row["errors"] if result is None else result.errors
            shown[kind].append(
                PreviewRow(row["line"], event if isinstance(event, str) else None, kind, errors)
            )
    return Preview(counts, shown, error_lines, len(readable))


class UploadAlreadyApplied(Exception):
    """The file was sent before; sending it again would count its occurrences twice."""


class UploadHasErrors(Exception):
    """Rows cannot be read, and the lines to skip were not named (or not those)."""


@dataclass
class UploadApplied:
    counts: dict[str, int]
    skipped: str  # "Skipped lines 3 and 7, which cannot be read.", or ""

    @property
    def message(self) -> str:
        c = self.counts
        parts = [
            f"{_plural(c[ACCEPTED], 'occurrence')} accepted, {c[REFUSED]:,} refused, "
            f"{c[NOT_MAPPED]:,} not mapped (no metric in LaunchDarkly measures the event)"
            + (f", {c[COUNTED]:,} counted without sending" if c[COUNTED] else "")
            + ".",
            self.skipped,
        ]
        return " ".join(part for part in parts if part)


def upload_apply(*, upload: OccurrenceUpload, skip_lines: list[int] | None) -> UploadApplied:
    """Send a previewed upload's readable rows through `occurrences_ingest`, in chunks
    of its batch size, and mark it applied, in one transaction: a second apply (or a
    concurrent one, waiting on the row lock) finds it applied and sends nothing."""
    with transaction.atomic():
        upload = OccurrenceUpload.objects.select_for_update().get(pk=upload.pk)
        if upload.applied_at is not None:
            raise UploadAlreadyApplied(f"{upload.filename} was sent already; nothing was sent.")
        items = [row["occurrence"] for row in _readable(upload)]
        error_lines = [row["line"] for row in upload.rows if _unreadable(row)]
        # Only what the page offered: the lines it named, when something else can be sent.
        checked = Preview({}, {}, error_lines, len(items))
        if error_lines and (not checked.can_skip or list(skip_lines or ()) != error_lines):
            raise UploadHasErrors(checked.refusal)
        counts: Counter[str] = Counter()
        for start in range(0, len(items), MAX_BATCH):
            report = occurrences_ingest(items=items[start : start + MAX_BATCH])
            counts.update(result.status for result in report.results)
        upload.applied_at = timezone.now()
        upload.save(update_fields=["applied_at"])
    skipped = f"Skipped {checked.skipped_phrase}, which cannot be read." if error_lines else ""
    return UploadApplied({kind: counts[kind] for kind in KINDS if kind != ERROR}, skipped)

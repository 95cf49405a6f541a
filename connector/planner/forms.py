"""The picker's forms: the catalog filter (GET) and the choices for a selection (POST)."""

from __future__ import annotations

import re
from collections.abc import Collection
from string import Formatter
from typing import Any

from django import forms

from connector.inputs import ID_MAX, whole_number_or_none
from connector.metrics.models import (
    Aggregation,
    Analysis,
    EventDefault,
    MetricKind,
    SuccessCriteria,
)
from connector.planner.plans import AUTO, Choices
from connector.sources.models import ValueKind
from connector.sources.selectors import ORDERINGS, EventFilter

SEEN_CHOICES = [("", "Any time"), ("1", "Last day"), ("7", "Last 7 days"), ("30", "Last 30 days")]
SEEN_CHOICES += [("90", "Last 90 days")]
ORDER_LABELS = {
    "key": "Key (A to Z)",
    "-key": "Key (Z to A)",
    "name": "Name",
    "-last_seen": "Most recently seen",
    "last_seen": "Least recently seen",
    "-volume": "Most occurrences",
    "volume": "Fewest occurrences",
}
# Rows per page; "" is the default (PAGE_SIZE_DEFAULT), kept out of the links.
PAGE_SIZE_DEFAULT = 50
PER_PAGE_CHOICES = [("25", "25"), ("", str(PAGE_SIZE_DEFAULT)), ("100", "100"), ("200", "200")]
# The query parameters of the picker, in the order they appear in its links.
FILTER_PARAMS = ("q", "value_kind", "seen", "mapped", "removed", "order", "per_page")
# One select per table row: `criterion-<event id>`, "" for the selection's choice.
CRITERION_PREFIX = "criterion-"

# What a name or description template may refer to (plans._render provides these).
PLACEHOLDERS = ("name", "key", "description", "kind")
# LaunchDarkly: tags may contain letters, digits, '.', '_' and '-'.
TAG = re.compile(r"^[A-Za-z0-9._-]+$")
TAG_MAX_LENGTH = 64


class PickerFilterForm(forms.Form):
    """The picker's query string. Bad values are reported and left out, never guessed."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    value_kind = forms.ChoiceField(
        required=False, choices=[("", "Any kind"), *ValueKind.choices], label="Value"
    )
    seen = forms.TypedChoiceField(
        required=False, choices=SEEN_CHOICES, coerce=int, empty_value=None, label="Seen"
    )
    mapped = forms.ChoiceField(
        required=False,
        choices=[("", "Mapped or not"), ("no", "Not mapped yet"), ("yes", "Already mapped")],
        label="Mapped",
    )
    removed = forms.ChoiceField(
        required=False,
        choices=[("", "At the source"), ("yes", "Removed at source"), ("all", "Both")],
        label="Removed",
    )
    order = forms.ChoiceField(
        required=False, choices=[(k, ORDER_LABELS.get(k, k)) for k in ORDERINGS], label="Sort"
    )
    per_page = forms.TypedChoiceField(
        required=False,
        choices=PER_PAGE_CHOICES,
        coerce=int,
        empty_value=None,
        label="Rows per page",
    )

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        if data is not None:
            # Only the picker's own parameters; "page" and the like are not filters.
            data = {k: data.get(k) for k in FILTER_PARAMS if data.get(k) not in (None, "")}
        super().__init__(data if data is not None else {}, **kwargs)

    def values(self) -> dict[str, Any]:
        """The valid parameters (the invalid ones are dropped, with their errors shown)."""
        self.is_valid()
        return {
            name: self.cleaned_data.get(name)
            for name in FILTER_PARAMS
            if name not in self.errors and self.cleaned_data.get(name) not in (None, "")
        }

    def selection_filter(self) -> dict[str, Any]:
        """The filter as a plan stores it: EventFilter's fields plus `mapped`."""
        v = self.values()
        removed = {"yes": True, "all": None}.get(v.get("removed", ""), False)
        event_filter = EventFilter(
            q=v.get("q", ""),
            value_kind=v.get("value_kind", ""),
            seen_within_days=v.get("seen"),
            removed=removed,
            order=v.get("order", "key"),
        )
        mapped = {"yes": True, "no": False}.get(v.get("mapped", ""))
        return {**event_filter.__dict__, "mapped": mapped}

    def query_pairs(self) -> list[tuple[str, str]]:
        return [(name, str(value)) for name, value in self.values().items()]

    def page_size(self) -> int:
        return self.values().get("per_page") or PAGE_SIZE_DEFAULT


def _check_template(template: str) -> None:
    try:
        parts = list(Formatter().parse(template))
    except ValueError as exc:
        raise forms.ValidationError(
            "A '{' or '}' is not paired. Write placeholders like {name}; "
            "double a brace ({{ or }}) to show it as is."
        ) from exc
    allowed = ", ".join("{%s}" % p for p in PLACEHOLDERS)  # noqa: UP031
    for _, field_name, spec, conversion in parts:
        if field_name is None:
            continue
        if field_name not in PLACEHOLDERS:
            shown = "{" + field_name + "}" if field_name else "{}"
            raise forms.ValidationError(f"Unknown placeholder {shown}. Use {allowed}.")
        if spec or conversion:
            raise forms.ValidationError(
                f"Write placeholders plainly, like {{{field_name}}}: no formatting after them."
            )


class PlanChoicesForm(forms.Form):
    """What becomes of the selected events: one set of choices for the whole selection."""

    kind = forms.ChoiceField(
        label="Metric kind",
        initial=AUTO,
        choices=[(AUTO, "Fit each event"), *MetricKind.choices],
        help_text="Fit each event: numeric events become numeric metrics with their unit, "
        "the others conversion (binary) metrics.",
    )
    success_criteria = forms.ChoiceField(
        label="Success criteria",
        choices=SuccessCriteria.choices,
        initial=SuccessCriteria.HIGHER,
        help_text="For every selected event; set another for single events in the table's "
        "Success column.",
    )
    durations_lower = forms.BooleanField(
        label="Lower than baseline for times (ms, s)",
        required=False,
        initial=True,
        help_text="Numeric events measured in time get lower than baseline: inferred from "
        "their unit, since a shorter time is better.",
    )
    aggregation = forms.ChoiceField(
        label="Aggregation per unit (numeric)",
        choices=Aggregation.choices,
        initial=Aggregation.AVERAGE,
        help_text="How a numeric metric combines several values of one unit.",
    )
    analysis = forms.ChoiceField(
        label="Analysis (numeric)", choices=Analysis.choices, initial=Analysis.MEAN
    )
    percentile = forms.IntegerField(
        label="Percentile",
        required=False,
        help_text="For percentile analysis: a whole number from 1 to 99.",
        widget=forms.NumberInput(attrs={"min": 1, "max": 99}),
    )
    event_default = forms.ChoiceField(
        label="Units without events (numeric)",
        initial=AUTO,
        required=False,  # left out (older pages, API-like posts): fit each event
        choices=[
            (AUTO, "Fit each event: left out for times (ms, s), 0 otherwise"),
            *EventDefault.choices,
        ],
        help_text="How a numeric metric counts a unit (say, a user) that sent no event.",
    )
    randomization_units = forms.MultipleChoiceField(
        label="Randomization units",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one randomization unit."},
    )
    tags = forms.CharField(
        label="Tags",
        required=False,
        max_length=1000,
        help_text="Separated by commas or spaces. Letters, digits, '.', '_' and '-'.",
    )
    name_template = forms.CharField(
        label="Name template",
        initial="{name}",
        max_length=200,
        help_text="Placeholders: {name}, {key}, {description}, {kind}.",
    )
    description_template = forms.CharField(
        label="Description template",
        initial="{description}",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(
        self, *args: Any, units: list[str], default_unit: str = "user", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["randomization_units"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(unit, unit) for unit in units]
        # The project's default unit (experimentation settings), as LaunchDarkly's own
        # experiments would use.
        field.initial = [default_unit] if default_unit in units else units[:1]
        field.help_text = (
            "The units registered in the project's experimentation settings: LaunchDarkly "
            "refuses metrics with others."
        )
        # Each field says what it is for; the browser shows the percentile only when
        # it applies (picker.js), the server checks it regardless.
        self.fields["percentile"].widget.attrs["data-show-when-analysis"] = Analysis.PERCENTILE

    def clean_percentile(self) -> int | None:
        value = self.cleaned_data.get("percentile")
        if value is not None and not 1 <= value <= 99:
            raise forms.ValidationError("A percentile is a whole number from 1 to 99.")
        return value

    def clean_tags(self) -> list[str]:
        tags = [tag for tag in re.split(r"[\s,]+", self.cleaned_data.get("tags", "")) if tag]
        bad = [tag for tag in tags if not TAG.match(tag)]
        if bad:
            raise forms.ValidationError(
                "LaunchDarkly refuses these tags: %(bad)s. Tags may contain only letters, "
                "digits, '.', '_' and '-'.",
                params={"bad": ", ".join(bad)},
            )
        long = [tag for tag in tags if len(tag) > TAG_MAX_LENGTH]
        if long:
            raise forms.ValidationError(
                f"Tags may be at most {TAG_MAX_LENGTH} characters: {', '.join(long)}."
            )
        return sorted(set(tags))

    def clean_name_template(self) -> str:
        template = self.cleaned_data["name_template"]
        _check_template(template)
        return template

    def clean_description_template(self) -> str:
        template = self.cleaned_data.get("description_template", "")
        _check_template(template)
        return template

    def row_criteria(self) -> dict[int, str]:
        """The per-event criteria as sent (valid ones only), to show them again."""
        return {
            event_id: value
            for event_id, value in self._row_values().items()
            if event_id is not None and value in SuccessCriteria.values
        }

    def _row_values(self) -> dict[int | None, str]:
        if not self.is_bound:
            return {}
        values: dict[int | None, str] = {}
        for name in self.data:
            if name.startswith(CRITERION_PREFIX):
                value = self.data.get(name) or ""
                if value:
                    raw_id = name[len(CRITERION_PREFIX) :]
                    values[whole_number_or_none(raw_id, minimum=1, maximum=ID_MAX)] = value
        return values

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        missing = data.get("analysis") == Analysis.PERCENTILE and data.get("percentile") is None
        if missing and "percentile" not in self.errors:
            self.add_error("percentile", "Percentile analysis needs a percentile (1 to 99).")
        rows = self._row_values()
        bad = sorted({value for value in rows.values() if value not in SuccessCriteria.values})
        if bad:
            self.add_error(
                None,
                "LaunchDarkly knows no success criterion "
                + ", ".join(f"“{value[:40]}”" for value in bad[:5])
                + ": choose higher or lower than baseline in the Success column.",
            )
        if None in rows:
            self.add_error(None, "The table's rows are not valid. Reload the page and try again.")
        data["success_by_event"] = tuple(sorted(self.row_criteria().items()))
        return data

    def choices(self, *, event_ids: Collection[int] | None = None) -> Choices:
        """The choices; per-event criteria only for `event_ids` when given."""
        data = self.cleaned_data
        percentile = data["percentile"] if data["analysis"] == Analysis.PERCENTILE else None
        by_event = data["success_by_event"]
        if event_ids is not None:
            wanted = set(event_ids)
            by_event = tuple(pair for pair in by_event if pair[0] in wanted)
        return Choices(
            kind=data["kind"],
            success_criteria=data["success_criteria"],
            aggregation=data["aggregation"],
            analysis=data["analysis"],
            percentile=percentile,
            randomization_units=tuple(data["randomization_units"]),
            tags=tuple(data["tags"]),
            name_template=data["name_template"],
            description_template=data["description_template"],
            durations_lower=data["durations_lower"],
            success_by_event=by_event,
            event_default=data.get("event_default") or AUTO,
        )

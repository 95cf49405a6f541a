"""The picker's forms: the catalog filter (GET) and the choices for a selection (POST)."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from string import Formatter
from typing import Any

from django import forms

from connector.inputs import ID_MAX, whole_number_or_none
from connector.metrics.filters import FilterRefused, filter_digest, parse_conditions
from connector.metrics.keys import group_key_for
from connector.metrics.models import (
    Aggregation,
    Analysis,
    EventDefault,
    GroupKind,
    MetricConventions,
    MetricKind,
    SuccessCriteria,
)
from connector.planner.plans import AUTO, Choices
from connector.sources.models import SourceEvent, ValueKind
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
PLACEHOLDERS = ("name", "key", "event", "description", "kind", "filter", "variant")
# What the workspace's name template may refer to (MetricConventions).
CONVENTION_PLACEHOLDERS = ("name", "event", "kind", "filter", "variant", "description")
# One text field per filter of a table row: `filter-<event id>`, possibly several.
FILTER_PREFIX = "filter-"
FILTERS_PER_EVENT_MAX = 5
FILTER_MAX_LENGTH = 2000
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


def _check_template(template: str, placeholders: tuple[str, ...] = PLACEHOLDERS) -> None:
    try:
        parts = list(Formatter().parse(template))
    except ValueError as exc:
        raise forms.ValidationError(
            "A '{' or '}' is not paired. Write placeholders like {name}; "
            "double a brace ({{ or }}) to show it as is."
        ) from exc
    allowed = ", ".join("{%s}" % p for p in placeholders)  # noqa: UP031
    for _, field_name, spec, conversion in parts:
        if field_name is None:
            continue
        if field_name not in placeholders:
            shown = "{" + field_name + "}" if field_name else "{}"
            raise forms.ValidationError(f"Unknown placeholder {shown}. Use {allowed}.")
        if spec or conversion:
            raise forms.ValidationError(
                f"Write placeholders plainly, like {{{field_name}}}: no formatting after them."
            )


def _tags(raw: str) -> list[str]:
    """Tags as typed, separated by commas or spaces, checked as LaunchDarkly checks them."""
    tags = [tag for tag in re.split(r"[\s,]+", raw or "") if tag]
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
    metric_set = forms.BooleanField(
        label="Metric set",
        required=False,
        help_text="Conversion rate + count for conversion events; mean + p90 for numeric "
        "events. Takes the place of the metric kind above.",
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
        help_text="Placeholders: {name}, {event}, {kind}, {filter}, {variant}, {description}. "
        "Left as {name}, the workspace's naming convention applies.",
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
        return _tags(self.cleaned_data.get("tags", ""))

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

    def _filter_values(self) -> dict[int | None, list[str]]:
        if not self.is_bound:
            return {}
        values: dict[int | None, list[str]] = {}
        for name in self.data:
            if not name.startswith(FILTER_PREFIX):
                continue
            raw = self.data.getlist(name) if hasattr(self.data, "getlist") else [self.data[name]]
            texts = [" ".join(str(text).split()) for text in raw if str(text).strip()]
            if texts:
                event_id = whole_number_or_none(
                    name[len(FILTER_PREFIX) :], minimum=1, maximum=ID_MAX
                )
                values.setdefault(event_id, []).extend(texts)
        return values

    def row_filters(self) -> dict[int, list[str]]:
        """The filters typed in the table's rows, per event id (blank fields left out),
        to show them again."""
        return {
            event_id: texts
            for event_id, texts in self._filter_values().items()
            if event_id is not None
        }

    def check_filters(
        self, *, events: Mapping[int, SourceEvent], selected: Collection[int] | None
    ) -> tuple[tuple[str, str], ...]:
        """The typed filters as the plan stores them, (event key, conditions); each is
        parsed against its event's properties now, so that a refused one is reported
        in its row (`filter_errors`) with the reason, and nothing is saved.
        `selected` is the selection's event ids (None: every event shown)."""
        self.filter_errors: dict[int, list[str]] = {}
        filtered: list[tuple[str, str]] = []
        values = self._filter_values()
        if any(event_id is None or event_id not in events for event_id in values):
            self.add_error(
                None, "Some filters are for events that no longer exist. Reload the page."
            )
        known = {k: v for k, v in values.items() if k is not None and k in events}
        for event_id, texts in sorted(known.items()):
            event, errors, digests = events[event_id], [], set()
            if selected is not None and event_id not in selected:
                errors.append(
                    "This event is not selected: select it, or clear its filter "
                    "(a filter adds a metric to a selected event)."
                )
            if len(texts) > FILTERS_PER_EVENT_MAX:
                errors.append(f"At most {FILTERS_PER_EVENT_MAX} filters per event.")
            for text in texts[:FILTERS_PER_EVENT_MAX]:
                if len(text) > FILTER_MAX_LENGTH:
                    errors.append(f"A filter may be at most {FILTER_MAX_LENGTH} characters.")
                    continue
                try:
                    conditions = parse_conditions(text, event.properties or {})
                except FilterRefused as refused:
                    errors.append(f"Filter refused: {refused}")
                    continue
                if not conditions:
                    errors.append(f"“{text[:80]}” holds no condition, like “plan = pro”.")
                elif (digest := filter_digest(conditions)) in digests:
                    errors.append(f"“{text[:80]}” repeats another filter of this event.")
                else:
                    digests.add(digest)
                    filtered.append((event.key, text))
            if errors:
                self.filter_errors[event_id] = errors
        if self.filter_errors:
            self.add_error(
                None,
                "Some filters cannot be used: each marked event says why. Nothing was saved.",
            )
        return tuple(filtered)

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

    def choices(
        self,
        *,
        event_ids: Collection[int] | None = None,
        filtered: tuple[tuple[str, str], ...] = (),
    ) -> Choices:
        """The choices; per-event criteria only for `event_ids` when given, and the
        filters as `check_filters` returned them."""
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
            metric_set=data.get("metric_set", False),
            filtered=filtered,
        )


# --- metric groups -------------------------------------------------------------------

# The builder's ordered steps post as parallel lists, one entry per step, in order.
STEP_FIELDS = ("step_event", "step_filter", "step_name")
STEPS_MAX = 20
GROUP_MEMBERS_FROM = [
    ("selection", "Metrics I choose"),
    ("tag", "Every metric with a tag"),
]


@dataclass
class FunnelStep:
    """One step of a funnel as the builder shows it: the event whose conversion
    (binary) metric is the step, an optional filter, and the step's name in the group."""

    event: str = ""
    filter: str = ""
    name: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def blank(self) -> bool:
        return not (self.event or self.filter or self.name)

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"event": self.event, "kind": MetricKind.BINARY}
        if self.filter:
            spec["filter"] = self.filter
        if self.name:
            spec["name"] = self.name
        return spec

    @classmethod
    def from_spec(cls, member: Any) -> FunnelStep:
        if isinstance(member, dict) and member.get("event"):
            return cls(
                str(member["event"]), str(member.get("filter") or ""), str(member.get("name") or "")
            )
        # A member named by metric key (a file's): shown by key, kept as it is.
        key = member.get("key") if isinstance(member, dict) else member
        return cls(name=str(key or ""), errors=[f"Named by metric key {key}: edit it in its file."])


def steps_from_post(data: Any) -> list[FunnelStep]:
    lists = [data.getlist(name) if hasattr(data, "getlist") else [] for name in STEP_FIELDS]
    count = min(max((len(values) for values in lists), default=0), STEPS_MAX)
    steps = []
    for i in range(count):
        event, text, name = (
            " ".join(str(values[i]).split()) if i < len(values) else "" for values in lists
        )
        steps.append(FunnelStep(event, text, name[:200]))
    return steps


def steps_moved(steps: list[FunnelStep], op: str) -> list[FunnelStep]:
    """The steps after one of the builder's buttons: add, or up/down/remove-<index>."""
    steps = list(steps)
    if op == "add":
        if len(steps) < STEPS_MAX:
            steps.append(FunnelStep())
        return steps
    verb, _, raw = op.partition("-")
    index = whole_number_or_none(raw, minimum=0, maximum=len(steps) - 1) if steps else None
    if index is None:
        return steps
    if verb == "remove":
        del steps[index]
    elif verb == "up" and index > 0:
        steps[index - 1], steps[index] = steps[index], steps[index - 1]
    elif verb == "down" and index < len(steps) - 1:
        steps[index + 1], steps[index] = steps[index], steps[index + 1]
    return steps


class GroupForm(forms.Form):
    """A metric group of a plan: a funnel of ordered steps, or a standard group of
    chosen metrics or of every metric with a tag. The kind is fixed once chosen:
    LaunchDarkly cannot change a group's kind."""

    kind = forms.ChoiceField(choices=GroupKind.choices, widget=forms.HiddenInput)
    name = forms.CharField(label="Name", max_length=200)
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    tags = forms.CharField(
        label="Tags",
        required=False,
        max_length=1000,
        help_text="Separated by commas or spaces; the workspace's tags are added.",
    )
    members_from = forms.ChoiceField(
        label="Members",
        choices=GROUP_MEMBERS_FROM,
        initial="selection",
        required=False,
        widget=forms.RadioSelect,
    )
    tag = forms.CharField(
        label="Tag",
        required=False,
        max_length=TAG_MAX_LENGTH,
        help_text="Every metric of the plan or the workspace that carries it, now and at "
        "each later plan.",
    )
    metrics = forms.MultipleChoiceField(
        label="Metrics", required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(
        self,
        *args: Any,
        events: Mapping[str, SourceEvent],
        metric_choices: list[tuple[str, str]],
        taken_keys: Collection[str] = (),
        steps: list[FunnelStep] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.events = events
        self.taken_keys = set(taken_keys)
        field = self.fields["metrics"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = metric_choices
        self.steps = steps if steps is not None else []

    @property
    def group_kind(self) -> str:
        kind = self["kind"].value()
        return kind if kind in GroupKind.values else GroupKind.FUNNEL

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if group_key_for(name) in self.taken_keys:
            raise forms.ValidationError(
                f"Another group of this plan has this name (key {group_key_for(name)}); "
                "choose another."
            )
        return name

    def clean_tags(self) -> list[str]:
        return _tags(self.cleaned_data.get("tags", ""))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == GroupKind.FUNNEL:
            self._check_steps()
        elif data.get("kind") == GroupKind.STANDARD:
            if data.get("members_from") == "tag":
                tag = (data.get("tag") or "").strip()
                if not tag:
                    self.add_error("tag", "Name the tag whose metrics make the group.")
                elif not TAG.match(tag):
                    self.add_error("tag", "A tag holds only letters, digits, '.', '_' and '-'.")
                data["tag"] = tag
            elif len(data.get("metrics") or []) < 2:
                self.add_error(
                    "metrics", "Choose at least two metrics: a group reads them together."
                )
        return data

    def _check_steps(self) -> None:
        self.steps = [step for step in self.steps if not step.blank]
        seen: dict[tuple[str, str], int] = {}
        for number, step in enumerate(self.steps, start=1):
            event = self.events.get(step.event)
            if event is None:
                if not step.errors:
                    step.errors.append("Choose one of the plan's events.")
                continue
            digest = ""
            if step.filter:
                try:
                    conditions = parse_conditions(step.filter, event.properties or {})
                except FilterRefused as refused:
                    step.errors.append(f"Filter refused: {refused}")
                    continue
                digest = filter_digest(conditions)
            if (earlier := seen.get((step.event, digest))) is not None:
                step.errors.append(
                    f"The same metric as step {earlier}: a funnel lists each metric once."
                )
            seen.setdefault((step.event, digest), number)
        if len(self.steps) < 2:
            self.add_error(None, "A funnel needs at least two steps, in the order units go.")
        if any(step.errors for step in self.steps):
            self.add_error(None, "Some steps need correcting: each says why.")

    def spec(self, *, previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """The group as the plan stores it (group_plans reads the same JSON)."""
        data = self.cleaned_data
        spec: dict[str, Any] = {"name": data["name"], "kind": data["kind"]}
        if previous and previous.get("key"):
            spec["key"] = previous["key"]  # a key given by a file stays the group's key
        if data.get("description"):
            spec["description"] = data["description"]
        if data.get("tags"):
            spec["tags"] = data["tags"]
        if data["kind"] == GroupKind.FUNNEL:
            spec["metrics"] = [step.to_spec() for step in self.steps]
        elif data.get("members_from") == "tag":
            spec["tag"] = data["tag"]
            spec["metrics"] = []
        else:
            spec["metrics"] = list(data["metrics"])
        return spec


def group_initial(spec: dict[str, Any]) -> dict[str, Any]:
    """The builder's fields for a saved group spec."""
    return {
        "kind": spec.get("kind") or GroupKind.STANDARD,
        "name": spec.get("name") or "",
        "description": spec.get("description") or "",
        "tags": " ".join(spec.get("tags") or []),
        "members_from": "tag" if spec.get("tag") else "selection",
        "tag": spec.get("tag") or "",
        "metrics": [m for m in spec.get("metrics") or [] if isinstance(m, str)],
    }


def group_initial_from_post(data: Any) -> dict[str, Any]:
    """The builder's fields as posted, to show them again after a step button (not
    checked yet: only saving checks them)."""
    initial = {name: data.get(name, "") for name in GroupForm.base_fields if name != "metrics"}
    initial["metrics"] = data.getlist("metrics") if hasattr(data, "getlist") else []
    return initial


# --- the workspace's conventions -----------------------------------------------------


class ConventionsForm(forms.ModelForm):
    """How every metric and group the workspace plans is named and tagged."""

    tags = forms.CharField(
        label="Tags on every metric and group",
        required=False,
        max_length=1000,
        help_text="Separated by commas or spaces. Letters, digits, '.', '_' and '-'. "
        "The connector's own tag is always added.",
    )

    class Meta:
        model = MetricConventions
        fields = ["name_template", "tags"]
        labels = {"name_template": "Name template"}
        help_texts = {
            "name_template": "Placeholders: {name} (the event's name), {event} (its key), "
            "{kind} (Conversion (binary), Conversion (count), Numeric), {filter} (the "
            "filter's conditions), {variant} (p90 for a set's percentile), {description}. "
            "When the template leaves out {kind}/{variant} or {filter}, a set's or a "
            "filter's part is added at the end, so that names stay apart.",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["tags"] = " ".join(self.instance.tags or [])

    def clean_name_template(self) -> str:
        template = " ".join(self.cleaned_data["name_template"].split())
        _check_template(template, CONVENTION_PLACEHOLDERS)
        fields = {name for _, name, _, _ in Formatter().parse(template) if name}
        if not fields & {"name", "event"}:
            raise forms.ValidationError(
                "Name the event with {name} or {event}: without either, the metrics of "
                "different events would all have the same name."
            )
        return template

    def clean_tags(self) -> list[str]:
        return _tags(self.cleaned_data.get("tags", ""))

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.db.models import Max

from connector.imports.models import ImportCursor, ImportSettings, Occurrence
from connector.sources.models import SourceEvent
from connector.sources.validation import VALUE_PROPERTY_MAX_LENGTH, value_property_problems
from tenants.scope import current_tenant

IDENTITY_LINE = re.compile(r"^\s*([^=\s][^=]*?)\s*(?:=|->|→)\s*([A-Za-z0-9._-]+)\s*$")


class ImportSettingsForm(forms.ModelForm):
    environments = forms.MultipleChoiceField(
        label="Environments that receive events",
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Each occurrence goes to every environment ticked here.",
    )
    identities = forms.CharField(
        label="Identities → context kinds",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "user_id = user\naccount_id = organization"}
        ),
        help_text="One per line, “identity = context kind”. The keys must be exactly what "
        "your LaunchDarkly SDKs evaluate for that kind. An identity not listed is taken "
        "to be a context kind itself.",
    )

    class Meta:
        model = ImportSettings
        fields = ["unknown_events", "max_age_hours"]
        labels = {
            "unknown_events": "Occurrences of events not in the catalog",
            "max_age_hours": "Refuse occurrences older than (hours)",
        }
        help_texts = {
            "max_age_hours": "LaunchDarkly counts an event only if it arrives while an "
            "experiment iteration runs: older ones are refused, not sent to be ignored.",
        }

    def __init__(
        self, *args: Any, environments: list[str], kinds: list[str], **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        chosen = list(self.instance.environments or [])
        # What is chosen stays offered even when LaunchDarkly cannot be asked now.
        offered = list(dict.fromkeys([*environments, *chosen]))
        env_field = self.fields["environments"]
        assert isinstance(env_field, forms.MultipleChoiceField)
        env_field.choices = [(key, key) for key in offered]
        env_field.initial = chosen
        self.kinds = kinds
        self.fields["identities"].initial = "\n".join(
            f"{name} = {kind}" for name, kind in (self.instance.identity_map or {}).items()
        )
        self.fields["max_age_hours"].widget.attrs.update({"min": 1, "max": 24 * 30})

    def clean_max_age_hours(self) -> int:
        value = self.cleaned_data["max_age_hours"]
        if not 1 <= value <= 24 * 30:
            raise forms.ValidationError("Between 1 and 720 hours (30 days).")
        return value

    def clean_identities(self) -> dict[str, str]:
        mapping: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data.get("identities", "").splitlines(), 1):
            if not line.strip():
                continue
            match = IDENTITY_LINE.match(line)
            if match is None:
                raise forms.ValidationError(
                    f"Line {number} is not “identity = context kind”: {line.strip()[:80]}"
                )
            name, kind = match.groups()
            if self.kinds and kind not in self.kinds:
                raise forms.ValidationError(
                    f"Line {number}: {kind} is not a context kind of the LaunchDarkly "
                    f"project ({', '.join(self.kinds)})."
                )
            if name in mapping:
                raise forms.ValidationError(f"Line {number}: {name} is mapped twice.")
            mapping[name] = kind
        return mapping

    def save(self, commit: bool = True) -> ImportSettings:
        row = super().save(commit=False)
        before = set(row.environments or [])
        row.environments = list(self.cleaned_data["environments"])
        row.identity_map = self.cleaned_data["identities"]
        row.save()
        # A newly chosen environment receives what arrives from now on, not the
        # buffer's backlog (which LaunchDarkly would mostly ignore as too late).
        newest = Occurrence.objects.aggregate(last=Max("id"))["last"] or 0
        for environment in set(row.environments) - before:
            ImportCursor.objects.get_or_create(
                tenant=current_tenant(),
                environment_key=environment,
                defaults={"batched_through_id": newest},
            )
        return row


class ValuePropertiesForm(forms.Form):
    """The value property of each numeric event shown: the occurrence property its
    value is read from when an occurrence sends no `value`. One field per event,
    named by its primary key; saved through `sources.services.value_properties_set`."""

    prefix = "values"

    def __init__(self, *args: Any, events: list[SourceEvent], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events = events
        for event in events:
            self.fields[str(event.pk)] = forms.CharField(
                label=event.key,
                required=False,
                strip=False,  # the name must match the occurrence's property exactly
                initial=event.value_property,
                # The length is checked in `clean`, with the API's words.
                widget=forms.TextInput(
                    attrs={"maxlength": VALUE_PROPERTY_MAX_LENGTH, "placeholder": "e.g. amount"}
                ),
            )

    def rows(self) -> list[tuple[SourceEvent, forms.BoundField]]:
        return [(event, self[str(event.pk)]) for event in self.events]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, value in list(cleaned.items()):  # add_error takes the field out
            for problem in value_property_problems(value):
                self.add_error(name, f"The value property {problem}.")
        return cleaned

    def values(self) -> dict[int, str]:
        """The posted values by event primary key. A field the post does not carry is
        left out: the list may have changed since the page was shown, and an event
        that was not on it must not lose its value property."""
        return {
            int(name): value
            for name, value in self.cleaned_data.items()
            if self.add_prefix(name) in self.data
        }

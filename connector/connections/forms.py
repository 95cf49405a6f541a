from django import forms

from connector.launchdarkly.instances import (
    DocNote,
    availability_notes,
    connectable_choices,
    get_instance,
)


class InstanceForm(forms.Form):
    # A callable: the development override is read when the form is built, not at import.
    instance = forms.ChoiceField(
        choices=connectable_choices, initial="commercial", label="LaunchDarkly instance"
    )

    @property
    def single_choice(self) -> str:
        """The label of the only instance on offer (the local sandbox), if there is one."""
        choices = connectable_choices()
        return str(choices[0][1]) if len(choices) == 1 else ""

    @property
    def availability(self) -> list[tuple[str, tuple[DocNote, ...]]]:
        """(label, LaunchDarkly's statements) for each instance on offer, shown under
        the chooser: whether Experimentation exists there decides whether the metrics
        are of any use."""
        return [
            (str(label), availability_notes(get_instance(key)))
            for key, label in connectable_choices()
        ]


class ApiTokenForm(InstanceForm):
    token = forms.CharField(
        label="API access token",
        strip=True,
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="A token with the Writer role. It is checked with LaunchDarkly before it is "
        "saved, stored encrypted, and never shown again.",
    )


class ProjectForm(forms.Form):
    project_key = forms.CharField(max_length=140)


class ImportTokenForm(forms.Form):
    token = forms.CharField(
        label="Event import token",
        required=False,
        strip=True,
        max_length=200,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
        help_text="Optional: a dedicated API access token whose role allows importEventData, "
        "as LaunchDarkly recommends for the metric event import. Empty removes it.",
    )

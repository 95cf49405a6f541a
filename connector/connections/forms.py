from django import forms

from connector.launchdarkly.instances import INSTANCE_CHOICES


class InstanceForm(forms.Form):
    instance = forms.ChoiceField(
        choices=INSTANCE_CHOICES, initial="commercial", label="LaunchDarkly instance"
    )


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

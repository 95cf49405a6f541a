from django import forms

from connector.sync.models import SyncSettings


class SyncSettingsForm(forms.ModelForm):
    class Meta:
        model = SyncSettings
        fields = ["drift_policy", "orphan_policy", "notify", "maintainer_id"]
        labels = {
            "maintainer_id": "Maintainer of new metrics (LaunchDarkly member id)",
            "drift_policy": "When a metric is changed or deleted in LaunchDarkly",
            "orphan_policy": "When an event is removed at the source",
            "notify": "Who gets emails about failures and reconnects",
        }

    def clean_maintainer_id(self) -> str:
        value = self.cleaned_data.get("maintainer_id", "").strip()
        if value and not value.isalnum():
            raise forms.ValidationError(
                "A LaunchDarkly member id is letters and digits only, like "
                "569f183514f4432160000007 (Account settings, Members, the member's page)."
            )
        return value

from django import forms

from connector.sync.models import SyncSettings


class SyncSettingsForm(forms.ModelForm):
    class Meta:
        model = SyncSettings
        fields = ["drift_policy", "orphan_policy", "notify"]
        labels = {
            "drift_policy": "When a metric is changed or deleted in LaunchDarkly",
            "orphan_policy": "When an event is removed at the source",
            "notify": "Who gets emails about failures and reconnects",
        }

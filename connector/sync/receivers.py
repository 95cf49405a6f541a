"""The sync engine's answers to news of the connection (connector/connections/signals.py)."""

from django.dispatch import receiver

from connector.connections import signals
from connector.sync import notify, services


@receiver(signals.reconnected, dispatch_uid="sync.resume_after_reconnect")
def resume_after_reconnect(**_) -> int:
    services.sync_resume()  # items paused by a dead token go back in line (after commit)
    return 0


@receiver(signals.target_changed, dispatch_uid="sync.cancel_for_old_target")
def cancel_for_old_target(*, reason: str, **_) -> int:
    return services.sync_target_changed(reason=reason)


@receiver(signals.disconnected, dispatch_uid="sync.cancel_after_disconnect")
def cancel_after_disconnect(*, reason: str, **_) -> int:
    return services.sync_cancel_unfinished(reason=reason)


@receiver(signals.disconnect_would_cancel, dispatch_uid="sync.count_unfinished")
def count_unfinished(**_) -> int:
    return services.sync_unfinished_count()


@receiver(signals.needs_reauth, dispatch_uid="sync.tell_admins_to_reconnect")
def tell_admins_to_reconnect(*, reason: str, **_) -> int:
    notify.notify_needs_reauth(reason=reason)
    return 0

"""News of a workspace's LaunchDarkly connection, for the layers above it.

Connections sit below the sync engine and must not import it; the engine listens
here instead (connector/sync/receivers.py). Each signal is sent inside the
connection's transaction, in the workspace's scope, with `connection` and the other
arguments named; receivers that cancel work return how many items they cancelled.
"""

from typing import Any

from django.dispatch import Signal

# Reconnected to the same account and instance: work paused by a dead token may go on.
reconnected = Signal()
# Now pointing at another account, instance or project (`reason` says which): nothing
# planned for the old place may go to the new one.
target_changed = Signal()
# Disconnected by a person (`reason`): nothing queued may still call LaunchDarkly.
disconnected = Signal()
# Asked, not told: before a person confirms a disconnect, how much queued work it
# would cancel (receivers return a count; nothing changes).
disconnect_would_cancel = Signal()
# LaunchDarkly rejected the credentials (`reason`): a person must reconnect.
needs_reauth = Signal()


def cancelled_by(responses: list[tuple[Any, Any]]) -> int:
    """The number of items the receivers of a signal say they cancelled."""
    return sum(result for _, result in responses if isinstance(result, int))

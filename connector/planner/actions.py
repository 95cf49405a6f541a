"""What a plan does for each metric or metric group."""

from __future__ import annotations


class PlanAction:
    CREATE = "create"
    UPDATE = "update"
    RESTORE = "restore"
    ADOPT = "adopt"
    # A metric made by hand in LaunchDarkly measures the event: a person chooses to
    # adopt it or to create ours alongside, so no twin is ever made without saying so.
    BY_HAND = "by hand"
    UNCHANGED = "unchanged"
    BLOCKED = "blocked"
    # Metrics as code: a managed metric the file no longer names; a group likewise.
    ARCHIVE = "archive"
    DELETE = "delete"
    ORDER = (CREATE, UPDATE, RESTORE, ADOPT, BY_HAND, ARCHIVE, UNCHANGED, BLOCKED)
    SENT = (CREATE, UPDATE, RESTORE, ADOPT, ARCHIVE)
    GROUP_ORDER = (CREATE, UPDATE, DELETE, UNCHANGED, BLOCKED)
    GROUP_SENT = (CREATE, UPDATE, DELETE)

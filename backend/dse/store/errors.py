"""What the store raises. Every failure is a `StoreError`; the API maps each subclass to a status."""

from __future__ import annotations


class StoreError(Exception):
    """A store operation failed; nothing it was about to write was written."""


class NotFound(StoreError):
    """No scenario has this id (never saved, or deleted)."""


class Forbidden(StoreError):
    """The owner token is missing or is not this scenario's."""


class InvalidDocument(StoreError):
    """The document cannot be stored as a scenario; `field` names the culprit ('' for the whole)."""

    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}" if field else reason)


class Unavailable(StoreError):
    """The database refused or failed the operation; retrying may work once the cause is fixed.

    `reason` is a short, safe-to-show classification ("disk full", "read-only", "unreachable",
    "busy", "damaged", "database error"); the message carries the driver's own words (for logs).
    """

    def __init__(self, message: str, reason: str = "database error") -> None:
        self.reason = reason
        super().__init__(message)


class Corrupt(StoreError):
    """The database file is damaged (SQLite's integrity check failed, or it is not a database)."""

    def __init__(self, path: str, finding: str) -> None:
        self.path, self.finding = path, finding
        super().__init__(
            f"the scenario database {path} is damaged ({finding}); refusing to use it. Restore it from a backup, "
            "or move it aside to start with an empty store (SQLite's `.recover` command may save its content)."
        )

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
    """The database could not be reached or stayed locked past the timeout; retrying may work."""

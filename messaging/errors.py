"""The project's own exceptions.

Driver and provider errors are translated into these once, at the boundary
(store/db.py, providers/); the HTTP edge maps them to statuses in one place
(http/problems.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class MessagingError(Exception):
    """Base of every error this service raises on purpose."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One thing wrong with a request: which field (a JSON pointer into the body,
    or a query parameter's name) and why."""

    field: str
    message: str


@dataclass
class InvalidRequest(MessagingError):
    """The request is well-formed JSON but its content is not acceptable."""

    detail: str
    errors: list[FieldError] = field(default_factory=list)
    status: int = 400

    def __str__(self) -> str:
        return self.detail


class DatabaseUnavailable(MessagingError):
    """The database cannot be reached or did not answer in time. Nothing was stored."""


class DatabaseRejected(MessagingError):
    """The database refused a value (a constraint or a data error). Not transient."""


class NotFound(MessagingError):
    """The thing asked for does not exist."""

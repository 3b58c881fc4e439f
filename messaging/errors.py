"""The project's own exceptions.

Driver and provider errors are translated into these once, at the boundary
(store/db.py, providers/); the HTTP edge maps them to statuses in one place
(http/problems.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


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


class ClientGone(MessagingError):
    """The client closed the connection before its request body arrived. Not a
    server error: nothing was stored, and no one is left to answer."""


@dataclass
class BodyNotReceived(MessagingError):
    """A request body that did not arrive in time (408), or that could not be
    waited for because too many requests are already waiting for theirs (503).
    Nothing was stored; the connection is closed."""

    detail: str
    status: int = 408

    def __str__(self) -> str:
        return self.detail


@dataclass
class SignatureRejected(MessagingError):
    """A webhook whose Standard Webhooks signature (signatures.py) is missing,
    malformed, stale or wrong (reason): 401. detail says what was wrong, never
    which secret was tried; challenge is the 401's WWW-Authenticate. Nothing was
    stored, and the database was not asked."""

    reason: str
    detail: str
    challenge: str

    def __str__(self) -> str:
        return self.detail


class DatabaseUnavailable(MessagingError):
    """The database cannot be reached or did not answer in time. Nothing was stored."""


class DatabaseFailed(MessagingError):
    """The database answered with an error we did not foresee (neither an outage
    nor a refusal of the data): a bug, a broken schema, a pooler in the way.
    Nothing was stored; the API answers 503 and logs it as an error. Not retried
    as an outage by the worker: it counts against the work's attempts."""


class DatabaseRejected(MessagingError):
    """The database refused a value (a constraint or a data error). Not transient."""


class NotFound(MessagingError):
    """The thing asked for does not exist."""


@dataclass
class Unauthenticated(MessagingError):
    """A request to a route under API keys came without a key, or with one that
    is unknown or revoked (401, with a Bearer challenge). invalid_key tells the
    two apart for the challenge: RFC 6750's error="invalid_token" is for a key
    that came and was refused."""

    detail: str
    invalid_key: bool = False

    def __str__(self) -> str:
        return self.detail


@dataclass
class Forbidden(MessagingError):
    """A valid API key that lacks the scope the route needs (403)."""

    detail: str
    scope: str

    def __str__(self) -> str:
        return self.detail


class StreamGone(MessagingError):
    """A stream resumed from a position older than the stream's log keeps: the
    events after it are gone (410); the consumer should read the lists again."""


class TooManyStreams(MessagingError):
    """This process serves as many streams as it may (MESSAGING_MAX_STREAMS), or
    is shutting down (503, with Retry-After)."""


class IdempotencyKeyReused(MessagingError):
    """An Idempotency-Key that already names a send came with another request.
    Nothing was stored."""


@dataclass
class ProviderError(MessagingError):
    """A provider did not take a message. providers/ turns every answer and every
    network error of a send into an outcome once, there; these are the outcomes
    that are not an acceptance. They are returned as values by
    ProviderClient.send (a delivery loop matches on them) and can be raised."""

    reason: str

    def __str__(self) -> str:
        return self.reason


@dataclass
class ProviderRetryLater(ProviderError):
    """Not taken this time; the same send may succeed later (429, 5xx, a timeout, a
    refused or broken connection). not_before is the provider's Retry-After as an
    aware UTC time; None leaves the delay to the caller's backoff."""

    not_before: datetime | None = None


@dataclass
class ProviderRejected(ProviderError):
    """The provider refused the message itself (a 4xx such as 400): sending it
    again cannot succeed, so the message has failed."""

    status: int = 400

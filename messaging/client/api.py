"""MessagingClient: the service's API for an aiohttp application, typed, with the
retries a caller would otherwise write around every call.

Sends are retried (503, 429, 502, 504, a lost connection) because each carries an
Idempotency-Key that is the same on every attempt: a send whose answer was lost
is answered again (SendAccepted.replayed) instead of stored twice. Reads are
retried the same way, being reads. Lists are walked to their end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeVar

import aiohttp

from messaging.client import models
from messaging.client.errors import (
    ConnectionFailed,
    MessagingError,
    error_from_response,
)
from messaging.client.models import Conversation, Message, SendAccepted
from messaging.client.retry import Backoff
from messaging.client.stream import CONNECTION_ERRORS, RETRYABLE_STATUSES, EventStream

T = TypeVar("T")


class _Identified(Protocol):
    @property
    def id(self) -> int: ...


Item = TypeVar("Item", bound=_Identified)

# The service's bound on a page: the fewest requests for a whole list.
MAX_PAGE_SIZE = 200
REPLAYED_HEADER = "Idempotent-Replayed"


class MessagingClient:
    """`async with MessagingClient("http://127.0.0.1:8080", api_key=...) as client:`

    One aiohttp.ClientSession carries every request: the client opens its own
    and closes it on exit, or uses the one passed in and leaves it open (its
    owner closes it). `api_key` goes out as `Authorization: Bearer <key>`.

    A call that fails in a way that may pass (429, 502, 503, 504, a connection
    refused, broken or timed out after `request_timeout_s`) is tried again at
    most `max_retries` times, after a full-jittered exponential backoff from
    `backoff_base_s` capped at `backoff_cap_s`, and never sooner than the
    service's Retry-After. A Retry-After longer than `max_retry_after_s` is not
    waited out: the error is raised, carrying it. Then the last answer is raised
    as its ApiError, or ConnectionFailed.

    events() streams follow their own limit, `stream_max_retries` consecutive
    failed connections (None: they reconnect for as long as they are iterated),
    and count a connection silent for `stream_idle_timeout_s` as dead.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        session: aiohttp.ClientSession | None = None,
        max_retries: int = 5,
        backoff_base_s: float = 0.1,
        backoff_cap_s: float = 5.0,
        max_retry_after_s: float = 60.0,
        request_timeout_s: float = 30.0,
        page_size: int = MAX_PAGE_SIZE,
        stream_idle_timeout_s: float = 45.0,
        stream_max_retries: int | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key is not None else {}
        self._session = session
        self._owns_session = session is None
        self._max_retries = max_retries
        self._backoff = Backoff(backoff_base_s, backoff_cap_s)
        self._max_retry_after_s = max_retry_after_s
        self._timeout = aiohttp.ClientTimeout(total=request_timeout_s)
        self._page_size = _checked_page_size(page_size)
        self._stream_idle_timeout_s = stream_idle_timeout_s
        self._stream_max_retries = stream_max_retries
        self._streams: set[EventStream] = set()

    async def __aenter__(self) -> Self:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the event streams still open, and the session if the client made it."""
        for stream in list(self._streams):
            await stream.aclose()
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use `async with MessagingClient(...)`, or pass a session")
        return self._session

    async def send_sms(
        self,
        *,
        from_: str,
        to: str,
        body: str,
        type: Literal["sms", "mms"] = "sms",
        attachments: Sequence[str] | None = None,
        timestamp: datetime | str | None = None,
        idempotency_key: str | None = None,
    ) -> SendAccepted:
        """POST /api/messages/sms. An MMS needs attachments. Without an
        idempotency_key, one is made for this call; pass your own (a 1-256
        character printable ASCII name of this send, e.g. an order id) to make
        the send safe to repeat across calls and restarts of your own."""
        payload = {"from": from_, "to": to, "type": type, "body": body}
        return await self._send("sms", payload, attachments, timestamp, idempotency_key)

    async def send_email(
        self,
        *,
        from_: str,
        to: str,
        body: str,
        attachments: Sequence[str] | None = None,
        timestamp: datetime | str | None = None,
        idempotency_key: str | None = None,
    ) -> SendAccepted:
        """POST /api/messages/email; the rest as send_sms."""
        payload = {"from": from_, "to": to, "body": body}
        return await self._send("email", payload, attachments, timestamp, idempotency_key)

    def conversations(self, *, page_size: int | None = None) -> AsyncIterator[Conversation]:
        """Every conversation, newest activity first, page after page.

        The pages are the service's offset pages: a conversation whose activity
        moves while the walk is under way may be skipped; one is never handed
        out twice."""
        size = _checked_page_size(self._page_size if page_size is None else page_size)
        return self._walk("/api/conversations", models.conversation_page, size)

    def messages(
        self, conversation_id: int, *, page_size: int | None = None
    ) -> AsyncIterator[Message]:
        """Every message of a conversation, oldest first, page after page (NotFound
        for a conversation that does not exist)."""
        size = _checked_page_size(self._page_size if page_size is None else page_size)
        path = f"/api/conversations/{int(conversation_id)}/messages"
        return self._walk(path, models.message_page, size)

    def events(
        self, conversation_id: int | None = None, last_event_id: str | None = None
    ) -> EventStream:
        """The service's events (of one conversation, or all), after
        `last_event_id` or from now; see EventStream. Nothing is requested before
        the first iteration."""
        params = {} if conversation_id is None else {"conversation_id": str(int(conversation_id))}
        stream = EventStream(
            self.session,
            self._url("/api/events"),
            headers=self._headers,
            params=params,
            last_event_id=last_event_id,
            backoff=self._backoff,
            idle_timeout_s=self._stream_idle_timeout_s,
            max_retries=self._stream_max_retries,
            max_retry_after_s=self._max_retry_after_s,
            on_close=self._streams.discard,
        )
        self._streams.add(stream)
        return stream

    async def _send(
        self,
        endpoint: str,
        payload: dict[str, Any],
        attachments: Sequence[str] | None,
        timestamp: datetime | str | None,
        idempotency_key: str | None,
    ) -> SendAccepted:
        # Built once: every attempt must be the same request, or the service
        # answers the key's reuse with 422.
        payload["attachments"] = None if attachments is None else list(attachments)
        payload["timestamp"] = _timestamp(timestamp)
        key = str(uuid.uuid4()) if idempotency_key is None else idempotency_key

        async def accepted(response: aiohttp.ClientResponse) -> SendAccepted:
            replayed = response.headers.get(REPLAYED_HEADER, "").lower() == "true"
            return models.send_accepted(await response.read(), replayed)

        return await self._call(
            "POST",
            f"/api/messages/{endpoint}",
            accepted,
            json=payload,
            headers={"Idempotency-Key": key},
        )

    async def _walk(
        self, path: str, decode: Callable[[bytes], models.Page[Item]], page_size: int
    ) -> AsyncIterator[Item]:
        seen: set[int] = set()
        page = 1
        while True:
            body = await self._call(
                "GET", path, _body, params={"page": str(page), "pageSize": str(page_size)}
            )
            # The whole page is checked before any of it is handed out.
            items = decode(body)
            for item in items.items:
                if item.id not in seen:
                    seen.add(item.id)
                    yield item
            # The service cuts a larger page size to its bound: a page of that
            # many is full, not short.
            size = items.page_size
            if len(items.items) < size or page * size >= items.total:
                return
            page += 1

    async def _call(
        self,
        method: str,
        path: str,
        read: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        retries = 0
        while True:
            failure: MessagingError
            retry_after = None
            try:
                async with self.session.request(
                    method,
                    self._url(path),
                    json=json,
                    params=params,
                    headers={**self._headers, **(headers or {})},
                    timeout=self._timeout,
                ) as response:
                    if response.status < 400:
                        return await read(response)
                    error = await error_from_response(response)
            except CONNECTION_ERRORS as exc:
                failure = ConnectionFailed(f"{method} {path}: {exc!r}")
                failure.__cause__ = exc
            else:
                if response.status not in RETRYABLE_STATUSES:
                    raise error
                failure, retry_after = error, error.retry_after
            retries += 1
            if retries > self._max_retries or (retry_after or 0) > self._max_retry_after_s:
                raise failure
            await asyncio.sleep(self._backoff.delay_s(retries, retry_after))

    def _url(self, path: str) -> str:
        return self._base_url + path


async def _body(response: aiohttp.ClientResponse) -> bytes:
    return await response.read()


def _checked_page_size(size: int) -> int:
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be from 1 to {MAX_PAGE_SIZE}, not {size}")
    return size


def _timestamp(value: datetime | str | None) -> str:
    """RFC 3339 in UTC with a Z, as the service takes it; now (to the second)
    when not given. A naive datetime is refused: its offset would be a guess."""
    if isinstance(value, str):
        return value
    if value is None:
        value = datetime.now(UTC).replace(microsecond=0)
    if value.tzinfo is None:
        raise ValueError("timestamp must be an aware datetime (with its offset)")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")

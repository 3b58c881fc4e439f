"""A typed async client of the messaging API, for aiohttp applications.

    async with MessagingClient("http://127.0.0.1:8080", api_key=key) as client:
        accepted = await client.send_sms(from_="+12016661234", to="+18045551234", body="Hi")
        async for conversation in client.conversations():
            ...
        async for event in client.events(last_event_id=saved):
            ...

It imports nothing of the service: aiohttp, msgspec and the standard library only.

    api.py     MessagingClient: sends, lists, the event stream; retries
    stream.py  EventStream: GET /api/events, reconnecting with Last-Event-ID
    sse.py     the Server-Sent Events parser (pure)
    models.py  the typed answers, decoded by msgspec
    errors.py  the exceptions, problem+json's fields on them
    retry.py   backoff and Retry-After (pure)
"""

from messaging.client.api import MessagingClient
from messaging.client.errors import (
    ApiError,
    BadRequest,
    ConnectionFailed,
    FieldProblem,
    Forbidden,
    MalformedEvent,
    MalformedResponse,
    MessagingError,
    NotFound,
    StreamExpired,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    Unprocessable,
)
from messaging.client.models import (
    Conversation,
    LastMessage,
    Message,
    SendAccepted,
    StreamEvent,
)
from messaging.client.sse import ServerSentEvent, SSEParser
from messaging.client.stream import EventStream

__all__ = [
    "ApiError",
    "BadRequest",
    "ConnectionFailed",
    "Conversation",
    "EventStream",
    "FieldProblem",
    "Forbidden",
    "LastMessage",
    "MalformedEvent",
    "MalformedResponse",
    "Message",
    "MessagingClient",
    "MessagingError",
    "NotFound",
    "SSEParser",
    "SendAccepted",
    "ServerSentEvent",
    "StreamEvent",
    "StreamExpired",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "Unprocessable",
]

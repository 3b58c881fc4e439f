"""Reading request bodies: the media type, the size, the time a body may take to
arrive, and how many requests may wait for theirs at once.

- 415 for a body that is not JSON, 413 for one over MESSAGING_MAX_BODY_BYTES
  (before a byte of it is read, when Content-Length says so; and at once for
  `Expect: 100-continue`, instead of inviting the body), 400 for JSON that does
  not parse.
- Content-Encoding (gzip, deflate) is decoded here rather than by aiohttp's
  parser (the apps turn its auto_decompress off): a body that does not decode is
  a plain 400, and its decoded size is held to the same limit (413), so a small
  compressed bomb is refused after MESSAGING_MAX_BODY_BYTES of output. Another
  coding is 415.
- A body that has not arrived in full MESSAGING_BODY_READ_TIMEOUT_MS after the
  headers answers 408, and while MESSAGING_MAX_BODY_READS requests already wait
  for theirs, another that would wait answers 503 at once; both close the
  connection (after at most LINGER_S more). A body that came with its headers
  (almost every request) costs neither a timer nor a slot.
- A client that hangs up mid-body is ClientGone: counted and logged as that, not
  as a server error.
- receive_body gives the bytes as sent, for a check that must see them before
  anything else does (a webhook's signature); json_text_of then takes them the
  rest of read_json_text's way.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestPayloadError
from aiohttp.web_urldispatcher import _default_expect_handler

from messaging.errors import BodyNotReceived, ClientGone, InvalidRequest
from messaging.http.problems import problem
from messaging.jsontext import MAX_LIST_ITEMS, parse_json_text


@dataclass(slots=True)
class BodyLimits:
    """How long a body may take to arrive and how many may be awaited at once;
    counts the requests waiting for their body (one per app, shared by its routes)."""

    timeout_s: float = 10.0
    max_waiting: int = 256
    waiting: int = field(default=0)


BODY_LIMITS = web.AppKey("body_limits", BodyLimits)
_DEFAULT_LIMITS = BodyLimits()
# What an app passes aiohttp's server: bodies reach read_body as sent; and after
# answering a request whose body was left unread (408, 413, 503), the server reads
# and drops the rest for at most LINGER_S (so that the client sees the answer
# rather than a reset) before it closes the connection, instead of aiohttp's 10 s.
LINGER_S = 2.0
HANDLER_ARGS = {"auto_decompress": False, "lingering_time": LINGER_S}
# zlib's window bits: gzip's header and trailer; zlib's; none (raw deflate).
_GZIP, _ZLIB, _RAW = 31, 15, -15


async def read_json(request: web.Request, *, max_items: int = MAX_LIST_ITEMS) -> dict[str, Any]:
    """The JSON object of a request body (see the module's opening lines for every
    answer); max_items bounds every list and object in it."""
    return (await read_json_text(request, max_items=max_items))[0]


async def read_json_text(
    request: web.Request, *, max_items: int = MAX_LIST_ITEMS
) -> tuple[dict[str, Any], str]:
    """read_json's object and the body's text, to store as it came."""
    _require_json(request)
    return parse_json_text(await read_body(request), max_items=max_items)


def json_text_of(
    request: web.Request, raw: bytes, *, max_items: int = MAX_LIST_ITEMS
) -> tuple[dict[str, Any], str]:
    """read_json_text for a body already received as sent (receive_body): what a
    signed webhook goes through once its signature over those bytes is checked."""
    _require_json(request)
    return parse_json_text(decode_body(request, raw), max_items=max_items)


def _require_json(request: web.Request) -> None:
    media = request.content_type.lower()
    if media != "application/json" and not media.endswith("+json"):
        raise InvalidRequest(
            f"The body must be application/json, not {media or 'unspecified'}.", status=415
        )


async def read_body(request: web.Request) -> bytes:
    """The body, decoded from its Content-Encoding, within the limits."""
    coding = _coding(request)  # an unknown coding is 415 before a byte is read
    return _decode(coding, await receive_body(request), request.client_max_size)


def decode_body(request: web.Request, raw: bytes) -> bytes:
    """A body received as sent, decoded from its Content-Encoding (within the size limit)."""
    return _decode(_coding(request), raw, request.client_max_size)


def _decode(coding: str, raw: bytes, limit: int) -> bytes:
    if coding == "identity":
        return raw
    if coding == "deflate":
        # RFC 9110's deflate is zlib-wrapped; some clients send it raw.
        try:
            return _decompress(raw, _ZLIB, limit)
        except zlib.error:
            return _decompress(raw, _RAW, limit)
    return _decompress(raw, _GZIP, limit)


def _coding(request: web.Request) -> str:
    coding = request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
    if coding not in ("identity", "gzip", "x-gzip", "deflate"):
        raise InvalidRequest(
            f"The Content-Encoding {coding[:40]!r} is not supported (gzip, deflate).", status=415
        )
    return coding


def _decompress(raw: bytes, wbits: int, limit: int) -> bytes:
    decoder = zlib.decompressobj(wbits)
    try:
        body = decoder.decompress(raw, limit + 1)
    except zlib.error as exc:
        if wbits == _ZLIB:
            raise
        raise InvalidRequest(f"The body does not decode as its Content-Encoding: {exc}") from None
    if len(body) > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    if not decoder.eof:
        raise InvalidRequest("The body does not decode as its Content-Encoding: it is cut short.")
    return body


async def receive_body(request: web.Request) -> bytes:
    """The bytes of the body as sent (still in their Content-Encoding), within
    the time and size limits."""
    length = request.content_length
    if length is not None and length > request.client_max_size:
        raise web.HTTPRequestEntityTooLarge(max_size=request.client_max_size, actual_size=length)
    if request.content.is_eof():
        return await _read(request)  # arrived with the headers: nothing to wait for
    limits = request.config_dict.get(BODY_LIMITS, _DEFAULT_LIMITS)
    if limits.waiting >= limits.max_waiting:
        raise BodyNotReceived(
            "Too many requests are waiting for their body; retry later.", status=503
        )
    limits.waiting += 1
    try:
        async with asyncio.timeout(limits.timeout_s):
            return await _read(request)
    except TimeoutError:
        raise BodyNotReceived(
            f"The body did not arrive within {limits.timeout_s:g} s of the headers."
        ) from None
    finally:
        limits.waiting -= 1


async def _read(request: web.Request) -> bytes:
    try:
        return await request.read()
    except ConnectionResetError:
        raise ClientGone("the client closed the connection before its body arrived") from None
    except RequestPayloadError as exc:
        # A chunked body that does not parse.
        raise InvalidRequest(f"The body could not be read: {_first_line(exc)}") from None


async def expect_handler(request: web.Request) -> web.StreamResponse | None:
    """`Expect: 100-continue`: 413 at once for a declared body over the limit,
    instead of inviting a body that would be refused; otherwise aiohttp's own."""
    length = request.content_length
    if length is not None and length > request.client_max_size:
        response = problem(request, 413, "The body is larger than this service accepts.")
        response.force_close()
        return response
    await _default_expect_handler(request)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).replace("400, message:", "").strip()
    return (text.splitlines() or ["unreadable"])[0][:200]

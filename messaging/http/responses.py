"""JSON responses, encoded by msgspec: the 202 of every webhook and every list
page is written by this one function (several times cheaper than aiohttp's
json_response, which runs the json module)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from aiohttp import web

_encode = msgspec.json.encode


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=_encode(data), status=status, headers=headers, content_type="application/json"
    )


def page_response(page: int, page_size: int, total: int, items: list[Any]) -> web.Response:
    """One page of a list: its items, and where it is (api.md's pagination)."""
    return json_response(
        {"items": items, "meta": {"page": page, "page_size": page_size, "total": total}}
    )

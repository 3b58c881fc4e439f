"""GET /openapi.json: the contract of the whole API, kept in openapi.json beside
this module (tests check that it and the routes agree, and run schemathesis on it)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

_DOCUMENT = Path(__file__).parent / "openapi.json"
MOCK_PREFIX = "/mock/"


@cache
def _stored() -> str:
    return _DOCUMENT.read_text(encoding="utf-8")


def document(*, mock_providers: bool) -> dict[str, Any]:
    """The document, without the mock providers' paths when they are not served."""
    doc: dict[str, Any] = json.loads(_stored())
    if not mock_providers:
        doc["paths"] = {p: v for p, v in doc["paths"].items() if not p.startswith(MOCK_PREFIX)}
    return doc


def routes(*, mock_providers: bool) -> list[web.RouteDef]:
    body = json.dumps(document(mock_providers=mock_providers)).encode()

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    return [web.get("/openapi.json", openapi)]

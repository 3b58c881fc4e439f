"""The OpenAPI document and the app's router describe the same API."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from messaging.app import init_app, init_mock_app
from messaging.config import Settings
from messaging.http.openapi import document
from tests.support.aliases import Client

METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def routed(app: web.Application) -> set[tuple[str, str]]:
    """(method, path template) of every route, sub-applications included (their
    resources carry the prefix they are mounted at). HEAD is aiohttp's automatic
    twin of each GET, not a route of its own."""
    found: set[tuple[str, str]] = set()
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            found |= routed(resource.get_info()["app"])
            continue
        for route in resource:
            if route.method != "HEAD":
                found.add((route.method, resource.canonical))
    return found


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in doc["paths"].items()
        for method in item
        if method in METHODS
    }


@pytest.mark.parametrize("mock_providers", [True, False])
def test_every_route_is_documented_and_every_documented_path_is_routed(
    mock_providers: bool,
) -> None:
    app = init_app(Settings(database_url="postgresql://unused", mock_providers=mock_providers))
    doc = document(mock_providers=mock_providers)
    assert routed(app) == documented(doc)


def test_the_standalone_mock_serves_the_documented_mock_paths() -> None:
    doc = document(mock_providers=True)
    mock_paths = {(m, p) for m, p in documented(doc) if p.startswith("/mock/")}
    assert mock_paths
    assert routed(init_mock_app(Settings())) == mock_paths


def test_the_document_is_openapi_3_1_with_problem_errors() -> None:
    doc = document(mock_providers=True)
    assert doc["openapi"].startswith("3.1.")
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and "$ref" in response:
                    ref = response["$ref"].rsplit("/", 1)[1]
                    response = doc["components"]["responses"][ref]
                if status.startswith("4"):
                    assert "application/problem+json" in response["content"], (method, path)


async def test_served_at_openapi_json(client: Client) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert await response.json() == document(mock_providers=True)

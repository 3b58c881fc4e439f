"""API keys at the HTTP edge: the scope a route needs, and the check.

init_app wraps the routes of each scope with require() when MESSAGING_API_AUTH
is keys: `send` for POST /api/messages/*, `read` for the GETs of conversations
and messages (`admin` is for operator routes, when there are some). With none,
and for the webhooks (signed by their providers), /healthz, /readyz, /metrics
and /openapi.json always, the handlers are routed as they are: their path
carries no check at all.

A request names its key as `Authorization: Bearer <key>`. No key, or one that
is unknown or revoked: 401 with a Bearer challenge; a valid key without the
route's scope: 403 (problems.py). The key is checked against the process's
cache (apikeys.KeyCache), never the database, and before the body is read (for
`Expect: 100-continue`, before the body is invited).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from messaging.apikeys import KeyCache
from messaging.errors import DatabaseUnavailable, Forbidden, Unauthenticated
from messaging.http.problems import problem_for
from messaging.store.api_keys import StoredKey

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]

# The key a request was let in with, for a handler that wants to know who calls.
API_KEY = web.RequestKey("api_key", StoredKey)


def require(scope: str, routes: list[web.RouteDef], keys: KeyCache | None) -> list[web.RouteDef]:
    """The routes, each needing a key with `scope` (unchanged when keys is None:
    MESSAGING_API_AUTH=none)."""
    if keys is None:
        return routes
    guarded = []
    for route in routes:
        handler = route.handler
        if isinstance(handler, type):
            raise TypeError(f"{route.path}: class-based views are not guarded")
        kwargs = dict(route.kwargs)
        if kwargs.get("expect_handler") is not None:
            kwargs["expect_handler"] = _guard_expect(scope, kwargs["expect_handler"], keys)
        guarded.append(web.RouteDef(route.method, route.path, _guard(scope, handler, keys), kwargs))
    return guarded


def authorize(request: web.Request, scope: str, keys: KeyCache) -> StoredKey:
    """The request's key, if it has `scope`; Unauthenticated or Forbidden if not."""
    key = keys.authenticate(bearer_key(request.headers.get(hdrs.AUTHORIZATION)))
    if scope not in key.scopes:
        raise Forbidden(
            f"The API key {key.name!r} lacks the scope {scope!r} this route needs.", scope
        )
    return key


def _guard(scope: str, handler: Handler, keys: KeyCache) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        request[API_KEY] = authorize(request, scope, keys)
        return await handler(request)

    return guarded


def _guard_expect(scope: str, expect: ExpectHandler, keys: KeyCache) -> ExpectHandler:
    """`Expect: 100-continue`: a request that will be refused is refused before
    its body is invited (the handler checks again: a client may skip Expect)."""

    async def guarded(request: web.Request) -> web.StreamResponse | None:
        try:
            authorize(request, scope, keys)
        except (Unauthenticated, Forbidden, DatabaseUnavailable) as exc:
            response = problem_for(request, exc)
            response.force_close()
            return response
        return await expect(request)

    return guarded


def bearer_key(authorization: str | None) -> str:
    """The key of an `Authorization: Bearer <key>` header (the scheme in any case,
    RFC 9110); Unauthenticated when there is none."""
    if not authorization:
        raise Unauthenticated("This route needs an API key: Authorization: Bearer <key>.")
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthenticated("The Authorization header must be 'Bearer <key>'.")
    return key

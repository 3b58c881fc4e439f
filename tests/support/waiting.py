"""Waiting for a condition, with a bound that is a timeout, not a claim about
speed."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(
    condition: Callable[[], Any] | Callable[[], Awaitable[Any]],
    *,
    within: float,
    interval: float = 0.02,
) -> Any:
    """Poll condition() (a plain or an async function) until it returns
    something truthy, and return that value; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)

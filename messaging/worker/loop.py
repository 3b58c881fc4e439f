"""The woken loop: the skeleton of the inbound loop and the delivery loop.

A WokenLoop runs its step each time it is woken (a notification, the sweep, a
timer, or its start) until it is stopped, and rides out failures:

- A transient database error (lost connection, deadlock, serialization failure,
  lock or statement timeout) is not the work's fault, so the operation is retried
  after a pause, costing no attempt: short at first (a deadlock resolves at
  once), growing while the database stays away. A loop told to stop while the
  database is away stops retrying (Stopped) and leaves its claims to the sweep or
  gives them back.
- A step that fails is logged and tried again after such a pause.
- describe() is the one wording of a failure recorded in last_error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from messaging.metrics import Metrics
from messaging.store.db import is_transient
from messaging.worker import backoff
from messaging.worker.backoff import RetryPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")

TRANSIENT_BASE_S = 0.05
TRANSIENT_CAP_S = 5.0
# last_error keeps the start of long messages only.
MAX_ERROR_CHARS = 2000


class Stopped(Exception):
    """The loop was told to stop while waiting for the database to come back."""


class WorkRefused(Exception):
    """The work itself cannot be done (an event's payload, say); its message
    speaks for itself in last_error."""


def describe(exc: BaseException) -> str:
    """The reason recorded in last_error: what failed, with the exception's type
    unless the work was refused for a reason of its own."""
    text = str(exc).strip()
    if not isinstance(exc, WorkRefused):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:MAX_ERROR_CHARS]


def log_failure(
    logger: logging.Logger, message: str, action: str, exc: BaseException, **extra: Any
) -> None:
    """A background task's failed step: a warning when the database is away (it
    comes back, and the step is tried again), an error with the traceback when
    something else went wrong."""
    transient = is_transient(exc)
    logger.log(
        logging.WARNING if transient else logging.ERROR,
        message,
        exc_info=not transient,
        extra={"action": action, "error": describe(exc), **extra},
    )


class WokenLoop:
    """wake() and stop() from anywhere, run() as the background task; a subclass
    gives step(), what one wake-up does, and the names its log lines carry. Both
    loops claim work for one processor id from one pool, and retry it by one
    policy."""

    action = "loop_failed"  # the log action of a failed step
    what = "loop"  # the log wording
    retry_action = "transient_error"  # the log action of a transient retry

    def __init__(
        self, pool: asyncpg.Pool, metrics: Metrics, *, processor_id: str, retry: RetryPolicy
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._processor_id = processor_id
        self._retry = retry
        self._wake = asyncio.Event()
        self._wake.set()  # look for work as soon as the loop starts
        self._stopping = asyncio.Event()

    def wake(self, payload: str = "") -> None:
        """There may be work: look at the next opportunity. Returns at once."""
        self._wake.set()

    def stop(self) -> None:
        """Take no more work; run() returns once the work in hand is done."""
        self._stopping.set()
        self._wake.set()

    async def step(self) -> object:
        raise NotImplementedError

    async def run(self) -> None:
        await run_when_woken(
            self.step,
            wake=self._wake,
            stopping=self._stopping,
            action=self.action,
            what=self.what,
            describe=describe,
        )

    async def with_retries(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run operation until it gets past transient database errors. Raises
        Stopped if told to stop while the database is away."""
        return await retry_transient(
            operation, stopping=self._stopping, action=self.retry_action, describe=describe
        )


def transient_pause(failures: int) -> float:
    """How long to wait after the n-th transient failure in a row."""
    return backoff.delay(failures, base=TRANSIENT_BASE_S, cap=TRANSIENT_CAP_S)


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep, cut short when `stopping` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), timeout=seconds)


async def retry_transient(
    operation: Callable[[], Awaitable[T]],
    *,
    stopping: asyncio.Event,
    action: str,
    describe: Callable[[BaseException], str],
) -> T:
    """Run operation until it gets past transient database errors; other errors
    propagate. Raises Stopped if `stopping` is set while the database is away
    (after one more try). Each retry is logged with the given action."""
    failures = 0
    while True:
        try:
            return await operation()
        except Exception as exc:
            if not is_transient(exc):
                raise
            failures += 1
            if stopping.is_set() and failures > 1:
                raise Stopped from exc
            delay = transient_pause(failures)
            log.warning(
                "transient database error; retrying",
                extra={
                    "action": action,
                    "error": describe(exc),
                    "attempt": failures,
                    "retry_in_s": round(delay, 3),
                },
            )
            await pause(stopping, delay)


async def run_when_woken(
    step: Callable[[], Awaitable[Any]],
    *,
    wake: asyncio.Event,
    stopping: asyncio.Event,
    action: str,
    what: str,
    describe: Callable[[BaseException], str],
) -> None:
    """A loop's body: run `step` each time `wake` is set, until `stopping` is (or
    the step raises Stopped). A failing step is logged (a warning when transient,
    an error with its traceback otherwise) and run again after a growing pause."""
    failures = 0
    while True:
        await wake.wait()
        # Cleared before the step: a wake-up that arrives meanwhile sets it again
        # and is not lost.
        wake.clear()
        if stopping.is_set():
            return
        try:
            await step()
            failures = 0
        except Stopped:
            return
        except Exception as exc:
            failures += 1
            delay = transient_pause(failures)
            log_failure(log, f"{what} failed; retrying", action, exc, retry_in_s=round(delay, 3))
            await pause(stopping, delay)
            wake.set()

"""The inbound loop: claim due events in batches, turn each batch into messages
and conversations in one transaction, retry what fails.

Woken by a notification (the listener), by the sweep, or at start; it then
claims batch after batch while they come back full, and waits again.

While batches come back full there is a backlog, and up to
MESSAGING_BATCHES_IN_FLIGHT claim loops run at once, each on its own connection:
one batch is claimed and turned into messages in Python while the database
writes another, instead of each side waiting for the other. A lone event (a
batch that comes back short) still costs one claim and one transaction.

Failures:
- An event that cannot become a message (a payload the database or this code
  refuses) fails on its own: the batch is bisected until the failing events are
  found, and the rest commits. A failed event goes back to error with the reason
  and a jittered, exponentially growing delay, or to dead_letter once it has used
  MESSAGING_MAX_RETRIES attempts.
- A transient database error (lost connection, deadlock, serialization failure,
  lock or statement timeout) is not the events' fault: the batch keeps its claim
  and is retried after a pause, costing no attempt. A worker told to stop while
  the database is away gives its claims back (also costing no attempt) if it can;
  if it cannot, they time out and the sweep returns them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import asyncpg

from messaging.metrics import Metrics
from messaging.models import (
    ContentError,
    channel_of,
    check_attachments,
    check_body,
    check_sent_at,
    conversation_key,
)
from messaging.store import inbound_events
from messaging.store.claims import Failure
from messaging.store.db import is_transient
from messaging.store.inbound_events import ClaimedEvent
from messaging.store.messages import NewMessage
from messaging.worker.backoff import RetryPolicy
from messaging.worker.batch import commit_batch
from messaging.worker.loop import Stopped, WokenLoop, WorkRefused, describe

log = logging.getLogger(__name__)

T = TypeVar("T")


class InvalidEvent(WorkRefused):
    """An event's stored payload cannot become a message."""


def to_message(event: ClaimedEvent) -> NewMessage:
    """The message an inbound event becomes, by the content rules its webhook
    passed (models.py), so that an event stored before a rule changed is held to
    it too. Pure; raises InvalidEvent."""
    try:
        payload = json.loads(event.payload)
    except ValueError as exc:
        raise InvalidEvent(f"payload is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise InvalidEvent("payload is not a JSON object")
    body = _checked("body", check_body, payload.get("body"), event.message_type)
    attachments = _checked(
        "attachments", check_attachments, payload.get("attachments"), event.message_type
    )
    sent_at = _checked("timestamp", check_sent_at, payload.get("timestamp"))
    kind, participant_a, participant_b = conversation_key(
        channel_of(event.message_type), event.from_address, event.to_address
    )
    return NewMessage(
        event_id=event.id,
        kind=kind,
        participant_a=participant_a,
        participant_b=participant_b,
        message_type=event.message_type,
        from_address=event.from_address,
        to_address=event.to_address,
        body=body,
        attachments=json.dumps(list(attachments)) if attachments else "[]",
        sent_at=sent_at,
        provider_message_id=event.provider_message_id,
    )


def _checked(name: str, check: Callable[..., T], *args: object) -> T:
    try:
        return check(*args)
    except ContentError as exc:
        raise InvalidEvent(f"payload {name} {exc}") from None


class InboundLoop(WokenLoop):
    """Claims and processes inbound events. run() is the background loop;
    drain() processes everything due now and returns (tests, burst mode)."""

    action = "claim_failed"
    what = "claim loop"
    retry_action = "batch_transient_error"

    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: Metrics,
        *,
        processor_id: str,
        batch_size: int,
        retry: RetryPolicy,
        batches_in_flight: int = 1,
    ) -> None:
        super().__init__(pool, metrics, processor_id=processor_id, retry=retry)
        self._batch_size = batch_size
        self._batches_in_flight = batches_in_flight

    async def step(self) -> int:
        return await self.drain()

    async def drain(self) -> int:
        """Claim and process batches until they come back short (or stopping).
        Returns how many events were claimed.

        A full batch starts another claim loop, up to batches_in_flight. If a
        loop fails, the others finish the batch in hand and claim no more, and
        the first error is raised."""
        loops: list[asyncio.Task[int]] = []
        halt = asyncio.Event()

        def add_loop() -> None:
            if len(loops) < self._batches_in_flight and not halt.is_set():
                loops.append(asyncio.create_task(self._claim_loop(add_loop, halt)))

        add_loop()
        claimed_total = 0
        error: Exception | None = None
        try:
            index = 0
            while index < len(loops):  # loops may be added meanwhile
                try:
                    claimed_total += await loops[index]
                except Exception as exc:
                    halt.set()
                    error = error or exc
                index += 1
        finally:
            for loop in loops:
                loop.cancel()  # only if drain itself was cancelled: the rest are done
        if error is not None:
            raise error
        return claimed_total

    async def _claim_loop(self, add_loop: Callable[[], None], halt: asyncio.Event) -> int:
        claimed_total = 0
        while not self._stopping.is_set() and not halt.is_set():
            batch = await inbound_events.claim(self._pool, self._processor_id, self._batch_size)
            full = len(batch) >= self._batch_size
            if full:
                add_loop()
            if batch:
                claimed_total += len(batch)
                self._metrics.events_claimed(len(batch))
                await self._process(batch)
            if not full:
                break
        return claimed_total

    async def _process(self, batch: list[ClaimedEvent]) -> None:
        started = time.perf_counter()
        messages: list[NewMessage] = []
        failures: list[Failure] = []
        by_id = {event.id: event for event in batch}
        for event in batch:
            try:
                messages.append(to_message(event))
            except InvalidEvent as exc:
                failures.append(self._failure(event, describe(exc)))
        try:
            if messages:
                failures += await self.with_retries(lambda: self._commit_isolating(messages, by_id))
            if failures:
                await self.with_retries(lambda: self._record(failures))
        except Stopped:
            await self._release(batch)
            raise
        log.debug(
            "batch processed",
            extra={
                "action": "batch_processed",
                "events": len(batch),
                "failed": len(failures),
                "ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )

    async def _commit_isolating(
        self, messages: list[NewMessage], by_id: dict[int, ClaimedEvent]
    ) -> list[Failure]:
        """Commit the messages; if the database refuses the batch, split it in two
        and try each half, down to the single events it refuses. Transient errors
        propagate (the caller retries the whole, minus what has committed)."""
        try:
            committed = await commit_batch(self._pool, self._processor_id, messages)
        except Exception as exc:
            if is_transient(exc):
                raise
            if len(messages) == 1:
                return [self._failure(by_id[messages[0].event_id], describe(exc))]
            log.info(
                "batch refused; isolating the failing events",
                extra={"action": "batch_isolate", "events": len(messages), "error": describe(exc)},
            )
            middle = len(messages) // 2
            return await self._commit_isolating(
                messages[:middle], by_id
            ) + await self._commit_isolating(messages[middle:], by_id)
        now = time.time()
        self._metrics.events_processed(
            [now - by_id[i].received_at.timestamp() for i in committed.event_ids]
        )
        return []

    async def _record(self, failures: list[Failure]) -> None:
        outcomes = await inbound_events.record_failures(
            self._pool, failures, self._retry.max_attempts
        )
        reasons = {f.id: f.error for f in failures}
        for outcome in outcomes:
            dead = outcome.gave_up
            self._metrics.event_failed(dead_lettered=dead)
            log.log(
                logging.ERROR if dead else logging.WARNING,
                "event dead-lettered" if dead else "event failed; will retry",
                extra={
                    "action": "event_dead_lettered" if dead else "event_failed",
                    "event_id": outcome.id,
                    "attempt": outcome.attempt_count,
                    "error": reasons.get(outcome.id),
                },
            )

    def _failure(self, event: ClaimedEvent, error: str) -> Failure:
        return Failure(
            id=event.id,
            processor_id=self._processor_id,
            error=error,
            delay_s=self._retry.delay_s(event.attempt_count),
        )

    async def _release(self, batch: list[ClaimedEvent]) -> None:
        try:
            released = await inbound_events.release_claims(
                self._pool, [e.id for e in batch], self._processor_id
            )
        except Exception as exc:
            log.warning(
                "could not give claims back; they will time out",
                extra={
                    "action": "claims_release_failed",
                    "events": len(batch),
                    "error": describe(exc),
                },
            )
            return
        log.info("claims given back", extra={"action": "claims_released", "events": released})

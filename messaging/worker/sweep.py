"""The sweep: the periodic safety net under the notifications, one loop over
both queues (inbound events and sends), each described by a SweptQueue.

Every MESSAGING_SWEEP_INTERVAL_MS, for each queue, it
- takes back claims older than MESSAGING_CLAIM_TIMEOUT_SECS (their worker died
  or hung), with the reason, in batches of STALE_BATCH: retried after the
  queue's delay, or given up (an event dead-lettered, a send failed) when the
  claim was the last attempt. The reason is worded here, for both; whether the
  attempts are used up is decided in SQL, for both, by the statement that
  records it (the same one that records a failed attempt of an event);
- refreshes the queue's gauge (and the NOTIFY-queue gauge);
- wakes the queue's loop when work is due: retries whose time has come, stale
  claims just returned, and anything a lost notification left behind.
Then it runs retention (retention.py) for at most PRUNE_SHARE of the interval:
processed events, old Idempotency-Keys and the stream's log, in batches, one at
a time across processes, so that a large backlog of old rows is worked off over
many sweeps and never holds up the stale claims for long. Last, it folds the
conversations' count rows into one (conversations.sql compact_conversation_counts).
With MESSAGING_LISTEN off it is the only thing that wakes the loops (but for a
delivery loop's own retries).

A stale event is retried after the retry policy's delay (its crash may be its
own fault); a stale send is due again at once (sending again is safe: the
provider's idempotency key makes it the same delivery).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg

from messaging.metrics import Metrics
from messaging.store import conversations, inbound_events, messages
from messaging.store.claims import Failure, Outcome, StaleClaim
from messaging.store.db import Conn, transaction
from messaging.worker.backoff import RetryPolicy
from messaging.worker.loop import log_failure
from messaging.worker.retention import Pruned, Pruner

log = logging.getLogger(__name__)

# Stale claims returned per transaction.
STALE_BATCH = 1000
# The share of the sweep interval that retention may take at each sweep (and
# a second at most): with the defaults (1 s, batches of 1,000 rows, 200 ms
# pauses) two or three batches, some 2,500 rows a second, many times a busy
# service's growth; `messaging prune` goes at the pause's pace alone.
PRUNE_SHARE = 0.5
PRUNE_BUDGET_MAX_S = 1.0


@dataclass(frozen=True, slots=True)
class SweptQueue:
    """One queue as the sweep sees it."""

    # The log lines of a stale claim returned and of one given up: (message,
    # action); the level of a given-up one; the name of the id field.
    returned_log: tuple[str, str]
    gave_up_log: tuple[str, str]
    gave_up_level: int
    id_field: str
    select_stale: Callable[[Conn, float, int], Awaitable[list[StaleClaim]]]
    fail_stale: Callable[[Conn, Sequence[Failure], int], Awaitable[list[Outcome]]]
    stale_delay_s: Callable[[int], float]  # the attempt count -> delay before the retry
    observe: Callable[[asyncpg.Pool, Metrics], Awaitable[int]]  # gauges; how many are due
    on_outcome: Callable[[Metrics, Outcome], None]
    on_returned: Callable[[Metrics, int], None]
    wake: Callable[[], None]


@dataclass(frozen=True, slots=True)
class QueueSweep:
    """What one sweep did to one queue."""

    retried: int  # stale claims returned to be retried
    gave_up: int  # stale claims that were the last attempt
    due: int  # due after the sweep


@dataclass(frozen=True, slots=True)
class SweepResult:
    events: QueueSweep
    sends: QueueSweep
    pruned: Pruned  # what retention deleted
    counts_folded: int  # conversation_counts rows folded into one


def event_queue(retry: RetryPolicy, wake: Callable[[], None]) -> SweptQueue:
    async def observe(pool: asyncpg.Pool, metrics: Metrics) -> int:
        stats = await inbound_events.queue_stats(pool)
        metrics.queue_observed(stats.due, stats.oldest_due_age_s, stats.notification_queue_usage)
        return stats.due

    return SweptQueue(
        returned_log=("stale claim returned", "stale_claim_returned"),
        gave_up_log=("stale claim dead-lettered", "stale_claim_dead_lettered"),
        gave_up_level=logging.WARNING,
        id_field="event_id",
        select_stale=inbound_events.select_stale,
        fail_stale=inbound_events.fail_claims,
        stale_delay_s=retry.delay_s,
        observe=observe,
        on_outcome=lambda m, o: m.event_failed(dead_lettered=o.gave_up),
        on_returned=Metrics.stale_claims_returned,
        wake=wake,
    )


def send_queue(wake: Callable[[], None]) -> SweptQueue:
    async def observe(pool: asyncpg.Pool, metrics: Metrics) -> int:
        due = await messages.due_count(pool)
        metrics.sends_observed(due)
        return due

    def on_outcome(metrics: Metrics, outcome: Outcome) -> None:
        if outcome.gave_up:
            metrics.send_failed(outcome.channel)

    return SweptQueue(
        returned_log=("stale send claim requeued", "stale_send_requeued"),
        gave_up_log=("stale send claim failed", "stale_send_failed"),
        gave_up_level=logging.ERROR,
        id_field="message_id",
        select_stale=messages.select_stale,
        fail_stale=messages.fail_claims,
        stale_delay_s=lambda attempt: 0.0,
        observe=observe,
        on_outcome=on_outcome,
        on_returned=Metrics.send_stale_claims_returned,
        wake=wake,
    )


class Sweeper:
    """Runs the sweep every interval until stopped; sweep_once() runs one."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: Metrics,
        *,
        interval_s: float,
        claim_timeout_s: float,
        max_attempts: int,
        events: SweptQueue,
        sends: SweptQueue,
        pruner: Pruner,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._interval_s = interval_s
        self._claim_timeout_s = claim_timeout_s
        self._max_attempts = max_attempts
        self._events = events
        self._sends = sends
        self._pruner = pruner
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sweep_once()
                self._metrics.swept()
            except Exception as exc:
                log_failure(log, "sweep failed", "sweep_failed", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval_s)

    async def sweep_once(self) -> SweepResult:
        return SweepResult(
            events=await self._sweep(self._events),
            sends=await self._sweep(self._sends),
            pruned=await self._prune(),
            counts_folded=await conversations.compact_counts(self._pool),
        )

    async def _prune(self) -> Pruned:
        budget_s = min(self._interval_s * PRUNE_SHARE, PRUNE_BUDGET_MAX_S)
        pruned = await self._pruner.prune(budget_s=budget_s)
        if pruned.total:
            log.info(
                "retention pruned",
                extra={"action": "pruned", **pruned.deleted, "more": pruned.more},
            )
        return pruned

    async def _sweep(self, queue: SweptQueue) -> QueueSweep:
        retried = gave_up = 0
        while True:
            async with transaction(self._pool) as conn:
                stale = await queue.select_stale(conn, self._claim_timeout_s, STALE_BATCH)
                outcomes = (
                    await queue.fail_stale(
                        conn, [self._failure(queue, s) for s in stale], self._max_attempts
                    )
                    if stale
                    else []
                )
            holders = {s.id: s.processor_id for s in stale}
            for outcome in outcomes:
                gave_up += outcome.gave_up
                retried += not outcome.gave_up
                queue.on_outcome(self._metrics, outcome)
                message, action = queue.gave_up_log if outcome.gave_up else queue.returned_log
                log.log(
                    queue.gave_up_level if outcome.gave_up else logging.WARNING,
                    message,
                    extra={
                        "action": action,
                        queue.id_field: outcome.id,
                        "attempt": outcome.attempt_count,
                        "processor_id": holders.get(outcome.id),
                    },
                )
            if len(stale) < STALE_BATCH:
                break
        if retried or gave_up:
            queue.on_returned(self._metrics, retried + gave_up)
        due = await queue.observe(self._pool, self._metrics)
        if due:
            queue.wake()
        return QueueSweep(retried=retried, gave_up=gave_up, due=due)

    def _failure(self, queue: SweptQueue, claim: StaleClaim) -> Failure:
        return Failure(
            id=claim.id,
            processor_id=claim.processor_id,
            error=(
                f"claim by {claim.processor_id} timed out: not finished within "
                f"{self._claim_timeout_s:g} s of {claim.claimed_at.isoformat()}"
            ),
            delay_s=queue.stale_delay_s(claim.attempt_count),
        )

"""The sweep: the periodic safety net under the notifications.

Every MESSAGING_SWEEP_INTERVAL_MS it
- returns claims older than MESSAGING_CLAIM_TIMEOUT_SECS (their worker died or
  hung) to error, with the reason and a retry time, or to dead_letter when they
  are out of attempts;
- returns send claims older than the same timeout to queued, due at once (the
  provider's idempotency key makes sending again safe), or to failed when the
  claim was their last attempt;
- refreshes the queue-depth and NOTIFY-queue gauges;
- wakes the claim loop when events are due, and the delivery loop when sends
  are: retries whose time has come, stale claims just returned, and anything a
  lost notification left behind.
With MESSAGING_LISTEN off it is the only thing that wakes the loops (but for a
delivery loop's own retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from messaging.metrics import Metrics
from messaging.store import events, outbound
from messaging.store.db import is_transient
from messaging.store.events import Failure, StaleClaim
from messaging.worker.inbound import RetryPolicy, describe

log = logging.getLogger(__name__)

# Stale claims returned per transaction.
STALE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class SweepResult:
    retried: int  # stale claims returned to error
    dead_lettered: int  # stale claims that were out of attempts
    due: int  # events due after the sweep
    sends_requeued: int = 0  # stale send claims returned to queued
    sends_failed: int = 0  # stale send claims that were the last attempt
    sends_due: int = 0  # sends due after the sweep


class Sweeper:
    """Runs the sweep every interval until stopped; sweep_once() runs one."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: Metrics,
        *,
        interval_s: float,
        claim_timeout_s: float,
        retry: RetryPolicy,
        on_due: Callable[[], None],
        on_sends_due: Callable[[], None] = lambda: None,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._interval_s = interval_s
        self._claim_timeout_s = claim_timeout_s
        self._retry = retry
        self._on_due = on_due
        self._on_sends_due = on_sends_due
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.sweep_once()
            except Exception as exc:
                log.log(
                    logging.WARNING if is_transient(exc) else logging.ERROR,
                    "sweep failed",
                    exc_info=not is_transient(exc),
                    extra={"action": "sweep_failed", "error": describe(exc)},
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval_s)

    async def sweep_once(self) -> SweepResult:
        retried = dead = 0
        while True:
            outcomes = await events.return_stale_claims(
                self._pool,
                timeout_s=self._claim_timeout_s,
                max_attempts=self._retry.max_attempts,
                failure_for=self._stale_failure,
                limit=STALE_BATCH,
            )
            for outcome in outcomes:
                is_dead = outcome.status == "dead_letter"
                dead += is_dead
                retried += not is_dead
                self._metrics.event_failed(dead_lettered=is_dead)
                log.warning(
                    "stale claim dead-lettered" if is_dead else "stale claim returned",
                    extra={
                        "action": "stale_claim_dead_lettered"
                        if is_dead
                        else "stale_claim_returned",
                        "event_id": outcome.event_id,
                        "attempt": outcome.attempt_count,
                    },
                )
            if len(outcomes) < STALE_BATCH:
                break
        if retried or dead:
            self._metrics.stale_claims_returned(retried + dead)
        stats = await events.queue_stats(self._pool)
        self._metrics.queue_observed(stats.due, stats.notification_queue_usage)
        if stats.due:
            self._on_due()
        requeued, failed = await self._sweep_sends()
        sends_due = await outbound.due_count(self._pool)
        self._metrics.sends_observed(sends_due)
        if sends_due:
            self._on_sends_due()
        return SweepResult(
            retried=retried,
            dead_lettered=dead,
            due=stats.due,
            sends_requeued=requeued,
            sends_failed=failed,
            sends_due=sends_due,
        )

    async def _sweep_sends(self) -> tuple[int, int]:
        requeued = failed = 0
        while True:
            stale = await outbound.requeue_stale(
                self._pool,
                timeout_s=self._claim_timeout_s,
                max_attempts=self._retry.max_attempts,
                limit=STALE_BATCH,
            )
            for send in stale:
                is_failed = send.status == "failed"
                if is_failed:
                    self._metrics.send_failed(send.channel)
                failed += is_failed
                requeued += not is_failed
                log.log(
                    logging.ERROR if is_failed else logging.WARNING,
                    "stale send claim failed" if is_failed else "stale send claim requeued",
                    extra={
                        "action": "stale_send_failed" if is_failed else "stale_send_requeued",
                        "message_id": send.id,
                        "attempt": send.attempt,
                        "processor_id": send.processor_id,
                    },
                )
            if len(stale) < STALE_BATCH:
                break
        if requeued or failed:
            self._metrics.send_stale_claims_returned(requeued + failed)
        return requeued, failed

    def _stale_failure(self, claim: StaleClaim) -> Failure:
        return Failure(
            event_id=claim.event_id,
            processor_id=claim.processor_id,
            error=(
                f"claim by {claim.processor_id} timed out: not finished within "
                f"{self._claim_timeout_s:g} s of {claim.claimed_at.isoformat()}"
            ),
            delay_s=self._retry.delay_s(claim.attempt_count),
        )

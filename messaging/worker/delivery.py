"""The delivery loop: claim due sends, hand them to their provider concurrently,
record each outcome.

Woken by a notification (a send was stored), by the sweep, by a retry whose
time has come, or at start. It claims as many due sends as it has free slots
(MESSAGING_SEND_CONCURRENCY) in one statement that commits at once (status
sending, this processor, the attempt counted), then sends each one through its
provider outside any transaction, and claims again as slots free up while the
queue has more.

Outcomes (providers/client.py turns every answer and network error into one):
- Accepted: sent, with the provider's id, in one statement;
- ProviderRetryLater (429, 5xx, a timeout, no connection): back to queued, due
  after the backoff delay or the provider's Retry-After, whichever is later; once
  the send has used MESSAGING_MAX_RETRIES attempts, failed with the reason;
- ProviderRejected (another 4xx): failed at once with the reason.
Each is recorded only while this worker still holds the claim. Every request
carries the idempotency key msg-<id>, so a send retried after an answer that
never arrived, or re-sent after a crash, is never a second delivery.

stop() claims nothing more and lets the sends in flight finish and be recorded
(each is bounded by the provider timeout), so a clean stop leaves nothing in
sending.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from messaging.errors import ProviderRejected, ProviderRetryLater
from messaging.metrics import Metrics
from messaging.providers.client import Accepted, Outcome, Providers
from messaging.store import messages
from messaging.store.messages import ClaimedSend
from messaging.worker.backoff import RetryPolicy
from messaging.worker.loop import MAX_ERROR_CHARS, WokenLoop, describe

log = logging.getLogger(__name__)

# Retry times remembered for the self-wake-up; beyond this many the sweep alone
# finds the rest.
MAX_RETRY_TIMERS = 10_000


@dataclass(frozen=True, slots=True)
class Sent:
    provider_message_id: str


@dataclass(frozen=True, slots=True)
class Retry:
    error: str
    delay_s: float
    not_before: datetime | None


@dataclass(frozen=True, slots=True)
class Failed:
    error: str


Step = Sent | Retry | Failed


def next_step(outcome: Outcome, attempt: int, retry: RetryPolicy) -> Step:
    """What an attempt's outcome makes of a send. Pure."""
    if isinstance(outcome, Accepted):
        return Sent(outcome.provider_message_id)
    if isinstance(outcome, ProviderRejected):
        return Failed(outcome.reason[:MAX_ERROR_CHARS])
    if attempt >= retry.max_attempts:
        return Failed(f"gave up after {attempt} attempts: {outcome.reason}"[:MAX_ERROR_CHARS])
    return Retry(outcome.reason[:MAX_ERROR_CHARS], retry.delay_s(attempt), outcome.not_before)


class DeliveryLoop(WokenLoop):
    """Claims and delivers sends. run() is the background loop; drain() delivers
    everything due now, waits for the outcomes and returns (tests, burst mode)."""

    action = "send_claim_failed"
    what = "send claim"
    retry_action = "send_transient_error"

    def __init__(
        self,
        pool: asyncpg.Pool,
        providers: Providers,
        metrics: Metrics,
        *,
        processor_id: str,
        concurrency: int,
        retry: RetryPolicy,
    ) -> None:
        super().__init__(pool, metrics, processor_id=processor_id, retry=retry)
        self._providers = providers
        self._concurrency = concurrency
        self._in_flight: set[asyncio.Task[None]] = set()
        # The last claim filled every free slot: the queue may hold more, so a
        # send that finishes wakes the loop to claim again.
        self._backlog = False
        # Loop times at which sends this loop requeued fall due, earliest first,
        # and the timer that wakes the loop at the earliest.
        self._retry_times: list[float] = []
        self._timer: asyncio.TimerHandle | None = None

    async def step(self) -> int:
        return await self._fill()

    async def run(self) -> None:
        """The loop; once stopped, the sends in flight finish and are recorded."""
        try:
            await super().run()
        finally:
            await self._finish()

    async def drain(self) -> int:
        """Claim and deliver until nothing is due and nothing is in flight; how
        many sends were claimed. Retries that fall due later are left queued."""
        claimed = 0
        while True:
            claimed += await self._fill()
            if not self._in_flight:
                return claimed
            await asyncio.wait(set(self._in_flight))

    async def _fill(self) -> int:
        """Claim due sends into the free slots and start them; how many."""
        started = 0
        while not self._stopping.is_set():
            free = self._concurrency - len(self._in_flight)
            if free <= 0:
                self._backlog = True
                break
            claimed = await messages.claim(self._pool, self._processor_id, free)
            if claimed:
                self._metrics.sends_claimed(len(claimed))
            for send in claimed:
                self._start(send)
            started += len(claimed)
            if len(claimed) < free:
                self._backlog = False
                break
        return started

    def _start(self, send: ClaimedSend) -> None:
        task = asyncio.create_task(self._deliver(send), name=f"send-{send.id}")
        self._in_flight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._backlog:
            self._wake.set()

    async def _deliver(self, send: ClaimedSend) -> None:
        client = self._providers.for_type(send.message.message_type)
        try:
            outcome: Outcome = await client.send(send.id, send.message)
        except Exception as exc:
            # The clients answer every provider and network failure with an
            # outcome; this is a bug. The send is retried like a 5xx.
            log.exception(
                "provider client failed",
                extra={"action": "send_client_error", "message_id": send.id},
            )
            outcome = ProviderRetryLater(describe(exc))
        step = next_step(outcome, send.attempt, self._retry)
        try:
            await self.with_retries(lambda: self._record(send, step))
        except Exception as exc:
            # Stopped while the database is away, or refused: the claim stays and
            # the sweep returns it after the claim timeout.
            log.error(
                "could not record a send's outcome; the sweep will return it",
                extra={
                    "action": "send_record_failed",
                    "message_id": send.id,
                    "outcome": type(step).__name__,
                    "error": describe(exc),
                },
            )

    async def _record(self, send: ClaimedSend, step: Step) -> None:
        channel = send.message.channel
        if isinstance(step, Sent):
            latency = await messages.mark_sent(
                self._pool, send.id, self._processor_id, step.provider_message_id
            )
            held = latency is not None
            if latency is not None:
                self._metrics.send_sent(channel, latency)
        elif isinstance(step, Retry):
            due = await messages.retry_later(
                self._pool, send.id, self._processor_id, step.error, step.delay_s, step.not_before
            )
            held = due is not None
            if due is not None:
                self._metrics.send_retried(channel)
                self._remember_retry(due)
        else:
            held = await messages.mark_failed(self._pool, send.id, self._processor_id, step.error)
            if held:
                self._metrics.send_failed(channel)
        if not held:
            log.warning(
                "claim lost before the outcome was recorded; left to its new holder",
                extra={"action": "send_claim_lost", "message_id": send.id},
            )
            return
        _log_step(send, step)

    def _remember_retry(self, due: datetime) -> None:
        """Wake this loop when a send it requeued falls due, rather than waiting
        for the sweep."""
        if len(self._retry_times) >= MAX_RETRY_TIMERS:
            return
        delay_s = max(0.0, (due - datetime.now(UTC)).total_seconds())
        heapq.heappush(self._retry_times, asyncio.get_running_loop().time() + delay_s)
        self._arm_timer()

    def _arm_timer(self) -> None:
        earliest = self._retry_times[0] if self._retry_times else None
        if self._timer is not None and (earliest is None or self._timer.when() <= earliest):
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = (
            asyncio.get_running_loop().call_at(earliest, self._retry_due)
            if earliest is not None
            else None
        )

    def _retry_due(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        while self._retry_times and self._retry_times[0] <= now:
            heapq.heappop(self._retry_times)
        self.wake()
        self._arm_timer()

    async def _finish(self) -> None:
        """Let the sends in flight finish and be recorded. If this is cancelled
        (the worker's stop timed out), they are cut short and their claims are
        left for the sweep."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            while self._in_flight:
                await asyncio.wait(set(self._in_flight))
        finally:
            for task in self._in_flight:
                task.cancel()
            await asyncio.gather(*self._in_flight, return_exceptions=True)


def _log_step(send: ClaimedSend, step: Step) -> None:
    if isinstance(step, Sent):
        # DEBUG: the provider client has logged the acceptance at INFO already.
        log.debug(
            "send delivered",
            extra={
                "action": "send_sent",
                "message_id": send.id,
                "attempt": send.attempt,
                "provider_message_id": step.provider_message_id,
            },
        )
    else:
        retry = isinstance(step, Retry)
        log.log(
            logging.INFO if retry else logging.WARNING,
            "send will be retried" if retry else "send failed",
            extra={
                "action": "send_retry" if retry else "send_failed",
                "message_id": send.id,
                "attempt": send.attempt,
                "error": step.error,
            },
        )

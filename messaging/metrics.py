"""Prometheus metrics (aioprometheus), one registry per app.

A registry per app rather than the library's global one, so that several apps
in one process (the tests) never share counters.
"""

from __future__ import annotations

import time
from typing import Any

from aioprometheus.collectors import Counter, Gauge, Histogram, Registry
from aioprometheus.renderer import render

_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
)  # fmt: skip
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class Metrics:
    """Every metric the service exports, with methods named for what happened."""

    def __init__(self) -> None:
        self.registry = Registry()
        self._webhook_counts: dict[tuple[str, str], int] = {}
        self._ingest_latency_by_channel: dict[str, Any] = {}
        r = self.registry
        self.webhooks = Counter(
            "messaging_webhooks_total", "Provider webhooks by channel and outcome.", registry=r
        )
        self.ingest_latency = Histogram(
            "messaging_ingest_seconds",
            "Time from a webhook's arrival to its answer, by channel.",
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.ingest_batch = Histogram(
            "messaging_ingest_batch_size",
            "Webhooks stored per group commit.",
            registry=r,
            buckets=_BATCH_BUCKETS,
        )
        self.ingest_commits = Counter(
            "messaging_ingest_commits_total", "Commits made by the ingest path.", registry=r
        )
        self.ingest_commit_latency = Histogram(
            "messaging_ingest_commit_seconds",
            "Duration of one group commit (INSERT and COMMIT).",
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        # Worker metrics (worker/).
        self.events_queued = Gauge(
            "messaging_events_queued", "Inbound events due for processing.", registry=r
        )
        self.events_oldest_due_age = Gauge(
            "messaging_events_oldest_due_age_seconds",
            "How long the oldest inbound event due for processing has been due (0: none is).",
            registry=r,
        )
        self.events_claimed_total = Counter(
            "messaging_events_claimed_total", "Inbound events claimed by a worker.", registry=r
        )
        self.events_processed_total = Counter(
            "messaging_events_processed_total", "Inbound events processed.", registry=r
        )
        self.events_errored_total = Counter(
            "messaging_events_errored_total", "Inbound event attempts that failed.", registry=r
        )
        self.events_dead_lettered_total = Counter(
            "messaging_events_dead_lettered_total",
            "Inbound events given up on after the last retry.",
            registry=r,
        )
        self.events_stale_claims_total = Counter(
            "messaging_events_stale_claims_total",
            "Claims returned by the sweep after the claim timeout (a crashed worker).",
            registry=r,
        )
        self.sweep_last_success = Gauge(
            "messaging_sweep_last_success_timestamp_seconds",
            "When this worker last finished a whole sweep (Unix time): a stalled sweep "
            "freezes the backlog gauges, which this lets an alert see.",
            registry=r,
        )
        self.pruned_rows_total = Counter(
            "messaging_pruned_rows_total",
            "Rows deleted by retention, by table (inbound_events, idempotency_keys, "
            "stream_events).",
            registry=r,
        )
        self.worker_batch = Histogram(
            "messaging_worker_batch_size",
            "Events per claimed batch.",
            registry=r,
            buckets=_BATCH_BUCKETS,
        )
        self.processing_latency = Histogram(
            "messaging_event_latency_seconds",
            "Time from an event's receipt to its message's commit.",
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.listener_reconnects = Counter(
            "messaging_listener_reconnects_total",
            "Times the LISTEN connection was re-established.",
            registry=r,
        )
        self.notification_queue_usage = Gauge(
            "messaging_pg_notification_queue_usage",
            "pg_notification_queue_usage(): fraction of the NOTIFY queue in use.",
            registry=r,
        )
        self.listener_up = Gauge(
            "messaging_listener_up",
            "1 while the process's LISTEN connection listens, 0 while it (re)connects.",
            registry=r,
        )
        # Reads and the replica (store/replica.py).
        self.reads_total = Counter(
            "messaging_reads_total",
            "Conversation list reads by the database that answered them (replica or primary).",
            registry=r,
        )
        self.replica_fallbacks_total = Counter(
            "messaging_replica_fallbacks_total",
            "Reads meant for the replica that the primary answered, by reason (down, "
            "lagging, failed).",
            registry=r,
        )
        self.replica_up = Gauge(
            "messaging_replica_up",
            "1 while the read replica answers its lag check, 0 while it does not.",
            registry=r,
        )
        self.replica_lag = Gauge(
            "messaging_replica_lag_seconds",
            "How far the read replica may be behind the primary, as of its last check.",
            registry=r,
        )
        # The event stream (stream/hub.py, http/events.py).
        self.streams_open = Gauge(
            "messaging_streams_open", "Event streams (GET /api/events) open.", registry=r
        )
        self.stream_events_sent_total = Counter(
            "messaging_stream_events_sent_total",
            "Events written to the event streams' sockets.",
            registry=r,
        )
        self.stream_slow_consumers_total = Counter(
            "messaging_stream_slow_consumers_total",
            "Event streams ended because their consumer fell too far behind.",
            registry=r,
        )
        self.streams_refused_total = Counter(
            "messaging_streams_refused_total",
            "Event streams refused (503), by reason (limit, shutdown).",
            registry=r,
        )
        self._streams_open = 0
        # Counted here, set on the counter when rendered: per write, an int is
        # cheaper than the collector's labelled add.
        self._stream_events_sent = 0
        # Provider clients (providers/client.py).
        self.provider_calls = Counter(
            "messaging_provider_requests_total",
            "Send requests to a provider, by provider and outcome (accepted, retry, rejected).",
            registry=r,
        )
        self.provider_latency = Histogram(
            "messaging_provider_request_seconds",
            "Duration of one send request to a provider, timeouts included.",
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )

        # Sends (http/sends.py) and their delivery (worker/delivery.py).
        self.send_requests = Counter(
            "messaging_send_requests_total",
            "Send requests by channel and outcome (queued, replayed, invalid, conflict,"
            " unavailable, error).",
            registry=r,
        )
        self.send_request_latency = Histogram(
            "messaging_send_request_seconds",
            "Time from a send's arrival to its answer, by channel.",
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        self.sends_queued = Gauge(
            "messaging_sends_queued", "Sends due for delivery (status queued, due now).", registry=r
        )
        self.sends_claimed_total = Counter(
            "messaging_sends_claimed_total", "Sends claimed for a delivery attempt.", registry=r
        )
        self.sends_sent_total = Counter(
            "messaging_sends_sent_total", "Sends the provider accepted, by channel.", registry=r
        )
        self.sends_retried_total = Counter(
            "messaging_sends_retried_total",
            "Delivery attempts that will be retried (429, 5xx, timeouts), by channel.",
            registry=r,
        )
        self.sends_failed_total = Counter(
            "messaging_sends_failed_total",
            "Sends given up on (refused, or out of attempts), by channel.",
            registry=r,
        )
        self.sends_stale_claims_total = Counter(
            "messaging_sends_stale_claims_total",
            "Send claims returned by the sweep after the claim timeout (a crashed worker).",
            registry=r,
        )
        self.send_latency = Histogram(
            "messaging_send_latency_seconds",
            "Time from a send's commit (its 202) to the provider's acceptance, by channel.",
            registry=r,
            buckets=_LATENCY_BUCKETS,
        )
        # The counters the alerts and the dashboard (deploy/) read with increase() and
        # rate() start at 0: a series born at 1 has no increase, and the first dead
        # letter or failed send after a start would raise no alert.
        self.events_dead_lettered_total.set({}, 0)
        for counter in (self.sends_sent_total, self.sends_retried_total, self.sends_failed_total):
            for channel in ("sms", "email"):
                counter.set({"channel": channel}, 0)

    def send_request(self, channel: str, outcome: str, seconds: float) -> None:
        self.send_requests.inc({"channel": channel, "outcome": outcome})
        self.send_request_latency.add({"channel": channel}, seconds)

    def sends_claimed(self, count: int) -> None:
        self.sends_claimed_total.add({}, count)

    def send_sent(self, channel: str, latency_s: float) -> None:
        self.sends_sent_total.inc({"channel": channel})
        self.send_latency.add({"channel": channel}, latency_s)

    def send_retried(self, channel: str) -> None:
        self.sends_retried_total.inc({"channel": channel})

    def send_failed(self, channel: str) -> None:
        self.sends_failed_total.inc({"channel": channel})

    def send_stale_claims_returned(self, count: int) -> None:
        self.sends_stale_claims_total.add({}, count)

    def sends_observed(self, due: int) -> None:
        self.sends_queued.set({}, due)

    def provider_call(self, provider: str, outcome: str, seconds: float) -> None:
        self.provider_calls.inc({"provider": provider, "outcome": outcome})
        self.provider_latency.add({"provider": provider}, seconds)

    def webhook(self, channel: str, outcome: str, seconds: float) -> None:
        # Once per webhook, so kept off aioprometheus's per-call label hashing:
        # counts go to a plain dict (copied into the counter when rendered), and
        # latencies straight into the label's aggregator, looked up once.
        key = (channel, outcome)
        self._webhook_counts[key] = self._webhook_counts.get(key, 0) + 1
        latency = self._ingest_latency_by_channel.get(channel)
        if latency is None:
            self.ingest_latency.add({"channel": channel}, seconds)
            self._ingest_latency_by_channel[channel] = self.ingest_latency.get_value(
                {"channel": channel}
            )
        else:
            latency.observe(seconds)

    def ingest_committed(self, rows: int, seconds: float) -> None:
        self.ingest_commits.inc({})
        self.ingest_batch.add({}, rows)
        self.ingest_commit_latency.add({}, seconds)

    def events_claimed(self, count: int) -> None:
        self.events_claimed_total.add({}, count)
        self.worker_batch.add({}, count)

    def events_processed(self, latencies_s: list[float]) -> None:
        """Events committed as processed, each with its time since receipt."""
        self.events_processed_total.add({}, len(latencies_s))
        for seconds in latencies_s:
            self.processing_latency.add({}, seconds)

    def event_failed(self, *, dead_lettered: bool) -> None:
        self.events_errored_total.inc({})
        if dead_lettered:
            self.events_dead_lettered_total.inc({})

    def stale_claims_returned(self, count: int) -> None:
        self.events_stale_claims_total.add({}, count)

    def swept(self) -> None:
        self.sweep_last_success.set({}, time.time())

    def pruned(self, table: str, rows: int) -> None:
        self.pruned_rows_total.add({"table": table}, rows)

    def listener_reconnected(self) -> None:
        self.listener_reconnects.inc({})

    def listener_state(self, *, up: bool) -> None:
        self.listener_up.set({}, 1 if up else 0)

    def read_served(self, database: str) -> None:
        self.reads_total.inc({"database": database})

    def replica_fallback(self, reason: str) -> None:
        self.replica_fallbacks_total.inc({"reason": reason})

    def replica_checked(self, *, up: bool, lag_s: float | None) -> None:
        """lag_s None: not known (down, or not yet caught up): NaN, not the
        last value known."""
        self.replica_up.set({}, 1 if up else 0)
        self.replica_lag.set({}, float("nan") if lag_s is None else lag_s)

    def stream_opened(self) -> None:
        self._streams_open += 1
        self.streams_open.set({}, self._streams_open)

    def stream_closed(self) -> None:
        self._streams_open -= 1
        self.streams_open.set({}, self._streams_open)

    def stream_refused(self, reason: str) -> None:
        self.streams_refused_total.inc({"reason": reason})

    def stream_slow_consumer(self) -> None:
        self.stream_slow_consumers_total.inc({})

    def stream_events_sent(self, count: int) -> None:
        self._stream_events_sent += count

    def queue_observed(
        self, due: int, oldest_due_age_s: float, notification_queue_usage: float
    ) -> None:
        self.events_queued.set({}, due)
        self.events_oldest_due_age.set({}, oldest_due_age_s)
        self.notification_queue_usage.set({}, notification_queue_usage)

    def render(self, accept: list[str]) -> tuple[bytes, dict[str, str]]:
        for (channel, outcome), count in self._webhook_counts.items():
            self.webhooks.set({"channel": channel, "outcome": outcome}, count)
        self.stream_events_sent_total.set({}, self._stream_events_sent)
        content, headers = render(self.registry, accept)
        return content, dict(headers)

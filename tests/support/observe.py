"""Positive signals from a worker in the test's process, for tests that show
something did not happen: they wait until the thing that could have done it had
its chance (N sweeps ran, the loop was woken), then look.

Both wrap a public method on the instance: the sweep loop looks sweep_once up
on every round, and the claim loop looks drain up when the worker starts (so
count_drains must be called before start)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from messaging.worker.runner import Worker
from messaging.worker.sweep import SweepResult


def count_sweeps(worker: Worker) -> list[SweepResult]:
    """The results of the sweeps the worker completes from now on, appended as
    each one finishes."""
    done: list[SweepResult] = []
    sweep_once: Callable[[], Awaitable[SweepResult]] = worker.sweeper.sweep_once

    async def counted() -> SweepResult:
        result = await sweep_once()
        done.append(result)
        return result

    worker.sweeper.sweep_once = counted  # type: ignore[method-assign]
    return done


def count_drains(worker: Worker) -> list[int | None]:
    """One entry per time the claim loop is woken: None while its drain runs,
    then the number of events it claimed. Call before worker.start()."""
    drains: list[int | None] = []
    drain = worker.inbound.drain

    async def counted() -> int:
        drains.append(None)
        index = len(drains) - 1
        drains[index] = claimed = await drain()
        return claimed

    worker.inbound.drain = counted  # type: ignore[method-assign]
    return drains

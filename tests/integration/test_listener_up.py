"""messaging_listener_up, what the "listener down" alert watches: 0 before the
LISTEN connection listens and for as long as it cannot reconnect, 1 while it
listens."""

from __future__ import annotations

from messaging.metrics import Metrics
from messaging.worker.listener import Listener
from tests.support.metrics import read
from tests.support.outage import DatabaseOutage
from tests.support.waiting import wait_until

UP = "messaging_listener_up"


async def test_listener_up_follows_the_connection_through_an_outage(
    database_url: str, database_outage: DatabaseOutage
) -> None:
    metrics = Metrics()
    listener = Listener(database_url, metrics, reconnect_base_s=0.05, reconnect_cap_s=0.2)
    assert read(metrics).value(UP) == 0  # not yet listening: down, not absent
    listener.start()
    try:
        await wait_until(lambda: read(metrics).value(UP) == 1, within=5)
        assert listener.connected
        async with database_outage:
            await wait_until(lambda: read(metrics).value(UP) == 0, within=5)
            ok, _details = await listener.readiness()
            assert not ok
        await wait_until(lambda: read(metrics).value(UP) == 1, within=5)
        assert listener.connected
    finally:
        await listener.close()
    assert read(metrics).value(UP) == 0

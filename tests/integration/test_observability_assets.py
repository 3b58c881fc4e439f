"""The operator's assets under deploy/: the Prometheus alerting rules and the
Grafana dashboard name only metrics that a running service serves at /metrics,
promtool accepts the rules, the example configuration and the dashboard's
queries, and the 5xx alert matches exactly the webhook outcomes answered 5xx."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
import yaml
from aiohttp.test_utils import make_mocked_request

from messaging.config import Settings
from messaging.errors import (
    ClientGone,
    DatabaseUnavailable,
    InvalidRequest,
    SignatureRejected,
)
from messaging.http.problems import outcome_of, problem_for
from tests.pg import ROOT
from tests.support.aliases import ServerFactory
from tests.support.metrics import Samples
from tests.support.payloads import SMS_SEND, SMS_WEBHOOK
from tests.support.service import Service, serve_on_own_port
from tests.support.waiting import wait_until

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "messaging.json"

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed: `apt-get install --no-install-recommends prometheus` "
    "(Debian's package, which .ci/run installs)",
)

_METRIC = re.compile(r"\bmessaging_[a-z_]+")
_HISTOGRAM_SERIES = re.compile(r"_(bucket|sum|count)$")


def strings(node: Any) -> Iterator[str]:
    """Every string in a parsed YAML or JSON document."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def named_metrics() -> set[str]:
    """The metrics the rules and the dashboard name (in queries, summaries,
    runbooks, descriptions), a histogram's series by the histogram's name."""
    found = set()
    for text in [*strings(alert_rules()), *strings(dashboard())]:
        for name in _METRIC.findall(text):
            found.add(_HISTOGRAM_SERIES.sub("", name))
    return found


def exposed(samples: Samples, name: str) -> bool:
    return any(
        samples.has(series) for series in (name, f"{name}_bucket", f"{name}_count", f"{name}_sum")
    )


@pytest.fixture
async def service(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> AsyncIterator[Service]:
    server = await serve_on_own_port(
        aiohttp_server, settings.replace(sweep_interval_ms=100), worker=True
    )
    async with aiohttp.ClientSession() as session:
        yield Service(server, session, db)


async def test_every_metric_the_assets_name_is_served(service: Service) -> None:
    names = named_metrics()
    # The extraction finds what it must (a histogram among them), or it proves nothing.
    assert {
        "messaging_webhooks_total",
        "messaging_event_latency_seconds",
        "messaging_listener_up",
        "messaging_events_oldest_due_age_seconds",
    } <= names
    # Some series appear once observed: a webhook processed, a send sent, a sweep done.
    status, answer = await service.post("/api/webhooks/sms", SMS_WEBHOOK)
    assert status == 202, answer
    sent = await service.send(SMS_SEND)
    await service.wait_for(sent, "sent")

    async def observed() -> Samples | None:
        samples = await service.metrics()
        done = samples.total("messaging_events_processed_total") == 1 and samples.has(
            "messaging_events_oldest_due_age_seconds"
        )
        return samples if done else None

    samples = await wait_until(observed, within=10, interval=0.05)
    missing = sorted(name for name in names if not exposed(samples, name))
    assert missing == [], f"named in deploy/ but not served at /metrics: {missing}"


def test_every_rule_has_a_summary_and_a_one_line_runbook() -> None:
    rules = alert_rules()
    assert len(rules) >= 7
    for rule in rules:
        annotations = rule["annotations"]
        assert annotations["summary"], rule["alert"]
        runbook = annotations["runbook"]
        assert runbook and "\n" not in runbook and len(runbook) <= 200, rule["alert"]


def test_the_dashboard_asks_for_its_prometheus_and_every_panel_uses_it() -> None:
    board = dashboard()
    [variable] = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    source = {"type": "prometheus", "uid": f"${{{variable['name']}}}"}
    panels = board["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"] and all(t["datasource"] == source for t in panel["targets"])


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (DatabaseUnavailable("down"), 503),
        (RuntimeError("a bug"), 500),
        (InvalidRequest("bad"), 400),
        (SignatureRejected("mismatch", "no signature matches", 'Bearer realm="x"'), 401),
        (ClientGone("gone"), 499),
    ],
)
def test_the_5xx_alert_matches_the_outcomes_answered_5xx(exc: Exception, status: int) -> None:
    # Not listed: two outcomes shared by statuses on either side of 500, which the
    # outcome label cannot tell apart: slow_body (408, and the 503 of too many
    # requests waiting for their body) and error (500, and the 422 of data the
    # database refuses). The alert leaves the first out and takes the second in.
    [rule] = [r for r in alert_rules() if r["alert"] == "MessagingWebhooksAnswered5xx"]
    matcher = re.search(r'messaging_webhooks_total\{outcome=~"([^"]+)"\}', rule["expr"])
    assert matcher is not None
    answer = problem_for(make_mocked_request("POST", "/api/webhooks/sms"), exc)
    assert answer.status == status
    # Prometheus anchors its regular expressions.
    matched = re.fullmatch(matcher[1], outcome_of(exc)) is not None
    assert matched == (status >= 500)


@needs_promtool
@pytest.mark.parametrize(("check", "path"), [("rules", ALERTS), ("config", PROMETHEUS_CONFIG)])
def test_promtool_accepts_the_rules_and_the_example_configuration(check: str, path: Path) -> None:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", check, str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_parses_the_dashboards_queries(tmp_path: Path) -> None:
    # promtool parses PromQL in rule files only: the queries as recording rules,
    # with Grafana's interval variable given a value.
    queries = [t["expr"] for panel in dashboard()["panels"] for t in panel["targets"]]
    rules = [
        {"record": f"dashboard:query_{i}", "expr": q.replace("$__rate_interval", "5m")}
        for i, q in enumerate(queries)
    ]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout

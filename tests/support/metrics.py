"""Reading metrics the one way: the Prometheus text that /metrics serves,
parsed into samples looked up by name and labels. `scrape` reads an app's
/metrics over HTTP, `read` renders a Metrics registry (a worker's) the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp.test_utils import TestClient

from messaging.metrics import Metrics

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


class Samples:
    """The samples of one exposition."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples

    def matching(self, name: str, **labels: str) -> list[Sample]:
        """The samples of `name` whose labels include `labels`."""
        return [
            s
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the matching samples; fails when there is none."""
        found = self.matching(name, **labels)
        if not found:
            raise AssertionError(f"no sample {name} with labels {labels}")
        return sum(s.value for s in found)

    def total(self, name: str, **labels: str) -> float:
        """The sum of the matching samples, 0 when there is none (a counter
        never incremented has no sample)."""
        return sum(s.value for s in self.matching(name, **labels))

    def has(self, name: str, **labels: str) -> bool:
        return bool(self.matching(name, **labels))


def parse(text: str) -> Samples:
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise AssertionError(f"not a sample line: {line!r}")
        labels = dict(_LABEL.findall(match["labels"] or ""))
        samples.append(Sample(match["name"], labels, float(match["value"])))
    return Samples(samples)


def read(metrics: Metrics) -> Samples:
    """A Metrics registry's samples, rendered as /metrics would serve them."""
    content, _headers = metrics.render([])
    return parse(content.decode())


async def scrape(client: TestClient) -> Samples:  # type: ignore[type-arg]
    """The samples an app serves at /metrics."""
    response = await client.get("/metrics")
    assert response.status == 200, await response.text()
    return parse(await response.text())

"""The queue benchmarks' fixtures: the ``bench_queue`` schema and a private topology.

``stage`` (one per session) prepares the schema and drops it at the end;
``topology`` (one per module) names a topology of its own and deletes, at the end,
whatever was declared under those names -- by the module, or by a worker or relay
that re-declared it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bench.queue import stage as queue_stage
from lab.queue.topology import Topology


@pytest.fixture(scope="session")
def stage() -> Iterator[queue_stage.Stage]:
    asyncio.run(queue_stage.prepare())
    try:
        yield queue_stage.from_settings()
    finally:
        asyncio.run(queue_stage.drop())


@pytest.fixture(scope="module")
def topology(stage: queue_stage.Stage) -> Iterator[Topology]:
    made = queue_stage.topology_for(queue_stage.new_prefix(), stage.retry_delays)
    try:
        yield made
    finally:
        asyncio.run(queue_stage.delete(stage.rabbitmq_url, made))

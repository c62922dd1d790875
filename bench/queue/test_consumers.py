"""The lab's consumer against aio-pika's: bare consume + ack, and the full pipeline.

The same RabbitMQ and PostgreSQL for both. Each run preloads N persistent
``task.created`` events (``stage.preload``: the relay's own messages, confirmed)
into a private work queue, then one side drains it in a process of its own
(``consumers.py``: the lab's Worker as ``python -m lab.queue worker`` runs it, on
its default loop -- uvloop here; aio-pika as its users write it, on uvloop), with
the worker CLI's defaults, prefetch 20, concurrency 10 and batches of up to 20, and
prefetch 20 for aio-pika (which then handles up to 20 at once). msgs/s = N / the time from the
first delivery reaching the side's code to the N-th ack (``consumers.py``).

* bare: no decoding, no effect, just the ack (the Worker's ``step`` replaced by
  one that decides "processed" at once: its delivery, life cycle and ack remain);
* full: ``events.decode``, the idempotency key + the notification in one statement
  (in ``bench_queue``; the lab's Worker puts a batch in each, aio-pika's consumer one
  message), ack. After each run, every event must have
  exactly one notification and the queue must be empty.

Rounds interleave the sides, the order alternating (lab first in odd rounds), and
the figure is the median of the rounds. Targets (the issue's): lab / aio-pika ≥ 1.2×
in msgs/s for both.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys

import pytest

from bench.queue import stage as queue_stage
from bench.registry import Comparison
from bench.report import ROOT

ROUNDS, QUICK_ROUNDS = 5, 1
MESSAGES = {"bare": 10_000, "full": 3_000}
QUICK_MESSAGES = {"bare": 500, "full": 300}
SIDES = ("lab", "aio-pika")
TIMEOUT = 150  # seconds for one side's process, start to exit


def measurement(pipeline: str, side: str) -> str:
    return f"queue/{pipeline}/{side}"


COMPARISONS = [
    Comparison("queue", "consume + ack, no work (msgs/s)", measurement("bare", "lab"),
               measurement("bare", "aio-pika"), "aio-pika 10 (uvloop)", (">=", 1.2)),
    Comparison("queue", "decode + PostgreSQL effect + ack (msgs/s)",
               measurement("full", "lab"), measurement("full", "aio-pika"),
               "aio-pika 10 (uvloop)", (">=", 1.2)),
]


def drain(side: str, pipeline: str, count: int, prefix: str,
          stage: queue_stage.Stage) -> dict:
    """Run one side's process until it has acked ``count`` messages; its JSON line."""
    env = {**os.environ, "DATABASE_URL": stage.app_url, "RABBITMQ_URL": stage.rabbitmq_url}
    done = subprocess.run([sys.executable, "-m", "bench.queue.consumers", side, pipeline,
                           "--count", str(count), "--prefix", prefix],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=ROOT)
    if done.returncode != 0:
        pytest.fail(f"{side} {pipeline} exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("pipeline", ["bare", "full"])
def test_consumers_side_by_side(pipeline, stage, topology, record, quick, capsys):
    rounds = QUICK_ROUNDS if quick else ROUNDS
    count = (QUICK_MESSAGES if quick else MESSAGES)[pipeline]
    prefix = queue_stage.prefix_of(topology)
    rates: dict[str, list[float]] = {side: [] for side in SIDES}
    for round_no in range(1, rounds + 1):
        for side in SIDES if round_no % 2 else SIDES[::-1]:  # who goes first alternates
            asyncio.run(queue_stage.empty_tables(stage.owner_url))
            loaded = asyncio.run(queue_stage.preload(stage.rabbitmq_url, topology, count))
            assert loaded == count, f"the work queue held {loaded} messages, not {count}"
            result = drain(side, pipeline, count, prefix, stage)
            assert result["messages"] == result["processed"] == count, result
            ready, consumers = asyncio.run(
                queue_stage.queue_state(stage.rabbitmq_url, topology.work.name))
            assert (ready, consumers) == (0, 0), f"{side} left {ready} messages behind"
            if pipeline == "full":  # one effect per event (message ids are unique)
                effects = asyncio.run(queue_stage.fetchval(
                    stage.owner_url, "SELECT count(*) FROM notifications"))
                assert effects == count, f"{side}: {effects} effects for {count} events"
            rates[side].append(count / result["seconds"])
        with capsys.disabled():
            print(f"\nqueue {pipeline} round {round_no}/{rounds} msgs/s: " + ", ".join(
                f"{side} {runs[-1]:,.0f}" for side, runs in rates.items()),
                file=sys.stderr, end="")
    for side, runs in rates.items():
        record(measurement(pipeline, side), statistics.median(runs), "ops/s")

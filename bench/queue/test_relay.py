"""The outbox relay's throughput with publisher confirms: an absolute target, no twin.

Each run fills ``bench_queue.outbox`` with M unpublished ``task.created`` rows
(payloads as the API writes them), then runs ``lab.queue.relay.Relay`` in a
process of its own as ``python -m lab.queue relay`` would (uvloop, batches of
500, every batch confirmed before it is marked; ``timed_relay.py``) until all M
are published. events/s = M / the time from the first claim to the commit of the
last batch. After each run no row may be left unpublished, and the private work
queue must hold exactly M messages (then purged). Three runs, the median. Target
(the issue's): ≥ 5,000 events/s -- a bound on the lab's own figure, since the
comparison with a production relay is not part of the issue.
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

RUNS, QUICK_RUNS = 3, 1
ROWS, QUICK_ROWS = 10_000, 1_000
TIMEOUT = 150  # seconds for the relay's process, start to exit
MEASUREMENT = "queue/relay/lab"

COMPARISONS = [
    Comparison("queue", "outbox relay with publisher confirms (events/s)", MEASUREMENT, None,
               "(absolute target)", (">=", 5000.0)),
]


def relay(count: int, prefix: str, stage: queue_stage.Stage) -> dict:
    env = {**os.environ, "DATABASE_URL": stage.app_url, "RABBITMQ_URL": stage.rabbitmq_url}
    done = subprocess.run([sys.executable, "-m", "bench.queue.timed_relay", "--count",
                           str(count), "--prefix", prefix],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=ROOT)
    if done.returncode != 0:
        pytest.fail(f"the relay exited {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def test_relay_throughput(stage, topology, record, quick, capsys):
    runs, count = (QUICK_RUNS, QUICK_ROWS) if quick else (RUNS, ROWS)
    rates = []
    for run_no in range(1, runs + 1):
        asyncio.run(queue_stage.empty_tables(stage.owner_url))
        asyncio.run(queue_stage.fill_outbox(stage.owner_url, count))
        result = relay(count, queue_stage.prefix_of(topology), stage)
        assert (result["published"], result["dead_lettered"]) == (count, 0), result
        left = asyncio.run(queue_stage.fetchval(
            stage.owner_url, "SELECT count(*) FROM outbox WHERE published_at IS NULL"))
        assert left == 0, f"{left} rows left unpublished"
        ready, _ = asyncio.run(queue_stage.queue_state(stage.rabbitmq_url, topology.work.name))
        assert ready == count, f"the work queue holds {ready} messages, not {count}"
        asyncio.run(queue_stage.purge(stage.rabbitmq_url, topology))  # the relay declared it
        rates.append(count / result["seconds"])
        with capsys.disabled():
            print(f"\nqueue relay run {run_no}/{runs}: {rates[-1]:,.0f} events/s",
                  file=sys.stderr, end="")
    record(MEASUREMENT, statistics.median(rates), "ops/s")

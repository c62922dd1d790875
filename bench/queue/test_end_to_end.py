"""End to end: a POST /tasks to its effect, through the outbox, the relay and the worker.

Four processes on the stage's schema and a private topology: the Task API
(``python -m lab.api --store postgres``), the relay (``python -m lab.queue relay``)
and the worker (``python -m lab.queue worker``), each with its CLI's defaults, and
this test. It POSTs tasks at a modest fixed rate (one every 20 ms, one connection,
kept alive) after one warm-up task has gone all the way through, and notes the wall
clock just before each request is sent. The effect of a task's ``task.created``
event is its ``notifications`` row, whose ``created_at`` is PostgreSQL's ``now()``:
the start of the worker's transaction, on the same machine's clock. So the latency
is ``created_at`` minus the send time: the API's statement (task + outbox row), the
relay's poll, publish and confirm, the broker's delivery, the worker's decode and
the start of its transaction -- not the commit or the ack that follow, well under a
millisecond. Read from the table once all rows are there, never by polling, so no
polling interval blurs the figures.

The relay polls an empty outbox every ``--interval``, 0.2 s by default
(``relay.INTERVAL``): at a rate this low every event waits for the next poll, so
the latency is about uniform over the 200 ms between polls plus a few ms of work:
expect p50 near 100 ms and p99 near 200 ms. LISTEN/NOTIFY would remove that wait.
No target and no production twin: the rows are the lab's figures alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import statistics
import sys
import time

import pytest

from bench.queue import stage as queue_stage
from bench.registry import Comparison
from bench.servers import free_port, wait_until_answering

RATE = 50  # POSTs per second
SECONDS, QUICK_SECONDS = 4, 1
TIMEOUT = 30.0  # seconds for the processes to start, and for the effects to appear

COMPARISONS = [
    Comparison("queue", f"POST /tasks → notification row, p50 (ms, {RATE} POST/s)",
               "queue/end-to-end-p50/lab", None, "(lab only: API + relay + worker)"),
    Comparison("queue", f"POST /tasks → notification row, p99 (ms, {RATE} POST/s)",
               "queue/end-to-end-p99/lab", None, "(lab only: API + relay + worker)"),
]


def post_task(conn: http.client.HTTPConnection, title: str) -> tuple[int, float]:
    """The new task's id and the wall-clock time just before the request was sent."""
    body = json.dumps({"title": title, "userId": 1})
    sent = time.time()
    conn.request("POST", "/tasks", body, {"Content-Type": "application/json"})
    answer = conn.getresponse()
    data = answer.read()
    assert answer.status == 201, (answer.status, data[:200])
    return json.loads(data)["data"]["id"], sent


async def effects(owner_url: str, task_ids: list[int]) -> dict[int, float]:
    """task id -> its notification's created_at (epoch seconds), for those that exist."""
    import asyncpg

    conn = await asyncpg.connect(owner_url)
    try:
        rows = await conn.fetch("SELECT task_id, extract(epoch FROM created_at) AS at "
                                "FROM notifications WHERE event_type = 'task.created' "
                                "AND task_id = ANY($1::int[])", task_ids)
    finally:
        await conn.close()
    return {row["task_id"]: float(row["at"]) for row in rows}


def wait_for_effects(owner_url: str, task_ids: list[int]) -> dict[int, float]:
    deadline = time.monotonic() + TIMEOUT
    while len(found := asyncio.run(effects(owner_url, task_ids))) < len(task_ids):
        if time.monotonic() > deadline:
            pytest.fail(f"{len(task_ids) - len(found)} of {len(task_ids)} tasks had no "
                        f"notification after {TIMEOUT:.0f} s")
        time.sleep(0.2)
    return found


def wait_for_consumer(url: str, queue: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while True:
        with contextlib.suppress(Exception):  # not declared yet: the worker declares it
            if asyncio.run(queue_stage.queue_state(url, queue))[1] >= 1:
                return
        if time.monotonic() > deadline:
            pytest.fail(f"no consumer on {queue} after {TIMEOUT:.0f} s")
        time.sleep(0.1)


def test_api_write_to_effect(stage, topology, tmp_path, record, quick, capsys):
    asyncio.run(queue_stage.empty_tables(stage.owner_url))
    prefix = queue_stage.prefix_of(topology)
    env = {**os.environ, "DATABASE_URL": stage.app_url, "RABBITMQ_URL": stage.rabbitmq_url,
           "QUEUE_EXCHANGE": topology.exchange.name, "QUEUE_WORK": topology.work.name,
           "QUEUE_DEAD_LETTER": topology.dead_letter.name, "LOG_LEVEL": "WARNING"}
    port = free_port()
    python = sys.executable
    with contextlib.ExitStack() as stack:
        api = stack.enter_context(queue_stage.started(
            [python, "-m", "lab.api", "--store", "postgres", "--no-migrate",
             "--no-access-log", "--port", str(port)], env, tmp_path / "api.log"))
        stack.enter_context(queue_stage.started([python, "-m", "lab.queue", "worker"], env,
                                                tmp_path / "worker.log"))
        stack.enter_context(queue_stage.started([python, "-m", "lab.queue", "relay"], env,
                                                tmp_path / "relay.log"))
        wait_until_answering(port, api, TIMEOUT)
        wait_for_consumer(stage.rabbitmq_url, topology.work.name)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        warm_up, _ = post_task(conn, f"{prefix} warm-up")
        wait_for_effects(stage.owner_url, [warm_up])  # all four are up and connected
        sent: dict[int, float] = {}
        total = RATE * (QUICK_SECONDS if quick else SECONDS)
        start = time.monotonic()
        for i in range(total):
            pause = start + i / RATE - time.monotonic()  # a fixed schedule, not back to back
            if pause > 0:
                time.sleep(pause)
            task_id, at = post_task(conn, f"{prefix} task {i}")
            sent[task_id] = at
        conn.close()
        found = wait_for_effects(stage.owner_url, list(sent))
    latencies = sorted((found[task_id] - at) * 1000 for task_id, at in sent.items())
    assert latencies[0] > 0, "an effect before its POST: the clocks disagree"
    p50 = statistics.median(latencies)
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    with capsys.disabled():
        print(f"\nqueue end to end, {total} tasks at {RATE}/s: p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms", file=sys.stderr, end="")
    record("queue/end-to-end-p50/lab", p50, "ms")
    record("queue/end-to-end-p99/lab", p99, "ms")

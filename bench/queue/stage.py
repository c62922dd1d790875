"""The stage the queue benchmarks share: a private topology, its messages, its tables.

RabbitMQ: names of their own, ``bench.<random>.tasks``, ``.work``, ``.work.retry.*``
and ``.dead``, planned like the lab's (``topology.plan``, with the retry delays of the
settings) and all deleted at the end. The messages are the relay's own
(``outbox.message_for``): valid ``task.created`` events, persistent, published
``mandatory`` through the topic exchange with publisher confirms.

PostgreSQL: schema ``bench_queue`` in ``lab_test`` (``bench/db/dataset.py``:
migrated, five users, no tasks). Every process connects as ``lab_app`` with
``search_path=bench_queue``, so the handler's ``processed_messages`` and
``notifications`` and the API's ``outbox`` are that schema's; the owner empties
them between runs (``lab_app`` may not TRUNCATE). Never ``public``, never ``lab``.

``started`` runs a process for a benchmark and always stops it by its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiormq
import asyncpg

from bench.db import dataset
from lab import settings
from lab.queue import outbox
from lab.queue.topology import Topology, declare, plan

SCHEMA = "bench_queue"
USERS = 5  # the end-to-end test's POSTs name user 1
CHUNK = 1000  # messages in flight at once while preloading
TIMEOUT = 30.0  # seconds: no setup step waits longer


@dataclass(frozen=True)
class Stage:
    rabbitmq_url: str
    app_url: str  # lab_app, search_path=bench_queue: what the lab's processes use
    owner_url: str  # lab_owner, search_path=bench_queue: empties the tables
    retry_delays: tuple[float, ...]


def from_settings() -> Stage:
    lab = settings.load()
    return Stage(lab.rabbitmq_url, dataset.with_search_path(lab.test_database_url, SCHEMA),
                 dataset.with_search_path(lab.test_database_owner_url, SCHEMA),
                 lab.queue_retry_delays)


def new_prefix() -> str:
    return f"bench.{uuid.uuid4().hex[:12]}"


def topology_for(prefix: str, retry_delays: tuple[float, ...]) -> Topology:
    return plan(f"{prefix}.tasks", f"{prefix}.work", retry_delays, f"{prefix}.dead")


# PostgreSQL --------------------------------------------------------------------
async def prepare() -> None:
    lab = settings.load()
    await dataset.prepare(lab.test_database_owner_url, lab.test_database_url, schema=SCHEMA,
                          users=USERS, tasks=0)


async def drop() -> None:
    await dataset.drop(settings.load().test_database_owner_url, SCHEMA)


async def empty_tables(owner_url: str) -> None:
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.execute("TRUNCATE outbox, processed_messages, notifications")
    finally:
        await conn.close()


async def fetchval(url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def fill_outbox(owner_url: str, count: int) -> None:
    """``count`` unpublished ``task.created`` rows, payloads as the API writes them."""
    await fetchval(owner_url, """INSERT INTO outbox (type, payload)
        SELECT 'task.created', jsonb_build_object(
            'id', i, 'title', 'Task ' || i, 'description', '', 'status', 'pending',
            'userId', 1, 'categoryId', NULL, 'createdAt', now(), 'updatedAt', now())
        FROM generate_series(1, $1) AS i""", count)


# RabbitMQ ----------------------------------------------------------------------
def message(task_id: int, topology: Topology) -> outbox.Outgoing:
    """What the relay would publish for a freshly created task."""
    now = datetime.now(UTC)
    task = {"id": task_id, "title": f"Task {task_id}", "description": "", "status": "pending",
            "userId": 1, "categoryId": None, "createdAt": now, "updatedAt": now}
    row = {"id": uuid.uuid4(), "type": "task.created", "occurred_at": now, "payload": task}
    made = outbox.message_for(row, topology)
    assert not made.dead, "a valid task must make a valid event"
    return made


async def preload(url: str, topology: Topology, count: int) -> int:
    """Publish ``count`` events, confirmed; the work queue's depth afterwards."""
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare(channel, topology)
        for start in range(0, count, CHUNK):
            batch = [message(i + 1, topology) for i in range(start, min(count, start + CHUNK))]
            async with asyncio.timeout(TIMEOUT), asyncio.TaskGroup() as group:
                for m in batch:
                    group.create_task(channel.basic_publish(
                        m.body, exchange=m.exchange, routing_key=m.routing_key,
                        properties=m.properties, mandatory=True))
        return await depth_on(channel, topology.work.name)
    finally:
        await connection.close()


async def depth_on(channel: aiormq.abc.AbstractChannel, queue: str) -> int:
    return (await channel.queue_declare(queue, passive=True)).message_count


async def queue_state(url: str, queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of ``queue``."""
    connection = await aiormq.connect(url)
    try:
        ok = await (await connection.channel()).queue_declare(queue, passive=True)
        return ok.message_count, ok.consumer_count
    finally:
        await connection.close()


async def purge(url: str, topology: Topology) -> None:
    connection = await aiormq.connect(url)
    try:
        channel = await connection.channel()
        for queue in topology.queues:
            await channel.queue_purge(queue.name)
    finally:
        await connection.close()


async def delete(url: str, topology: Topology) -> None:
    """Every queue and the exchange of ``topology``; no error for one never declared."""
    async with asyncio.timeout(TIMEOUT):
        connection = await aiormq.connect(url)
        try:
            channel = await connection.channel()
            for queue in topology.queues:
                await channel.queue_delete(queue.name)
            await channel.exchange_delete(topology.exchange.name)
        finally:
            await connection.close()


# Processes ---------------------------------------------------------------------
@contextlib.contextmanager
def started(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """``args`` as a process, stderr to ``log``; SIGTERM at the end, SIGKILL if it lingers."""
    with log.open("wb") as err:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)  # the CLIs finish what they started, then exit 0
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()  # it ignored SIGTERM: do not leave it behind
            process.wait()


def prefix_of(topology: Topology) -> str:
    """The inverse of ``topology_for``, to hand a topology to a child process."""
    return topology.exchange.name.removesuffix(".tasks")

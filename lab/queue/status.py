"""``python -m lab.queue status``: where every event is, in one look.

What the broker holds -- each queue's ready messages and consumers, read with a
passive ``queue.declare`` (which changes nothing, and fails with NOT_FOUND for a queue
nobody declared) -- and what PostgreSQL holds: the outbox rows waiting for the relay
and those published, the idempotency keys, and the notifications, counted by the
worker that wrote them. Following one event: ``outbox`` (waiting) → ``published`` →
the work queue (ready, or unacked in a worker) → a notification and a key, or a
retry queue, or the dead-letter queue.

Each side is read on its own: with RabbitMQ stopped, the outbox's side still shows
(events waiting, none lost), and the broker's side says why it could not be read.
``gather`` does the I/O; ``render`` is pure, lines in a fixed order.

What production uses instead: the management plugin (its UI and HTTP API show the
same counts, plus rates and unacked messages per consumer), the Prometheus plugin
for dashboards, and the database's own monitoring for the outbox's lag.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiormq
import aiormq.exceptions
import asyncpg

from lab.cli import os_reason
from lab.queue.topology import Topology, TopologyError, connect, where
from lab.settings import redact

TIMEOUT = 5.0  # seconds for each side


@dataclass(frozen=True)
class QueueCount:
    name: str
    role: str  # work, retry 1s, dead letter
    messages: int | None  # ready (not delivered, or given back); None: not declared
    consumers: int = 0


@dataclass
class Status:
    broker: str  # where, without the password
    database: str
    queues: list[QueueCount] = field(default_factory=list)
    broker_error: str | None = None
    outbox_waiting: int = 0
    outbox_published: int = 0
    processed: int = 0
    by_worker: dict[str, int] = field(default_factory=dict)  # notifications per worker
    database_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.broker_error is None and self.database_error is None


def _roles(topology: Topology) -> list[tuple[str, str]]:
    return [(topology.work.name, "work"),
            *((q.name, f"retry after {q.delay:g} s") for q in topology.retries),
            (topology.dead_letter.name, "dead letter")]


async def _broker(status: Status, url: str, topology: Topology) -> None:
    try:
        connection = await connect(url, timeout=TIMEOUT)
    except TopologyError as exc:
        status.broker_error = str(exc)
        return
    try:
        for name, role in _roles(topology):
            channel = await connection.channel()  # NOT_FOUND closes it: one per queue
            try:
                ok = await channel.queue_declare(name, passive=True, timeout=TIMEOUT)
            except aiormq.exceptions.ChannelNotFoundEntity:
                status.queues.append(QueueCount(name, role, None))
                continue
            status.queues.append(QueueCount(name, role, ok.message_count, ok.consumer_count))
            await channel.close()
    finally:
        await connection.close()


async def _database(status: Status, url: str) -> None:
    try:
        conn = await asyncpg.connect(url, timeout=TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        status.database_error = f"cannot connect to PostgreSQL at {redact(url)}: " + (
            os_reason(exc) if isinstance(exc, OSError) else str(exc).splitlines()[0])
        return
    try:
        waiting, published = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE published_at IS NULL), "
            "count(*) FILTER (WHERE published_at IS NOT NULL) FROM outbox")
        status.outbox_waiting, status.outbox_published = waiting, published
        status.processed = await conn.fetchval("SELECT count(*) FROM processed_messages")
        rows = await conn.fetch("SELECT coalesce(worker, '(unnamed)') AS worker, count(*) "
                                "FROM notifications GROUP BY 1 ORDER BY 1")
        status.by_worker = {row["worker"]: row["count"] for row in rows}
    except asyncpg.UndefinedTableError as exc:
        status.database_error = (f"{exc.args[0] if exc.args else exc}: run "
                                 "'python -m lab.db migrate' first")
    finally:
        await conn.close()


async def gather(rabbitmq_url: str, database_url: str, topology: Topology) -> Status:
    """Both sides at once; each one's failure is kept in the Status, never raised."""
    status = Status(where(rabbitmq_url), redact(database_url))
    await asyncio.gather(_broker(status, rabbitmq_url, topology),
                         _database(status, database_url))
    return status


def render(status: Status) -> list[str]:
    lines = [f"RabbitMQ at {status.broker}"]
    if status.broker_error is not None:
        lines.append(f"  {status.broker_error}")
    width = max((len(q.name) for q in status.queues), default=0)
    for q in status.queues:
        if q.messages is None:
            counts = "not declared (python -m lab.queue topology declares it)"
        else:
            counts = f"{q.messages:>6} ready" + (
                f", {q.consumers} consumer{'s' * (q.consumers != 1)}" if q.role == "work"
                else "")
        lines.append(f"  {q.name:<{width}}  {counts}  ({q.role})")
    lines.append(f"PostgreSQL at {status.database}")
    if status.database_error is not None:
        lines.append(f"  {status.database_error}")
        return lines
    total = sum(status.by_worker.values())
    shares = ", ".join(f"{name} {count}" for name, count in status.by_worker.items())
    lines += [f"  outbox         {status.outbox_waiting:>6} waiting for the relay, "
              f"{status.outbox_published} published",
              f"  processed      {status.processed:>6} idempotency keys",
              f"  notifications  {total:>6}" + (f": {shares}" if shares else "")]
    return lines

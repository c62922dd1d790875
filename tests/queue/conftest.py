"""Fixtures shared by the queue's tests against the real services.

``owner`` empties the workers' tables; ``names`` and ``channel`` give a test a
RabbitMQ topology of its own (``test.<random>.*``, retry delays of 0.1 and 0.2 s),
deleted at the end. test_relay.py and test_topology.py define their own ``owner``,
``names`` and ``channel`` (an emptied outbox; other delays), which win in those modules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import aiormq
import asyncpg
import pytest

from lab import settings
from lab.queue import topology as topo

TIMEOUT = 20  # seconds: no fixture waits longer for any one thing
DELAYS = (0.1, 0.2)


@pytest.fixture
async def owner(migrated_public, owner_url):
    """The owner's connection, the workers' tables emptied (the API's role may not TRUNCATE)."""
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.execute("TRUNCATE processed_messages, notifications RESTART IDENTITY")
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def names():
    """Settings with this test's own names; whatever was declared under them (by the
    test, or by a worker that re-declared it) is deleted at the end."""
    prefix = f"test.{uuid.uuid4().hex[:12]}"
    made = dataclasses.replace(settings.load(), queue_exchange=f"{prefix}.tasks",
                               queue_work=f"{prefix}.work", queue_retry_delays=DELAYS,
                               queue_dead_letter=f"{prefix}.dead")
    try:
        yield made
    finally:
        t = topo.plan_from(made)
        async with asyncio.timeout(TIMEOUT):
            connection = await aiormq.connect(made.rabbitmq_url)
            try:
                cleanup = await connection.channel()
                for queue in t.queues:
                    await cleanup.queue_delete(queue.name)  # no error if it never existed
                await cleanup.exchange_delete(t.exchange.name)
            finally:
                await connection.close()


@pytest.fixture
async def channel(names):
    """A confirm-mode channel, the test's topology declared (``names`` deletes it)."""
    t = topo.plan_from(names)
    async with asyncio.timeout(TIMEOUT):
        connection = await aiormq.connect(names.rabbitmq_url)
        ch = await connection.channel(publisher_confirms=True)
        await topo.declare(ch, t)
    try:
        yield ch
    finally:  # the queues and the exchange go with `names`
        async with asyncio.timeout(TIMEOUT):
            await connection.close()

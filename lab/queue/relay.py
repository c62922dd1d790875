"""The outbox relay: publishes the outbox's rows to RabbitMQ, confirmed, and marks them sent.

Why an outbox and confirms lose no event. The API writes a task's change and its
event row in one transaction (``lab/db/store.py``), so the event exists exactly when
the change committed, whether or not RabbitMQ is up. The relay then moves rows to
the broker in batches, one PostgreSQL transaction each::

    BEGIN
    SELECT ... FOR UPDATE SKIP LOCKED LIMIT n   -- claim the oldest unpublished rows
    basic_publish x n                           -- all in flight at once (confirm mode)
    wait for n basic.ack from the broker        -- each message is now on the broker's disk
    UPDATE outbox SET published_at = now()      -- only then: mark them sent
    COMMIT

A row is marked only after the broker confirmed its message: a nack, a message the
broker could not route (``mandatory``: returned), a confirm that does not come within
``confirm_timeout``, or a lost connection rolls the whole batch back and its rows
stay unpublished, to be tried again after a backoff. Mark first and a crash before
the confirm would lose the event for good.

The price is *at-least-once*: a relay that dies (or loses PostgreSQL) between the
confirms and the COMMIT has published rows it never marked, and they are published
again -- with the same ``message_id``, which the consumer's idempotency table
(``processed_messages``) turns into no second effect. A confirm that timed out may
also still arrive. The relay never promises exactly once; the pair does.

Several relays can run: ``SKIP LOCKED`` hands each batch rows no other open batch
holds, so in the normal case no row is published twice; a relay that dies mid-batch
releases its locks with its connection. Order is by ``occurred_at`` within a batch,
not across relays: consumers must not rely on it (a task's events can overtake each
other).

The messages of a batch go out together and are confirmed together
(``asyncio.TaskGroup`` over ``basic_publish`` on a confirm-mode channel): one round
trip per batch, not one per message. The first failure cancels the rest.

Outages. PostgreSQL or RabbitMQ unreachable, or lost mid-batch: one log line, a
bounded exponential backoff (``outbox.backoff``), then both are reconnected and the
topology re-declared (a restarted broker may have lost non-durable state; a missing
binding would make every publish come back). The process never exits for that.
SIGTERM or SIGINT (``stop``) lets the batch in flight finish, then ``run`` returns.

What aio-pika would give: ``connect_robust`` reconnects and re-declares by itself,
and ``channel(publisher_confirms=True)`` makes each ``exchange.publish`` wait for its
confirm; here the reconnection loop is in plain sight and the confirms of a batch
are gathered. Left out: LISTEN/NOTIFY (the relay polls every ``interval``), and a
cleanup of old published rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiormq
import aiormq.abc
import aiormq.exceptions
import asyncpg

from lab.cli import os_reason
from lab.db.pool import COMMAND_TIMEOUT
from lab.queue import outbox
from lab.queue.topology import Topology, TopologyError, connect, declare, where
from lab.settings import redact

log = logging.getLogger("lab.queue.relay")

BATCH_SIZE = 500
INTERVAL = 0.2  # seconds between polls of an empty outbox
CONFIRM_TIMEOUT = 10.0  # seconds for the broker to confirm a whole batch
CONNECT_TIMEOUT = 5.0
CLOSE_TIMEOUT = 2.0



class Unreachable(Exception):
    """PostgreSQL could not be reached; the message is one line, without the password."""


class Unroutable(Exception):
    """The broker returned a ``mandatory`` message: no queue was bound for its routing key."""


# What an unreachable, restarting or refusing PostgreSQL or RabbitMQ raises. A channel
# the broker closed while the relay sat idle (a restart between two batches) is found
# only at the next publish: aiormq's ChannelInvalidStateError, a RuntimeError.
OUTAGE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError,
          aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError,
          TopologyError, Unreachable, Unroutable)


class Relay:
    """Moves outbox rows to the broker until ``stop`` is set; see the module docstring."""

    def __init__(self, database_url: str, rabbitmq_url: str, topology: Topology, *,
                 batch_size: int = BATCH_SIZE, interval: float = INTERVAL,
                 confirm_timeout: float = CONFIRM_TIMEOUT,
                 backoff: Callable[[int], float] = outbox.backoff,
                 clock: Callable[[], float] = time.monotonic,
                 connect_broker: Callable[[], Awaitable[Any]] | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.database_url, self.rabbitmq_url = database_url, rabbitmq_url
        self.topology = topology
        self.batch_size, self.interval = batch_size, interval
        self.confirm_timeout = confirm_timeout
        self._backoff = backoff
        self._connect_broker = connect_broker or self._open_channel
        self.progress = outbox.Progress(clock)
        self.failures = 0  # in a row; 0 once a batch went through
        self._db: asyncpg.Connection | None = None
        self._channel: Any = None  # an aiormq channel in confirm mode (or a test's fake)

    def __repr__(self) -> str:
        return (f"<Relay batch={self.batch_size} published={self.progress.published} "
                f"dead_lettered={self.progress.dead_lettered} failures={self.failures} "
                f"db={'up' if self._db else 'down'} "
                f"broker={'up' if self._channel else 'down'}>")

    async def run(self, stop: asyncio.Event) -> None:
        """Relay batches until ``stop`` is set; outages are logged and waited out."""
        log.info("relaying the outbox of %s to %s (exchange %s), %d rows a batch",
                 redact(self.database_url), where(self.rabbitmq_url),
                 self.topology.exchange.name, self.batch_size)
        try:
            while not stop.is_set():
                try:
                    connected = self._db is not None and self._channel is not None
                    if not connected and not await _unless(stop, self._connect()):
                        break  # stopped while connecting
                    # Not raced with stop: a batch that began is finished (or rolled back).
                    count = await self.relay_batch()
                    self.failures = 0
                except OUTAGE as exc:
                    await self._close()
                    self.failures += 1
                    delay = self._backoff(self.failures)
                    log.warning("%s; retrying in %.1f s (failure %d in a row)",
                                _reason(exc), delay, self.failures)
                    await _wait(stop, delay)
                    continue
                line = self.progress.summary()
                if line:
                    log.info("%s", line)
                if count < self.batch_size:  # the outbox is drained: poll again later
                    await _wait(stop, self.interval)
        finally:
            await self._close()  # also when cancelled: the open transaction rolls back
            log.info("stopped; %s", self.progress.summary(force=True))

    async def relay_batch(self) -> int:
        """Claim, publish, confirm and mark one batch in one transaction; rows handled."""
        assert self._db is not None and self._channel is not None, "connect first"
        started = time.perf_counter()
        async with self._db.transaction():  # an exception below rolls the claim back
            rows = await self._db.fetch(outbox.CLAIM_SQL, self.batch_size)
            if not rows:
                return 0
            messages = [outbox.message_for(row, self.topology) for row in rows]
            for message in messages:
                if message.dead:
                    log.warning("outbox row %s is not a valid event, dead-lettering it to %s: %s",
                                message.row_id, message.routing_key,
                                message.properties.headers["x-error"])
            await self._publish_confirmed(messages)
            # Only now, every message on the broker: mark them (the COMMIT follows).
            await self._db.execute(outbox.MARK_SQL, [m.row_id for m in messages])
        dead = sum(m.dead for m in messages)
        self.progress.record(len(messages) - dead, dead)
        log.debug("batch: %d published, %d dead-lettered in %.1f ms", len(messages) - dead,
                  dead, (time.perf_counter() - started) * 1000)
        return len(messages)

    async def _publish_confirmed(self, messages: list[outbox.Outgoing]) -> None:
        """Publish every message at once; return when all are confirmed, raise on the first
        nack, return or timeout (the TaskGroup cancels the others)."""
        channel = self._channel
        try:
            async with asyncio.timeout(self.confirm_timeout):
                try:
                    async with asyncio.TaskGroup() as group:
                        for m in messages:  # created in order: the channel's lock is FIFO
                            group.create_task(channel.basic_publish(
                                m.body, exchange=m.exchange, routing_key=m.routing_key,
                                properties=m.properties, mandatory=True))
                except* aiormq.exceptions.PublishError as caught:  # basic.return: unroutable
                    returned = caught.exceptions[0].message.delivery
                    raise Unroutable(f"RabbitMQ returned a message: {returned.reply_text} "
                                     f"for {returned.exchange!r}/{returned.routing_key!r} "
                                     f"(no queue bound?)") from None
                except* Exception as caught:  # a nack (DeliveryError), a lost connection...
                    raise caught.exceptions[0] from None
        except TimeoutError:  # the TaskGroup cancelled the publishes still waiting
            raise TimeoutError(
                f"RabbitMQ: no confirm for the batch within {self.confirm_timeout:g} s") from None

    async def _connect(self) -> bool:
        if self._db is None:
            try:
                self._db = await asyncpg.connect(self.database_url, timeout=CONNECT_TIMEOUT,
                                                 command_timeout=COMMAND_TIMEOUT)
            except (OSError, TimeoutError) as exc:  # refused, unknown host, no answer
                raise Unreachable(f"cannot connect to PostgreSQL at "
                                  f"{redact(self.database_url)}: {_oneline(exc)}") from None
        if self._channel is None:
            self._channel = await self._connect_broker()
            # `python -m lab up` waits for this line: the relay is ready.
            log.info("connected%s to PostgreSQL and RabbitMQ", " again" * bool(self.failures))
        return True

    async def _open_channel(self) -> aiormq.abc.AbstractChannel:
        """A confirm-mode channel on a new connection, the topology declared on it."""
        connection = await connect(self.rabbitmq_url, timeout=CONNECT_TIMEOUT)
        try:
            channel = await connection.channel(publisher_confirms=True)
            await declare(channel, self.topology)
        except BaseException:
            await _quietly(connection.close())
            raise
        return channel

    async def _close(self) -> None:
        db, channel, self._db, self._channel = self._db, self._channel, None, None
        if db is not None:
            await _quietly(db.close(timeout=CLOSE_TIMEOUT))
        if channel is not None:
            connection = getattr(channel, "connection", None)
            await _quietly(connection.close() if connection is not None else channel.close())


async def _unless(stop: asyncio.Event, work: Awaitable[bool]) -> bool:
    """``work``'s result, or False (and ``work`` cancelled) if ``stop`` is set first."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()  # one owner for each task: none outlives this call
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, *OUTAGE):
                await task
    return task.result() if not task.cancelled() else False


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


async def _quietly(closing: Awaitable[Any]) -> None:
    """Close something that may already be broken; never raise, never hang."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await closing


def _oneline(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return os_reason(exc)
    return " ".join(str(exc).split()) or type(exc).__name__


def _reason(exc: BaseException) -> str:
    """One line: which side failed and why."""
    if isinstance(exc, Unreachable | Unroutable | TopologyError):
        return str(exc)  # already "cannot connect to ... at ...: ..."
    if isinstance(exc, asyncpg.PostgresError | asyncpg.InterfaceError):
        return f"PostgreSQL: {type(exc).__name__}: {_oneline(exc)}"
    if isinstance(exc, aiormq.exceptions.AMQPError):
        return f"RabbitMQ: {type(exc).__name__}: {_oneline(exc)}"
    return _oneline(exc)

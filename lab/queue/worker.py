"""The consumer: work-queue deliveries through the life cycle, on aiormq directly.

One delivery, in order (``lifecycle.py`` is the table, ``decide`` the choice)::

    basic.deliver -> decode + read_attempt --invalid--> copy to the DLQ --+
                  -> handler.handle_many (one PostgreSQL statement)        |
                       ok / duplicate -> basic_ack                         |
                       error -> copy to retry queue k, or the DLQ --------+-> confirm -> basic_ack

**Ack after commit.** ``basic_ack`` is sent only once the handler's statement has
committed: a worker that dies before the ack has its message redelivered, and
``processed_messages`` makes the second run a no-op. **Confirm before ack.** A copy
(retry or dead letter: same body, same ``message_id``, persistent, the decision's
headers over the original's) is published ``mandatory`` through the default exchange
on the channel in confirm mode, and the original is acked only after the broker's
``basic.ack`` for the copy: a crash in between leaves two copies, never none. A nack,
a return or no confirm in time gives the original back (``basic_nack(requeue=True)``).

PostgreSQL unavailable (``StoreUnavailable``) is not the message's fault, so it is
neither retried nor dead-lettered: after ``nack_pause`` seconds (so that a worker
whose database is down does not spin through the queue at full speed, redelivering
each message to itself) the delivery is nacked with ``requeue=True``.

Concurrency and batches. aiormq runs the consumer callback as a task per delivery;
here the callback only puts the message in an ``asyncio.Queue`` and ``concurrency``
handler tasks, owned by a TaskGroup, take from it, each what is waiting there at that
moment, up to ``batch`` deliveries: their effects go to PostgreSQL in one statement
(``handler.handle_many``) -- one round trip and one commit for all of them, where one
per message would be most of a delivery's cost -- then each is acked (or copied,
then acked) on its own. A handler task never waits for a batch to fill: under a light
load a batch is one delivery, so batching adds no latency. ``prefetch_count`` bounds
how many deliveries wait. On SIGTERM (``stop``) the
worker sends ``basic_cancel``, nacks (requeue) what it holds but has not started,
lets the started deliveries finish for up to ``drain_timeout`` seconds, then closes;
anything still unacked is requeued by the broker when the channel closes.

A lost connection ends the session: the handlers are cancelled (their transactions
roll back, or commit unacked -- the redelivery is then a duplicate), and the worker
reconnects with a bounded exponential backoff, re-declares the topology and consumes
again; the broker redelivers every unacked message. The cleanup of old
``processed_messages`` keys runs beside, as a task the worker owns.

What aio-pika does instead: ``connect_robust`` reconnects and re-declares queues and
consumers by itself, and ``async with message.process():`` acks when the block exits
normally and rejects (``requeue=False`` by default) on an exception -- the retry, the
headers and the confirm before the ack would still be the caller's; and one message per
``process()`` block means one transaction per message, where this worker batches.
Here each of those steps is a line to read. Not handled: a message that crashes the process
before ``decide`` runs is redelivered forever (quorum queues' ``x-delivery-limit``
would stop it); no per-message timeout on the handler beyond PostgreSQL's own.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiormq
import aiormq.abc
import aiormq.exceptions

from lab.api.store import StoreUnavailable
from lab.db.pool import create_pool
from lab.queue import handler, outbox
from lab.queue.events import InvalidEvent, decode
from lab.queue.lifecycle import Decision, Event, Lifecycle, State, decide, read_attempt
from lab.queue.relay import OUTAGE, _quietly, _reason, _wait
from lab.queue.topology import Topology, connect, declare, where
from lab.settings import redact

log = logging.getLogger("lab.queue.worker")

PREFETCH = 20  # unacked deliveries the broker may hand this worker at once
CONCURRENCY = 10  # handler tasks: batches of deliveries handled at once
BATCH = 20  # deliveries at most whose effects go in one statement (1: one per statement)
CONFIRM_TIMEOUT = 10.0  # seconds for the broker to confirm a copy
NACK_PAUSE = 1.0  # seconds before giving back a delivery PostgreSQL could not take
DRAIN_TIMEOUT = 10.0  # seconds for started deliveries to finish on SIGTERM
CONNECT_TIMEOUT = 5.0

# The channel or connection went away under a delivery: the broker requeues it.
CLOSED = (aiormq.exceptions.ChannelInvalidStateError, aiormq.exceptions.AMQPConnectionError,
          aiormq.exceptions.ChannelClosed, ConnectionError)

# What stands between deliveries and their acks: a decision each (None: give it back later).
Step = Callable[[list[aiormq.abc.DeliveredMessage], list[Lifecycle]],
                Awaitable[list[Decision | None]]]


class Worker:
    """Consumes ``topology.work`` until ``stop`` is set; see the module docstring."""

    def __init__(self, rabbitmq_url: str, database_url: str, topology: Topology, *,
                 prefetch: int = PREFETCH, concurrency: int = CONCURRENCY,
                 fail: handler.FailureRate = handler.NEVER,
                 confirm_timeout: float = CONFIRM_TIMEOUT, nack_pause: float = NACK_PAUSE,
                 drain_timeout: float = DRAIN_TIMEOUT,
                 backoff: Callable[[int], float] = outbox.backoff,
                 cleanup_every: float = handler.CLEANUP_EVERY, step: Step | None = None,
                 name: str | None = None, batch: int = BATCH):
        if prefetch < 1 or concurrency < 1 or batch < 1:
            raise ValueError(f"prefetch, concurrency and batch must be at least 1, "
                             f"got {prefetch}, {concurrency} and {batch}")
        self.rabbitmq_url, self.database_url = rabbitmq_url, database_url
        self.topology = topology
        self.prefetch, self.concurrency, self.fail = prefetch, concurrency, fail
        self.batch = batch
        self.name = name  # written in each notification: who applied it
        self.confirm_timeout, self.nack_pause = confirm_timeout, nack_pause
        self.drain_timeout, self.cleanup_every = drain_timeout, cleanup_every
        self._backoff = backoff
        # decode + handler.handle_many by default. bench/queue passes a step that decides
        # "processed" at once, to time the consume -> life cycle -> ack machinery alone.
        self._step = step or self._decide
        self.retry_queues = [queue.name for queue in topology.retries]
        self.outcomes: collections.Counter[State] = collections.Counter()  # final states
        self.handled = 0  # handler runs (attempts), whatever their outcome
        self.batches = 0  # handle_many calls: statements of effects, for ``handled`` events
        self.failures = 0  # connection failures in a row
        self.sessions = 0  # connections that got as far as consuming
        self._pool: Any = None
        self._channel: aiormq.abc.AbstractChannel | None = None

    def __repr__(self) -> str:
        counts = ", ".join(f"{s.name}={n}" for s, n in sorted(self.outcomes.items(),
                                                              key=lambda i: i[0].name))
        return (f"<Worker prefetch={self.prefetch} concurrency={self.concurrency} "
                f"handled={self.handled} in {self.batches} batches [{counts}] "
                f"broker={'up' if self._channel is not None else 'down'}>")

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; outages are logged and waited out."""
        log.info("%s: starting on %s at %s (prefetch %d, concurrency %d), effects in %s",
                 self.name or "worker", self.topology.work.name, where(self.rabbitmq_url),
                 self.prefetch, self.concurrency, redact(self.database_url))
        self._pool = await create_pool(self.database_url, max_size=self.concurrency + 1)
        retention = handler.retention_for([q.delay or 0.0 for q in self.topology.retries])
        cleanup_stop = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tasks:  # the cleanup is owned, joined below
                tasks.create_task(handler.run_cleanup(self._pool, self.cleanup_every,
                                                      retention, cleanup_stop))
                try:
                    await self._consume(stop)
                finally:
                    cleanup_stop.set()  # ends run_cleanup's wait; the TaskGroup joins it
        finally:
            await _quietly(self._pool.close())
            log.info("stopped; %r", self)

    async def _consume(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                connection = await self._open()
            except OUTAGE as exc:
                self.failures += 1
                delay = self._backoff(self.failures)
                log.warning("%s; retrying in %.1f s (failure %d in a row)", _reason(exc),
                            delay, self.failures)
                await _wait(stop, delay)
                continue
            if self.failures:
                log.info("connected again to RabbitMQ")
            refused = None
            try:
                await self._serve(stop)  # counts the failures as 0 once it consumes
            except OUTAGE as exc:  # refused while subscribing, or lost while cancelling
                refused = exc
            finally:
                self._channel = None
                await _quietly(connection.close())  # requeues whatever is still unacked
            if refused is not None:  # backed off too: a refusal would repeat at once
                self.failures += 1
                delay = self._backoff(self.failures)
                log.warning("%s; retrying in %.1f s (failure %d in a row)", _reason(refused),
                            delay, self.failures)
                await _wait(stop, delay)

    async def _open(self) -> aiormq.abc.AbstractConnection:
        connection = await connect(self.rabbitmq_url, timeout=CONNECT_TIMEOUT)
        try:
            # One channel: deliveries are acked on the channel they came on, and in confirm
            # mode the same channel publishes the copies (a confirm is not a consumer ack).
            channel = await connection.channel(publisher_confirms=True)
            await declare(channel, self.topology)  # a restarted broker may have lost it
            await channel.basic_qos(prefetch_count=self.prefetch, timeout=CONNECT_TIMEOUT)
        except BaseException:
            await _quietly(connection.close())
            raise
        self._channel = channel
        return connection

    async def _serve(self, stop: asyncio.Event) -> None:
        """One session on one channel: until ``stop`` or the channel is lost."""
        channel = self._channel
        assert channel is not None
        inbox: asyncio.Queue[Any] = asyncio.Queue()

        async def on_message(message: aiormq.abc.DeliveredMessage) -> None:
            inbox.put_nowait(message)  # never blocks: prefetch_count bounds the inbox

        consumer = await channel.basic_consume(self.topology.work.name, on_message,
                                               no_ack=False, timeout=CONNECT_TIMEOUT)
        self.failures, self.sessions = 0, self.sessions + 1
        # `python -m lab up` waits for this line: the worker is ready.
        log.info("%s: consuming %s", self.name or "worker", self.topology.work.name)
        async with asyncio.TaskGroup() as tasks:
            workers = [tasks.create_task(self._handle_from(channel, inbox))
                       for _ in range(self.concurrency)]
            stopped = tasks.create_task(stop.wait())
            closing = channel.closing
            await asyncio.wait({stopped, closing}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if closing.done():  # lost: the broker requeues every unacked delivery
                log.warning("RabbitMQ: the channel closed: %s", _why(closing))
                for task in workers:
                    task.cancel()  # a transaction in flight rolls back (or commits: a dup)
                return
            with contextlib.suppress(*CLOSED, TimeoutError):  # lost meanwhile: all requeued
                await channel.basic_cancel(consumer.consumer_tag, timeout=CONNECT_TIMEOUT)
            await asyncio.sleep(0)  # deliveries read before CancelOk reach the inbox
            while not inbox.empty():  # delivered but not started: give them back now
                message = inbox.get_nowait()
                with contextlib.suppress(*CLOSED):
                    await channel.basic_nack(message.delivery.delivery_tag, requeue=True)
                self.outcomes[State.REQUEUED] += 1
            for _ in workers:
                inbox.put_nowait(None)  # one "no more" for each handler task
            _, pending = await asyncio.wait(workers, timeout=self.drain_timeout)
            if pending:  # bounded: unacked, so requeued when the channel closes
                log.warning("%d deliveries did not finish within %g s; they will be "
                            "redelivered", len(pending), self.drain_timeout)
            for task in pending:
                task.cancel()

    async def _handle_from(self, channel: aiormq.abc.AbstractChannel,
                           inbox: asyncio.Queue[Any]) -> None:
        """Take what waits in the inbox, up to ``batch`` deliveries, and deliver them
        together; until the "no more" marker (None)."""
        more = True
        while more:
            batch = []
            message = await inbox.get()
            while message is not None:
                batch.append(message)
                if len(batch) == self.batch or inbox.empty():
                    break
                message = inbox.get_nowait()
            more = message is not None
            if batch:
                await self.deliver(channel, batch)

    async def deliver(self, channel: aiormq.abc.AbstractChannel,
                      messages: list[aiormq.abc.DeliveredMessage]) -> list[Lifecycle]:
        """Take deliveries through their life cycles, each to ACKED or REQUEUED: their
        effects in one statement, then each one's ack (or copy, then ack)."""
        lives = [Lifecycle(m.delivery.delivery_tag) for m in messages]
        decisions: list[Decision | None] = [None] * len(messages)
        try:
            decisions = await self._step(messages, lives)
            if None in decisions:  # PostgreSQL unavailable: give them back, after a pause
                await asyncio.sleep(self.nack_pause)
            for message, decision, life in zip(messages, decisions, lives, strict=True):
                if decision is None:
                    await channel.basic_nack(life.delivery_tag, requeue=True)
                    life.fire(Event.NACK_SENT)
                else:
                    await self._carry_out(channel, message, decision, life)
        except CLOSED:
            for life in lives:
                if life.state not in (State.ACKED, State.REQUEUED):
                    life.fire(Event.CHANNEL_CLOSED)
        for decision, life in zip(decisions, lives, strict=True):
            acked = life.state is State.ACKED and decision is not None
            # Counted by the state before the ack (PROCESSED, RETRY_SCHEDULED, DEAD_LETTERED).
            self.outcomes[decision.outcome if acked else State.REQUEUED] += 1
        return lives

    async def _decide(self, messages: list[aiormq.abc.DeliveredMessage],
                      lives: list[Lifecycle]) -> list[Decision | None]:
        """A decision for each delivery; None for each if PostgreSQL could not be reached."""
        places = {"retry_queues": self.retry_queues,
                  "dead_letter": self.topology.dead_letter.name}
        decisions: list[Decision | None] = [None] * len(messages)
        valid = {}  # index -> (event, attempt)
        for i, (message, life) in enumerate(zip(messages, lives, strict=True)):
            try:
                event = decode(message.body)
                attempt = read_attempt(message.header.properties.headers)
            except InvalidEvent as exc:
                decisions[i] = decide(valid=False, reason=exc.reason, **places)
                continue
            life.fire(Event.VALID)
            valid[i] = event, attempt
        if not valid:
            return decisions
        self.handled += len(valid)
        self.batches += 1
        try:  # APPLIED or DUPLICATE each, or the exception that failed it
            outcomes = await handler.handle_many(
                self._pool, [event for event, _ in valid.values()], fail=self.fail,
                worker=self.name)
        except StoreUnavailable as exc:
            log.warning("%s; %d messages go back to the queue in %g s", exc, len(valid),
                        self.nack_pause)
            return [d if i not in valid else None for i, d in enumerate(decisions)]
        for (i, (_, attempt)), outcome in zip(valid.items(), outcomes, strict=True):
            if isinstance(outcome, Exception):  # HandlerFailure, or any error of the effect
                decisions[i] = decide(valid=True, handler_ok=False, attempt=attempt,
                                      reason=f"{type(outcome).__name__}: {outcome}", **places)
            else:
                decisions[i] = decide(valid=True, handler_ok=True, attempt=attempt, **places)
        return decisions

    async def _carry_out(self, channel: aiormq.abc.AbstractChannel,
                         message: aiormq.abc.DeliveredMessage, decision: Decision,
                         life: Lifecycle) -> None:
        """Walk the rest of ``decision.path``, doing each step's I/O before firing it."""
        tag = message.delivery.delivery_tag
        for event in decision.path[len(life.history):]:
            if event is Event.PUBLISH_CONFIRMED:
                try:
                    await self._publish_copy(channel, message, decision)
                except (aiormq.exceptions.DeliveryError, aiormq.exceptions.PublishError,
                        TimeoutError) as exc:  # refused, returned, or no confirm in time
                    log.warning("the copy to %s was not confirmed (%s); the message goes "
                                "back to the queue in %g s", decision.publish_to,
                                type(exc).__name__, self.nack_pause)
                    await asyncio.sleep(self.nack_pause)  # a missing queue: do not spin
                    await channel.basic_nack(tag, requeue=True)
                    life.fire(Event.NACK_SENT)
                    return
            elif event is Event.ACK_SENT:
                # Last: the broker forgets the message now. An ack has no reply, and
                # wait=False does not wait for the frame to reach the socket: if it never
                # does, the channel is gone and the broker redelivers -- the duplicate the
                # idempotency key absorbs, the same as a crash just before the ack.
                await channel.basic_ack(tag, wait=False)
            life.fire(event)
        if decision.publish_to is not None:
            log.log(logging.INFO if decision.outcome is State.RETRY_SCHEDULED
                    else logging.WARNING, "message %s -> %s: %s",
                    message.header.properties.message_id, decision.publish_to,
                    decision.headers.get("x-error"))

    async def _publish_copy(self, channel: aiormq.abc.AbstractChannel,
                            message: aiormq.abc.DeliveredMessage, decision: Decision) -> None:
        """The copy, confirmed by the broker (or an exception): only then may we ack."""
        props = message.header.properties
        headers = {**(props.headers or {}), **decision.headers}  # the decision's win
        properties = aiormq.spec.Basic.Properties(
            content_type=props.content_type, message_id=props.message_id,
            message_type=props.message_type, timestamp=props.timestamp, delivery_mode=2,
            headers=headers)
        async with asyncio.timeout(self.confirm_timeout):
            # mandatory: a missing queue is a basic.return (PublishError), not a silent drop.
            await channel.basic_publish(message.body, exchange="",
                                        routing_key=decision.publish_to,
                                        properties=properties, mandatory=True)


def _why(closing: asyncio.Future) -> str:
    if closing.cancelled():
        return "cancelled"
    exc = closing.exception()
    return _reason(exc) if exc is not None else "closed"

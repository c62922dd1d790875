"""The RabbitMQ topology of challenge 5: what exists on the broker, and declaring it.

::

    publisher --task.created--> [lab.tasks] (topic) --task.*--> [lab.tasks.work] --> workers
                                                                  ^        |
              x-message-ttl expires, dead-lettered via ""         |        | handler error:
              (the default exchange) straight to the work queue   |        | republish, then ack
                                                                  |        v
                                      [lab.tasks.work.retry.1s | .retry.5s | .retry.25s]
                  invalid message, or the last retry failed:  worker --> [lab.tasks.dead]

A retry queue has no consumer. A message published to it waits ``x-message-ttl``
milliseconds, then RabbitMQ dead-letters it to ``x-dead-letter-exchange`` with
``x-dead-letter-routing-key``: that is the delay, with no timer in the worker and
nothing lost if the worker dies meanwhile. The worker publishes attempt k to
``topology.retry_queue(k)`` and dead messages to ``topology.dead_letter``, both
through the default exchange (routing key = queue name).

Why expired retries go back through the default exchange (``""``, routing key = the
work queue's name) and not through the topic exchange: the default exchange
delivers to exactly one queue, the one that failed. Re-publishing to ``lab.tasks``
would hand the retry to every queue bound to ``task.*`` (an audit queue added later
would see each event again on every retry), and the message's routing key would
have to be kept as ``task.created`` for the binding to match. The cost: after
dead-lettering, the message's routing key is the work queue's name; the original
(``task.created``) is kept in the ``x-death`` header and in the event's own ``type``.

The work queue also dead-letters to the dead-letter queue, so a message a worker
rejects with ``basic_nack(requeue=False)`` is parked there, never dropped silently.
Every queue is durable and classic; messages survive a broker restart only if they
are also published persistent (``delivery_mode=2``), the publisher's part.

Declaring is idempotent -- RabbitMQ answers ``declare-ok`` to a declaration equal to
what exists -- but a queue or exchange cannot be changed by redeclaring it: with
other arguments (a new ``x-message-ttl``, another type) the broker answers
PRECONDITION_FAILED and closes the channel. ``declare`` turns that into a
``TopologyError`` naming the object; the fix is to delete it (``rabbitmqctl
delete_queue NAME``, which drops its messages, so drain it first) and declare again,
or to choose new names in the ``QUEUE_*`` settings. A changed delay gets a new queue
name (``.retry.5s``), so it never conflicts; the old queue is left for you to delete.

``plan`` is pure -- settings in, declarations out, no broker -- so it is tested
without one and the worker can name retry queue k. ``declare`` is the thin I/O
shell on an open aiormq channel (the worker re-declares after each reconnect), and
``apply`` opens a connection for the CLI. aio-pika offers the same with
``declare_exchange``/``declare_queue``/``queue.bind`` objects and, with
``connect_robust``, re-declares them by itself after a reconnect; here that is the
caller's loop, in plain sight. Left out: quorum queues (replicated, with their own
``x-delivery-limit``), policies (the operator's way to set TTLs without
redeclaring), and vhost or permission setup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiormq
import aiormq.abc
import aiormq.exceptions

from lab.cli import os_reason

ROUTING_KEY = "task.*"  # task.created, task.updated, task.deleted; not task.x.y
CONNECT_TIMEOUT = 10.0  # seconds, for the connection and every declaration


class TopologyError(Exception):
    """The broker refused or could not be reached; the message is one line for a user."""


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str = "topic"
    durable: bool = True


@dataclass(frozen=True)
class Queue:
    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    durable: bool = True
    delay: float | None = None  # seconds, for a retry queue


@dataclass(frozen=True)
class Binding:
    queue: str
    exchange: str
    routing_key: str


@dataclass(frozen=True)
class Topology:
    """Everything challenge 5 declares, as data; ``retries[k - 1]`` holds retry k."""

    exchange: Exchange
    work: Queue
    retries: tuple[Queue, ...]
    dead_letter: Queue
    bindings: tuple[Binding, ...]

    @property
    def queues(self) -> tuple[Queue, ...]:
        # The dead-letter queue first: the queues that dead-letter to it follow.
        return (self.dead_letter, self.work, *self.retries)

    @property
    def max_attempts(self) -> int:
        """Deliveries of a message that always fails: the first, then one per retry."""
        return 1 + len(self.retries)

    def retry_queue(self, attempt: int) -> Queue:
        """The queue to publish to after failed attempt ``attempt`` (1-based)."""
        if not 1 <= attempt <= len(self.retries):
            raise ValueError(f"attempt must be 1..{len(self.retries)}, got {attempt}")
        return self.retries[attempt - 1]


class QueueSettings(Protocol):
    """What ``plan_from`` reads: ``lab.settings.Settings`` (or a test's replacement)."""

    queue_exchange: str
    queue_work: str
    queue_retry_delays: tuple[float, ...]
    queue_dead_letter: str


def delay_label(seconds: float) -> str:
    """``5s`` for whole seconds, ``200ms`` otherwise: the suffix of a retry queue's name."""
    ms = round(seconds * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def plan(exchange: str, work: str, retry_delays: tuple[float, ...], dead_letter: str,
         *, routing_key: str = ROUTING_KEY) -> Topology:
    """The declarations for these names and delays (seconds); no I/O."""
    retries = tuple(
        Queue(f"{work}.retry.{delay_label(delay)}", delay=delay, arguments={
            "x-message-ttl": round(delay * 1000),  # milliseconds, an integer
            "x-dead-letter-exchange": "",  # the default exchange: see the module docstring
            "x-dead-letter-routing-key": work,
        })
        for delay in retry_delays
    )
    work_queue = Queue(work, arguments={
        "x-dead-letter-exchange": "",  # basic_nack(requeue=False) parks the message
        "x-dead-letter-routing-key": dead_letter,
    })
    topology = Topology(exchange=Exchange(exchange), work=work_queue, retries=retries,
                        dead_letter=Queue(dead_letter),
                        bindings=(Binding(work, exchange, routing_key),))
    names = [queue.name for queue in topology.queues]
    if len(set(names)) != len(names):
        raise ValueError(f"the queue names must differ, got {', '.join(names)}")
    if any(queue.arguments.get("x-message-ttl") == 0 for queue in retries):
        raise ValueError("a retry delay must be at least 1 ms")
    return topology


def plan_from(settings: QueueSettings) -> Topology:
    """``plan`` with the names and delays of the ``QUEUE_*`` settings."""
    return plan(settings.queue_exchange, settings.queue_work, settings.queue_retry_delays,
                settings.queue_dead_letter)


def describe(thing: Exchange | Queue | Binding) -> str:
    """One line for a user, as the CLI prints it."""
    if isinstance(thing, Exchange):
        return f"exchange {thing.name} ({thing.type}, durable)"
    if isinstance(thing, Binding):
        return f"binding {thing.exchange} --{thing.routing_key}--> {thing.queue}"
    args = thing.arguments
    if thing.delay is not None:
        return (f"queue {thing.name} (durable, retry: waits {args['x-message-ttl']} ms, "
                f"then back to {args['x-dead-letter-routing-key']})")
    if args:
        return f"queue {thing.name} (durable, rejected -> {args['x-dead-letter-routing-key']})"
    return f"queue {thing.name} (durable)"


def _conflict(thing: Exchange | Queue, exc: aiormq.exceptions.ChannelPreconditionFailed) -> str:
    kind = "exchange" if isinstance(thing, Exchange) else "queue"
    fix = ("rabbitmqctl delete_queue " + thing.name + ", which drops its messages"
           if kind == "queue" else "rabbitmqadmin delete exchange name=" + thing.name)
    reason = exc.args[0] if exc.args else "PRECONDITION_FAILED"
    return (f"{kind} {thing.name} exists with other settings ({reason}); delete it ({fix}) "
            "or choose other names in the QUEUE_* settings")


async def declare(channel: aiormq.abc.AbstractChannel, topology: Topology,
                  report: Callable[[str], None] | None = None) -> None:
    """Declare every exchange, queue and binding of ``topology``; idempotent.

    Raises TopologyError when the broker refuses one (the channel is closed then: the
    broker closes it on any such error). ``report`` receives one line per object.
    """
    report = report or (lambda line: None)
    # One object at a time, in order, so an error names the object that caused it.
    thing: Exchange | Queue = topology.exchange
    try:
        await channel.exchange_declare(thing.name, exchange_type=thing.type,
                                       durable=thing.durable, timeout=CONNECT_TIMEOUT)
        report(describe(thing))
        for thing in topology.queues:
            ok = await channel.queue_declare(thing.name, durable=thing.durable,
                                             arguments=dict(thing.arguments),
                                             timeout=CONNECT_TIMEOUT)
            report(f"{describe(thing)}: {ok.message_count} ready")
        for binding in topology.bindings:
            await channel.queue_bind(binding.queue, binding.exchange, binding.routing_key,
                                     timeout=CONNECT_TIMEOUT)
            report(describe(binding))
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        raise TopologyError(_conflict(thing, exc)) from None
    except TimeoutError:
        raise TopologyError(f"RabbitMQ did not answer the declaration of {thing.name} "
                            f"in {CONNECT_TIMEOUT:g} s") from None
    except aiormq.exceptions.ChannelClosed as exc:  # ACCESS_REFUSED (amq.*, permissions), ...
        reason = exc.args[0] if exc.args else type(exc).__name__
        raise TopologyError(f"RabbitMQ refused {thing.name}: {reason}") from None


async def apply(url: str, topology: Topology,
                report: Callable[[str], None] | None = None) -> None:
    """Connect to ``url``, ``declare`` the topology, close; TopologyError on any failure."""
    connection = await connect(url)
    try:
        await declare(await connection.channel(), topology, report)
    finally:
        await connection.close()


async def connect(url: str, timeout: float = CONNECT_TIMEOUT) -> aiormq.abc.AbstractConnection:
    """An open aiormq connection, or TopologyError with the cause in one line."""
    failed = f"cannot connect to RabbitMQ at {where(url)}"
    try:
        async with asyncio.timeout(timeout):
            return await aiormq.connect(url)
    except TimeoutError:
        raise TopologyError(f"{failed}: no answer in {timeout:g} s") from None
    except (aiormq.exceptions.AuthenticationError,
            aiormq.exceptions.ProbableAuthenticationError):  # before OSError: subclasses
        raise TopologyError(f"{failed}: login refused (check the user and password "
                            "in RABBITMQ_URL)") from None
    except OSError as exc:  # refused, unknown host: raw from the transport, or wrapped
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
        raise TopologyError(f"{failed}: {os_reason(cause)} "
                            "(is it running? make services starts it)") from None
    except aiormq.exceptions.AMQPError:
        # E.g. Connection.Close instead of Connection.OpenOk: a vhost it may not use.
        reason = "the broker closed the connection (does the URL's vhost exist?)"
        raise TopologyError(f"{failed}: {reason}") from None


def where(url: str) -> str:
    """``guest@127.0.0.1:5672/``: the URL without its password, for messages."""
    parts = urlsplit(url)
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    return f"{parts.username or 'guest'}@{parts.hostname}:{port}{parts.path or '/'}"

"""``python -m lab.queue replay``: the dead-letter queue, back to the work queue.

A message lands in the dead-letter queue because it is invalid or because every
attempt failed -- often for a reason that is fixed later (a bug deployed, a
database that was down for longer than the retries waited). Once it is fixed, the
parked messages are replayed: each is taken from the dead-letter queue
(``basic.get``, unacked), published to the work queue through the default exchange
with a fresh start -- same body and ``message_id``, persistent, its attempt count
and death headers dropped, ``x-replayed`` counting the replays -- confirmed by the
broker, and only then acked in the dead-letter queue. A crash in between leaves
the message in both queues, never in neither: at least once again, and the
worker's idempotency key makes the copy harmless.

The number of messages is read once, at the start (a passive declare), and at most
that many are moved: a message that fails again and comes back to the dead-letter
queue while the replay runs is not replayed twice. An invalid message goes back to
the dead-letter queue at once, with its reason; replaying does not fix a message.

What production uses instead: the shovel plugin (``rabbitmqctl`` / the management
UI's "move messages"), or a small script like this one; quorum queues can also
dead-letter at least once by themselves (``dead-letter-strategy``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiormq
import aiormq.abc
import aiormq.exceptions

from lab.queue.topology import CONNECT_TIMEOUT, Topology, TopologyError, connect, declare

# What the worker and the broker write about a message's past attempts: dropped, so a
# replayed message starts again at attempt 1 with every retry queue ahead of it.
ATTEMPT_HEADERS = ("x-attempt", "x-death-reason", "x-error", "x-death",
                   "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason")


def fresh_headers(headers: dict | None) -> dict:
    """The headers of a replayed copy: its past attempts dropped, ``x-replayed`` counted."""
    kept = {k: v for k, v in (headers or {}).items() if k not in ATTEMPT_HEADERS}
    replayed = kept.get("x-replayed")
    kept["x-replayed"] = (replayed if isinstance(replayed, int) else 0) + 1
    return kept


async def replay(url: str, topology: Topology, limit: int | None = None,
                 report: Callable[[str], None] | None = None) -> int:
    """Move up to ``limit`` (default: all there at the start) dead letters to the work
    queue, each confirmed before it is acked; how many were moved. TopologyError if the
    broker cannot be reached or refuses."""
    report = report or (lambda line: None)
    connection = await connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await declare(channel, topology)
        dead, work = topology.dead_letter.name, topology.work.name
        waiting = (await channel.queue_declare(dead, passive=True)).message_count
        todo = waiting if limit is None else min(limit, waiting)
        moved = 0
        while moved < todo:
            message = await channel.basic_get(dead, no_ack=False, timeout=CONNECT_TIMEOUT)
            if message.delivery_tag is None:  # Basic.GetEmpty: someone else took them
                break
            props = message.header.properties
            properties = aiormq.spec.Basic.Properties(
                content_type=props.content_type, message_id=props.message_id,
                message_type=props.message_type, timestamp=props.timestamp,
                delivery_mode=2, headers=fresh_headers(props.headers))
            async with asyncio.timeout(CONNECT_TIMEOUT):  # mandatory + confirm, then ack
                await channel.basic_publish(message.body, exchange="", routing_key=work,
                                            properties=properties, mandatory=True)
            await channel.basic_ack(message.delivery_tag)
            moved += 1
            if moved % 1000 == 0:
                report(f"{moved} of {todo} replayed")
        report(f"replayed {moved} message{'s' * (moved != 1)} from {dead} to {work}")
        return moved
    except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError,
            TimeoutError, ConnectionError) as exc:
        raise TopologyError(f"RabbitMQ: the replay stopped: {type(exc).__name__}: {exc} "
                            "(what was not acked is still in the dead-letter queue)") from None
    finally:
        await connection.close()

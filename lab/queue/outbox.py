"""The relay's pure core: outbox rows in, AMQP messages out; its SQL, backoff and progress.

No asyncio, no sockets: ``relay.py`` wires these to PostgreSQL and RabbitMQ.

A row becomes a message (``message_for``):

* a valid row is the event envelope of ``events.py`` -- ``id`` and ``occurredAt``
  from the row, ``source`` "lab.api", checked as a consumer would check it --
  published to the topic exchange with routing key = the event's type
  (``task.created``), ``message_id`` = the row's id, persistent
  (``delivery_mode=2``: written to disk by a durable queue), ``application/json``;
* a row whose event cannot be built (a payload the schema refuses, a body past
  ``MAX_EVENT_BYTES``) is **dead-lettered at the source**: the row itself, as JSON,
  goes straight to the dead-letter queue with the headers the worker writes for an
  invalid message (``x-death-reason: invalid``, ``x-error``: the one-line reason).
  Publishing it as an event would only have every consumer refuse it; leaving it
  unpublished would have the relay claim it again first in every batch, for ever,
  and a batch full of such rows would stop the outbox. Its row is then marked sent
  like any other (``published_at``): "handed to the broker", not "was valid". So no
  migration is needed, and the one place to look for what went wrong is the
  dead-letter queue, whoever found it wrong.

The claim (``CLAIM_SQL``) takes the oldest unpublished rows ``FOR UPDATE SKIP
LOCKED``: a row another relay's open transaction holds is skipped, not waited for,
so several relays share the outbox without publishing a row twice -- in the normal
case (see ``relay.py`` for the crash that does publish twice).
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pamqp.commands import Basic

from lab.queue import events
from lab.queue.lifecycle import INVALID, X_DEATH_REASON, X_ERROR
from lab.queue.topology import Topology

# The oldest rows first (the partial index outbox_unpublished_idx is in that order);
# a row locked by another relay's batch is skipped, not waited for.
CLAIM_SQL = """SELECT id, type, occurred_at, payload FROM outbox
WHERE published_at IS NULL ORDER BY occurred_at LIMIT $1 FOR UPDATE SKIP LOCKED"""
# Run in the claim's transaction, after every message of the batch was confirmed.
MARK_SQL = "UPDATE outbox SET published_at = now() WHERE id = ANY($1::uuid[])"

JSON = "application/json"
PERSISTENT = 2  # AMQP delivery_mode: the broker writes the message to disk


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish: where, and what. ``dead`` for a row dead-lettered at the source."""

    row_id: str
    exchange: str
    routing_key: str
    body: bytes
    properties: Basic.Properties
    dead: bool = False


def message_for(row: Mapping[str, Any], topology: Topology) -> Outgoing:
    """The message for an outbox row (``id``, ``type``, ``occurred_at``, ``payload``)."""
    row_id = str(row["id"])  # asyncpg's UUID: lowercase and hyphenated, as events.Uuid wants
    payload = row["payload"]
    if isinstance(payload, str | bytes):  # jsonb comes as text unless a codec is set
        payload = orjson.loads(payload)
    try:
        if not isinstance(payload, dict):
            raise events.InvalidEvent("payload is not a JSON object")
        event = events.build_event(row["type"], payload, new_id=lambda: row_id,
                                   clock=lambda: row["occurred_at"])
        body = events.encode(event)
    except events.InvalidEvent as invalid:
        return _dead_letter(row_id, row, payload, invalid.reason, topology)
    properties = Basic.Properties(content_type=JSON, delivery_mode=PERSISTENT,
                                  message_id=row_id, message_type=event.type)
    return Outgoing(row_id, topology.exchange.name, event.type, body, properties)


def _dead_letter(row_id: str, row: Mapping[str, Any], payload: Any, reason: str,
                 topology: Topology) -> Outgoing:
    occurred = row["occurred_at"]
    body = orjson.dumps({"id": row_id, "type": row["type"],
                         "occurredAt": occurred.isoformat() if isinstance(occurred, datetime)
                         else occurred, "payload": payload}, default=str)
    properties = Basic.Properties(content_type=JSON, delivery_mode=PERSISTENT,
                                  message_id=row_id,
                                  headers={X_DEATH_REASON: INVALID, X_ERROR: reason})
    # Through the default exchange: routing key = the queue's name, one queue exactly.
    return Outgoing(row_id, "", topology.dead_letter.name, body, properties, dead=True)


def backoff(failures: int, *, base: float = 0.2, cap: float = 10.0,
            random: Callable[[], float] = _random.random) -> float:
    """Seconds to wait after ``failures`` (>= 1) failures in a row: doubling from ``base``
    up to ``cap``, each drawn in [d/2, d] so that relays that lost the broker together
    do not all come back in the same instant."""
    if failures < 1:
        raise ValueError(f"failures must be at least 1, got {failures}")
    delay = min(cap, base * 2 ** min(failures - 1, 32))  # min(): no float overflow
    return delay * (0.5 + random() / 2)


@dataclass
class Progress:
    """Counts what was published; ``summary()`` says it, with the rate, every ``every`` s."""

    clock: Callable[[], float]
    every: float = 5.0
    published: int = 0  # events, since the start
    dead_lettered: int = 0  # rows dead-lettered at the source, since the start
    _since: float = field(default=0.0, repr=False)
    _at_last: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        self._since = self.clock()

    def record(self, published: int, dead_lettered: int = 0) -> None:
        self.published += published
        self.dead_lettered += dead_lettered

    def summary(self, *, force: bool = False) -> str | None:
        """The summary line if ``every`` seconds passed (or ``force``), else None."""
        now = self.clock()
        elapsed = now - self._since
        if not force and elapsed < self.every:
            return None
        done = self.published + self.dead_lettered - self._at_last
        rate = done / elapsed if elapsed > 0 else 0.0
        self._since, self._at_last = now, self.published + self.dead_lettered
        return (f"{done} rows relayed in {elapsed:.1f} s ({rate:.0f}/s); since the start "
                f"{self.published} published, {self.dead_lettered} dead-lettered")

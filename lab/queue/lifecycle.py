"""A delivered message's life cycle, as a table, and the decision the consumer takes; no I/O.

Theory of operation. RabbitMQ hands a worker a message (``basic.deliver``) and
keeps it, unacknowledged, until the worker says ``basic.ack``; if the channel
closes first, the broker delivers it again. So the one rule that makes delivery
*at least once* is: **ack last**. Whatever the worker does with a message -- commit
its effect, or republish a copy to a retry queue or the dead-letter queue -- must
be safe before the ack, because after the ack the broker has forgotten it:

* a processed message is acked after its transaction (effect + ``processed_messages``
  row) committed;
* a copy to a retry or dead-letter queue is published with publisher confirms, and
  the original acked only once the broker has *confirmed* the copy (``basic.ack``
  from the broker: the copy is on disk). Ack first and a crash in between loses the
  message; confirm first and a crash in between leaves two -- the copy and the
  redelivered original -- which the idempotency table makes harmless.

Losing the channel before the ack, in any state, is ``CHANNEL_CLOSED`` → ``REQUEUED``:
never lost, perhaps delivered twice. The table forbids acking before the confirm.

The states and every legal transition (``TRANSITIONS``)::

    DELIVERED --VALID--> HANDLING --HANDLER_OK--> PROCESSED --ACK_SENT--> ACKED
    HANDLING  --HANDLER_FAILED--> RETRYING --PUBLISH_CONFIRMED--> RETRY_SCHEDULED
    HANDLING  --DELIVERY_LIMIT--> DEAD_LETTERING      (the last attempt failed)
    DELIVERED --INVALID--> DEAD_LETTERING --PUBLISH_CONFIRMED--> DEAD_LETTERED
    RETRY_SCHEDULED, DEAD_LETTERED --ACK_SENT--> ACKED
    DELIVERED, HANDLING, RETRYING, DEAD_LETTERING --NACK_SENT--> REQUEUED
    every state but ACKED and REQUEUED --CHANNEL_CLOSED--> REQUEUED

``NACK_SENT`` is ``basic_nack(requeue=True)``: the worker gives a message back when
it shuts down before finishing it, or when the broker refused a copy (a
``basic.nack`` for the publish), so it cannot be acked. ACKED and REQUEUED end this
delivery; a requeued message starts again as a new delivery.

``decide`` turns a message's validity, its handler's outcome and its attempt number
into the path through this table and what to publish on the way. Attempts: the
first delivery is attempt 1 (no ``x-attempt`` header); failed attempt k is
republished to retry queue k with ``x-attempt: k+1``; with delays (1, 5, 25) a
message that always fails is handled 4 times, then dead-lettered with its last error.
An ``x-attempt`` that is not a positive integer makes the message invalid (straight
to the dead-letter queue), rather than "attempt 1": only the worker writes that
header, so a garbled one means the message did not come from the lab's own path,
and guessing could retry it forever. The retry queues' names and delays are
``topology.py``'s (``Topology.retry_queue(k)``); they are passed in here.

How RabbitMQ's own features compare. ``basic_nack(requeue=False)`` dead-letters
through the queue's ``x-dead-letter-exchange`` (the work queue has one, a safety
net), but cannot add headers; republishing lets the worker say why (``x-error``).
The broker writes its own ``x-death`` header (queue, reason, count) when it
dead-letters -- here, when a retry queue's TTL expires -- but each retry is a new
message the worker publishes, and RabbitMQ versions differ on how ``x-death`` of a
client-published message is kept, so the count lives in ``x-attempt``. Quorum
queues count redeliveries themselves (``x-delivery-count``) and dead-letter a
message past ``x-delivery-limit``: that catches a message that crashes the worker
before it can decide anything, which this table cannot; classic queues have no limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from lab.queue.events import InvalidEvent, shorten

# Headers the worker writes on the copies it publishes ("x-" names, as RabbitMQ's own).
X_ATTEMPT = "x-attempt"  # the attempt this copy will be: 2 on the first retry
X_DEATH_REASON = "x-death-reason"  # on the dead-letter queue: INVALID or DELIVERY_LIMIT
X_ERROR = "x-error"  # why: InvalidEvent.reason, or the handler's error, on one short line
INVALID = "invalid"  # the message can never be handled: no retry
DELIVERY_LIMIT = "delivery_limit"  # every attempt failed; RabbitMQ's word for the same


class State(Enum):
    DELIVERED = "delivered"  # basic.deliver received, not yet looked at
    HANDLING = "handling"  # valid; the handler's transaction is running
    PROCESSED = "processed"  # the effect committed; the ack is due
    RETRYING = "retrying"  # a copy published to a retry queue, its confirm awaited
    RETRY_SCHEDULED = "retry-scheduled"  # the copy confirmed; the ack is due
    DEAD_LETTERING = "dead-lettering"  # a copy published to the dead-letter queue, awaited
    DEAD_LETTERED = "dead-lettered"  # the copy confirmed; the ack is due
    ACKED = "acked"  # basic.ack sent: the broker forgets the original
    REQUEUED = "requeued"  # nacked or the channel lost: the broker will deliver it again


class Event(Enum):
    VALID = "valid"  # the body decoded to an event and the headers are sound
    INVALID = "invalid"  # they did not: InvalidEvent
    HANDLER_OK = "handler-ok"  # the handler committed (or found the id already processed)
    HANDLER_FAILED = "handler-failed"  # the handler raised, and attempts remain
    DELIVERY_LIMIT = "delivery-limit"  # the handler raised on the last attempt
    PUBLISH_CONFIRMED = "publish-confirmed"  # the broker confirmed the copy
    ACK_SENT = "ack-sent"  # the worker sent basic_ack for the original
    NACK_SENT = "nack-sent"  # the worker sent basic_nack(requeue=True)
    CHANNEL_CLOSED = "channel-closed"  # the channel or connection went before the ack


_S, _E = State, Event
TRANSITIONS: dict[tuple[State, Event], State] = {
    (_S.DELIVERED, _E.VALID): _S.HANDLING,
    (_S.DELIVERED, _E.INVALID): _S.DEAD_LETTERING,  # no retry: it would fail the same way
    (_S.DELIVERED, _E.NACK_SENT): _S.REQUEUED,  # shutting down before it was started
    (_S.DELIVERED, _E.CHANNEL_CLOSED): _S.REQUEUED,
    (_S.HANDLING, _E.HANDLER_OK): _S.PROCESSED,
    (_S.HANDLING, _E.HANDLER_FAILED): _S.RETRYING,
    (_S.HANDLING, _E.DELIVERY_LIMIT): _S.DEAD_LETTERING,
    (_S.HANDLING, _E.NACK_SENT): _S.REQUEUED,  # cancelled at shutdown, transaction rolled back
    (_S.HANDLING, _E.CHANNEL_CLOSED): _S.REQUEUED,  # if it commits anyway: a no-op next time
    (_S.PROCESSED, _E.ACK_SENT): _S.ACKED,
    (_S.PROCESSED, _E.CHANNEL_CLOSED): _S.REQUEUED,  # committed, not acked: idempotency
    (_S.RETRYING, _E.PUBLISH_CONFIRMED): _S.RETRY_SCHEDULED,
    (_S.RETRYING, _E.NACK_SENT): _S.REQUEUED,  # the broker refused the copy: give it back
    (_S.RETRYING, _E.CHANNEL_CLOSED): _S.REQUEUED,  # the copy may exist too: two deliveries
    (_S.RETRY_SCHEDULED, _E.ACK_SENT): _S.ACKED,
    (_S.RETRY_SCHEDULED, _E.CHANNEL_CLOSED): _S.REQUEUED,
    (_S.DEAD_LETTERING, _E.PUBLISH_CONFIRMED): _S.DEAD_LETTERED,
    (_S.DEAD_LETTERING, _E.NACK_SENT): _S.REQUEUED,
    (_S.DEAD_LETTERING, _E.CHANNEL_CLOSED): _S.REQUEUED,
    (_S.DEAD_LETTERED, _E.ACK_SENT): _S.ACKED,
    (_S.DEAD_LETTERED, _E.CHANNEL_CLOSED): _S.REQUEUED,
}
FINAL = frozenset({State.ACKED, State.REQUEUED})  # this delivery is over


class IllegalTransition(ValueError):
    """An event that the current state has no row for: a bug in the consumer."""

    def __init__(self, state: State, event: Event) -> None:
        super().__init__(f"no transition from {state.name} on {event.name}")
        self.state = state
        self.event = event


def step(state: State, event: Event) -> State:
    """The state after ``event``, or IllegalTransition."""
    new = TRANSITIONS.get((state, event))
    if new is None:
        raise IllegalTransition(state, event)
    return new


class Lifecycle:
    """One delivery's state; the consumer fires each event as it happens, in order."""

    def __init__(self, delivery_tag: int = 0) -> None:
        self.delivery_tag = delivery_tag
        self.state = State.DELIVERED
        self.history: list[Event] = []

    def fire(self, event: Event) -> State:
        self.state = step(self.state, event)  # raises before changing anything
        self.history.append(event)
        return self.state

    @property
    def done(self) -> bool:
        return self.state in FINAL

    def __repr__(self) -> str:
        return f"Lifecycle(tag={self.delivery_tag}, {self.state.name})"


def read_attempt(headers: Mapping[str, Any] | None) -> int:
    """The attempt a delivery is, from its ``x-attempt`` header: absent is 1.

    InvalidEvent for anything but a positive integer (no coercion: "2" and 2.0 are not 2).
    """
    value = (headers or {}).get(X_ATTEMPT)
    if value is None:
        return 1
    if type(value) is not int or value < 1:  # not bool either
        raise InvalidEvent(f"bad {X_ATTEMPT} header: {shorten(repr(value), 40)}")
    return value


@dataclass(frozen=True)
class Decision:
    """What the consumer does with one delivery, in order: publish a copy of the message
    (if ``publish_to``) with ``headers`` added, wait for its confirm, then ack.

    ``path`` is the events from DELIVERED to ACKED; ``outcome`` the state before the ack.
    """

    outcome: State
    path: tuple[Event, ...]
    publish_to: str | None = None  # a queue, through the default exchange
    headers: dict[str, Any] = field(default_factory=dict)


def decide(*, valid: bool, handler_ok: bool | None = None, attempt: int = 1,
           retry_queues: Sequence[str], dead_letter: str, reason: str = "") -> Decision:
    """What to do with a delivery.

    ``valid``: did the body decode and the headers read (``decode``, ``read_attempt``)?
    ``handler_ok``: did the handler commit -- None when it did not run (invalid).
    ``attempt``: from ``read_attempt``. ``retry_queues``: retry queue k's name at k - 1,
    one per delay. ``reason``: the InvalidEvent reason or the handler's error, required
    whenever the message is not processed; it goes to ``x-error``.
    """
    if type(attempt) is not int or attempt < 1:
        raise ValueError(f"attempt must be an integer >= 1, got {attempt!r}")
    if valid and handler_ok is None:
        raise ValueError("a valid message was handled: handler_ok must be True or False")
    if not valid and handler_ok is not None:
        raise ValueError("an invalid message is never handled: handler_ok must be None")
    if valid and handler_ok:
        return Decision(State.PROCESSED, (_E.VALID, _E.HANDLER_OK, _E.ACK_SENT))
    if not reason.strip():
        raise ValueError("a message that is not processed needs a reason for x-error")
    error = shorten(reason)
    if not valid:
        return Decision(State.DEAD_LETTERED, (_E.INVALID, _E.PUBLISH_CONFIRMED, _E.ACK_SENT),
                        dead_letter, {X_DEATH_REASON: INVALID, X_ERROR: error})
    if attempt <= len(retry_queues):  # retry k follows failed attempt k
        return Decision(State.RETRY_SCHEDULED,
                        (_E.VALID, _E.HANDLER_FAILED, _E.PUBLISH_CONFIRMED, _E.ACK_SENT),
                        retry_queues[attempt - 1], {X_ATTEMPT: attempt + 1, X_ERROR: error})
    return Decision(State.DEAD_LETTERED,
                    (_E.VALID, _E.DELIVERY_LIMIT, _E.PUBLISH_CONFIRMED, _E.ACK_SENT),
                    dead_letter,
                    {X_ATTEMPT: attempt, X_DEATH_REASON: DELIVERY_LIMIT, X_ERROR: error})

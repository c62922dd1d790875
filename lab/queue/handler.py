"""The worker's effect in PostgreSQL, applied at most once per message id; and its cleanup.

RabbitMQ delivers *at least once*: a worker that dies before its ack, a relay that
dies between the confirms and its commit, a retry copy confirmed just before the
channel dropped -- each hands the same message (same ``message_id``) to a worker
again. ``handle`` makes the second delivery a no-op, so at-least-once delivery plus
an idempotent handler is effectively once. One statement does both -- a statement
is a transaction of its own, so it is both or neither, in one round trip::

    WITH claim AS (
        INSERT INTO processed_messages (message_id) VALUES ($1)
        ON CONFLICT DO NOTHING RETURNING message_id)  -- the idempotency key, first
    INSERT INTO notifications (...)                   -- the effect, only if claimed
    SELECT ... FROM claim RETURNING message_id
    -- no row back: the id was already processed -> DUPLICATE, nothing written

The same as BEGIN; INSERT the key; INSERT the effect; COMMIT -- four round trips
instead of one, which on this machine is most of a delivery's cost.

Why the key is *inserted*, not looked up. "SELECT, then INSERT if absent" lets two
workers holding two copies both see nothing and both apply the effect. An insert
into a unique index cannot race: the second inserter of the same key waits on the
first's uncommitted row, then sees the commit (-> conflict, DUPLICATE) or the
rollback (-> it inserts, APPLIED). And why *first*: the key's row lock is taken
before any effect, so the loser of that race has written nothing to undo.

Why in the *same* transaction as the effect. Commit the key alone first and a crash
(or a failure) before the effect leaves the key without the effect: every retry is
then a "duplicate" and the message is lost. Commit the effect first and a crash
before the key applies it twice. ``fail`` (a failure rate, for watching retries and
the dead-letter queue) strikes *after* both inserts: the statement then runs inside
an explicit transaction that is rolled back -- the worst place for a real error, and
the rollback must take the key with it, so the retry is APPLIED, not DUPLICATE.

``cleanup`` deletes keys older than a retention, in small batches (short locks,
``SKIP LOCKED`` so several workers' cleanups share the work). The trade-off: a copy
redelivered after its key was deleted is applied again, so the retention must
exceed the longest redelivery window -- the retry delays' sum, plus a margin for a
copy waiting in a backlog (``retention_for``). PostgreSQL unavailable is
``StoreUnavailable`` ("retry later"); the worker decides, nothing is swallowed here.

Unlike production: the effect lives in the same database as the keys (an effect in
another system -- an e-mail, an HTTP call -- would need that system's own
idempotency key); and a real system might key on (consumer, message_id).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random as _random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg

from lab.api.store import StoreUnavailable
from lab.db.pool import DOWN, unavailable
from lab.queue.events import TaskEvent

log = logging.getLogger("lab.queue.handler")

# A batch of events in one statement: the arrays are the events' ids, types and task ids.
# DISTINCT ON: a message delivered twice within one batch is claimed once. ORDER BY: two
# batches that share ids take their key locks in the same order, so they cannot deadlock.
APPLY_SQL = """WITH incoming AS (
    SELECT DISTINCT ON (message_id) message_id, event_type, task_id
    FROM unnest($1::uuid[], $2::text[], $3::integer[]) AS m (message_id, event_type, task_id)
    ORDER BY message_id),
claim AS (
    INSERT INTO processed_messages (message_id)
    SELECT message_id FROM incoming ORDER BY message_id
    ON CONFLICT DO NOTHING RETURNING message_id)
INSERT INTO notifications (message_id, event_type, task_id, worker)
SELECT message_id, event_type, task_id, $4 FROM incoming JOIN claim USING (message_id)
RETURNING message_id"""
# One batch of old keys, the oldest first (processed_messages_processed_at_idx);
# rows another cleanup holds are skipped, not waited for.
CLEANUP_SQL = """DELETE FROM processed_messages WHERE message_id IN (
    SELECT message_id FROM processed_messages WHERE processed_at < $1
    ORDER BY processed_at LIMIT $2 FOR UPDATE SKIP LOCKED)"""

CLEANUP_BATCH = 1000  # rows per DELETE: each holds its locks for milliseconds
CLEANUP_EVERY = 600.0  # seconds between two cleanups
# Beyond the retry delays: a duplicate can wait in a backlog (workers down for hours)
# before it is delivered; one day covers that in the lab.
RETENTION_MARGIN = timedelta(days=1)


class Outcome(enum.Enum):
    APPLIED = "applied"  # the effect and the key committed together
    DUPLICATE = "duplicate"  # the key was there: this message was already applied


class HandlerFailure(Exception):
    """The injected failure: the transaction rolled back, so the message may be retried."""


@dataclass
class FailureRate:
    """Fail an attempt with probability ``rate``; ``random`` is injectable for tests."""

    rate: float = 0.0
    random: Callable[[], float] = field(default=_random.random, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:  # also refuses NaN
            raise ValueError(f"failure rate must be between 0 and 1, got {self.rate!r}")

    def strikes(self) -> bool:
        return self.random() < self.rate  # random() is in [0, 1): rate 1 always, 0 never


NEVER = FailureRate(0.0)

Db = asyncpg.Pool | asyncpg.Connection


@contextlib.asynccontextmanager
async def _connection(db: Db) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


async def handle(db: Db, event: TaskEvent, *, fail: FailureRate = NEVER,
                 worker: str | None = None,
                 after_claim: Callable[[], Awaitable[None]] | None = None) -> Outcome:
    """Apply ``event``'s effect once: APPLIED, or DUPLICATE if its id was already applied.
    ``worker`` names who applied it, in the notification.

    Raises HandlerFailure (injected by ``fail``) or StoreUnavailable, each with nothing
    written; other PostgreSQL errors propagate as they are. ``after_claim`` is a test
    hook, awaited inside a transaction right after the key and the effect were inserted.
    """
    [outcome] = await handle_many(db, [event], fail=fail, worker=worker,
                                  after_claim=after_claim)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def handle_many(db: Db, events: Sequence[TaskEvent], *, fail: FailureRate = NEVER,
                      worker: str | None = None,
                      after_claim: Callable[[], Awaitable[None]] | None = None,
                      ) -> list[Outcome | Exception]:
    """Each event's effect, once; an outcome per event, in order: APPLIED, DUPLICATE, or the
    exception that failed that event (nothing of it written).

    The events go in **one statement**: one round trip and one commit for the batch,
    which is where a worker's time goes. An event ``fail`` strikes runs alone, in a
    transaction rolled back after both inserts. If the batch's statement fails (an
    event PostgreSQL refuses), each event is tried alone, so only the guilty one fails.
    StoreUnavailable (PostgreSQL unreachable) is raised for the whole batch.
    """
    outcomes: list[Outcome | Exception | None] = [None] * len(events)
    striking = [fail.strikes() for _ in events]
    held = [strikes or after_claim is not None for strikes in striking]  # in a transaction
    alone = [i for i, by_itself in enumerate(held) if by_itself]
    together = [i for i, by_itself in enumerate(held) if not by_itself]
    async with unavailable(), _connection(db) as conn:
        for i in alone:
            try:
                async with conn.transaction():  # the statement's effects, held until the end
                    if not await _apply(conn, [events[i]], worker):
                        outcomes[i] = Outcome.DUPLICATE  # nothing written; a no-op commit
                        continue
                    if after_claim is not None:
                        await after_claim()
                    if striking[i]:  # after both inserts, inside the transaction
                        raise HandlerFailure(f"injected failure (rate {fail.rate}) "
                                             f"for {events[i].id}")
                    outcomes[i] = Outcome.APPLIED
            except HandlerFailure as exc:  # the rollback took the key with the effect
                outcomes[i] = exc
        try:
            applied = await _apply(conn, [events[i] for i in together], worker)
        except DOWN:
            raise  # the database, not an event: StoreUnavailable for the batch
        except asyncpg.PostgresError:  # an event the statement refused: find which
            for i in together:
                try:
                    applied = await _apply(conn, [events[i]], worker)
                except DOWN:
                    raise
                except asyncpg.PostgresError as exc:
                    outcomes[i] = exc
                else:
                    outcomes[i] = Outcome.APPLIED if applied else Outcome.DUPLICATE
        else:
            for i in together:  # the first of two copies in one batch applies, not the second
                first = events[i].id in applied
                applied.discard(events[i].id)
                outcomes[i] = Outcome.APPLIED if first else Outcome.DUPLICATE
    return outcomes  # type: ignore[return-value]  # every slot is filled above


async def _apply(conn: asyncpg.Connection, events: Sequence[TaskEvent],
                 worker: str | None) -> set[str]:
    """APPLY_SQL for ``events``; the ids it applied (the others were duplicates)."""
    if not events:
        return set()
    rows = await conn.fetch(APPLY_SQL, [e.id for e in events], [e.type for e in events],
                            [e.payload["id"] for e in events], worker)
    return {str(row["message_id"]) for row in rows}


def retention_for(delays: Sequence[float], margin: timedelta = RETENTION_MARGIN) -> timedelta:
    """How long to keep a key: the longest retry path (the delays' sum) plus ``margin``.

    Pass ``settings.queue_retry_delays``. A shorter retention lets a late copy apply twice.
    """
    if margin < timedelta(0):
        raise ValueError(f"margin must not be negative, got {margin}")
    return timedelta(seconds=sum(delays)) + margin


async def cleanup(db: Db, older_than: timedelta, *, batch: int = CLEANUP_BATCH) -> int:
    """Delete the keys processed more than ``older_than`` ago; how many were deleted.

    Each batch is its own statement (its own transaction), so no lock is held for long.
    The cutoff is taken once, from PostgreSQL's clock (the one ``processed_at`` uses).
    """
    if older_than <= timedelta(0):
        raise ValueError(f"older_than must be positive, got {older_than}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    deleted = 0
    async with unavailable(), _connection(db) as conn:
        cutoff = await conn.fetchval("SELECT now() - $1::interval", older_than)
        while True:
            status = await conn.execute(CLEANUP_SQL, cutoff, batch)  # "DELETE n"
            count = int(status.rsplit(" ", 1)[1])
            deleted += count
            if count < batch:
                return deleted


async def run_cleanup(db: Db, every: float, older_than: timedelta,
                      stop: asyncio.Event) -> int:
    """Run ``cleanup`` now and every ``every`` seconds until ``stop`` is set; the total.

    For a worker to own as a task. PostgreSQL unavailable is one log line and the next
    round tries again; any other error ends the task, for its owner to see.
    """
    if every <= 0:
        raise ValueError(f"every must be positive, got {every!r}")
    total = 0
    while not stop.is_set():
        try:
            count = await cleanup(db, older_than)
        except StoreUnavailable as exc:
            log.warning("processed_messages cleanup skipped: %s", exc)
        else:
            total += count
            log.log(logging.INFO if count else logging.DEBUG,
                    "processed_messages cleanup: %d keys older than %s deleted",
                    count, older_than)
        with contextlib.suppress(TimeoutError):  # the timeout is the schedule
            await asyncio.wait_for(stop.wait(), every)
    return total

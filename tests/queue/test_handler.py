"""lab.queue.handler: the effect applied once per message id, against the real PostgreSQL.

lab_test's ``public`` schema, its two tables truncated by the owner first; the handler
runs as the API's role (``lab_app``), as the worker will. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from lab.api.store import StoreUnavailable
from lab.queue import events
from lab.queue.handler import (
    FailureRate,
    HandlerFailure,
    Outcome,
    cleanup,
    handle,
    handle_many,
    retention_for,
    run_cleanup,
)

pytestmark = pytest.mark.integration

TIMEOUT = 10  # seconds: no test waits longer for any one thing
NOW = datetime(2026, 12, 5, 9, 55, 39, tzinfo=UTC)


def event(task_id: int = 7) -> events.TaskEvent:
    return events.build_event("task.deleted", {"id": task_id}, clock=lambda: NOW)


@pytest.fixture
async def conns(owner, app_url):
    """Two connections as the API's role: two workers."""
    made = [await asyncpg.connect(app_url) for _ in range(2)]
    try:
        yield made
    finally:
        for conn in made:
            await conn.close()


async def counts(owner) -> tuple[int, int]:
    """(keys, notifications)."""
    return (await owner.fetchval("SELECT count(*) FROM processed_messages"),
            await owner.fetchval("SELECT count(*) FROM notifications"))


async def test_the_first_delivery_applies_and_the_second_is_a_duplicate(owner, conns):
    e = event(7)
    assert await handle(conns[0], e, worker="worker-1") is Outcome.APPLIED
    assert await handle(conns[0], e, worker="worker-1") is Outcome.DUPLICATE
    assert await handle(conns[1], e, worker="worker-2") is Outcome.DUPLICATE  # the same
    rows = await owner.fetch("SELECT message_id, event_type, task_id, worker "
                             "FROM notifications")
    assert [tuple(r) for r in rows] == [(uuid.UUID(e.id), "task.deleted", 7, "worker-1")]
    assert await counts(owner) == (1, 1)


async def test_a_pool_works_as_well_as_a_connection(owner, app_url):
    pool = await asyncpg.create_pool(app_url, min_size=0, max_size=2)
    try:
        e = event()
        assert await handle(pool, e) is Outcome.APPLIED
        assert await handle(pool, e) is Outcome.DUPLICATE
    finally:
        await pool.close()
    assert await counts(owner) == (1, 1)


async def blocked_by(observer, waiter_pid: int, holder_pid: int) -> None:
    """Return once PostgreSQL shows ``waiter_pid`` waiting on ``holder_pid``'s lock."""
    async with asyncio.timeout(TIMEOUT):
        while holder_pid not in await observer.fetchval("SELECT pg_blocking_pids($1)",
                                                        waiter_pid):
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("first_fails", [False, True])
async def test_two_workers_on_the_same_message_apply_it_once(owner, conns, app_url,
                                                             first_fails):
    # The first worker's transaction has inserted the key and not committed: the second
    # worker's INSERT of the same key into the unique index must wait for it (there is
    # no "SELECT, then INSERT" window where both could see nothing). The hook holds the
    # first transaction open until PostgreSQL shows the second one waiting, so the
    # overlap is certain, not timed. On the first's COMMIT the second's ON CONFLICT DO
    # NOTHING finds the key (DUPLICATE); on its ROLLBACK the second inserts (APPLIED).
    e = event()
    first, second = conns
    claimed = asyncio.Event()
    observer = await asyncpg.connect(app_url)  # same role: it may see their locks

    async def hold_until_the_second_waits() -> None:
        claimed.set()
        await blocked_by(observer, second.get_server_pid(), first.get_server_pid())

    async def run_first():
        fail = FailureRate(1.0 if first_fails else 0.0)
        return await handle(first, e, fail=fail, after_claim=hold_until_the_second_waits)

    async def run_second():
        await claimed.wait()
        return await handle(second, e)

    try:
        async with asyncio.timeout(TIMEOUT):
            results = await asyncio.gather(run_first(), run_second(), return_exceptions=True)
    finally:
        await observer.close()
    if first_fails:
        assert isinstance(results[0], HandlerFailure) and results[1] is Outcome.APPLIED
    else:
        assert results == [Outcome.APPLIED, Outcome.DUPLICATE]
    assert await counts(owner) == (1, 1)


async def test_a_batch_applies_each_event_once_in_one_statement(owner, conns):
    a, b = event(1), event(2)
    assert await handle_many(conns[0], [a], worker="w") == [Outcome.APPLIED]
    # a again (applied before), b twice in the same batch: only b's first copy applies.
    assert await handle_many(conns[0], [a, b, b], worker="w") == [
        Outcome.DUPLICATE, Outcome.APPLIED, Outcome.DUPLICATE]
    rows = await owner.fetch("SELECT task_id, worker FROM notifications ORDER BY task_id")
    assert [tuple(r) for r in rows] == [(1, "w"), (2, "w")]
    assert await counts(owner) == (2, 2)


async def test_in_a_batch_only_the_event_that_fails_is_left_undone(owner, conns):
    draws = iter([0.9, 0.1, 0.9])  # rate 0.5: the second event's attempt fails
    fail = FailureRate(0.5, random=lambda: next(draws))
    a, b, c = event(1), event(2), event(3)
    outcomes = await handle_many(conns[0], [a, b, c], fail=fail)
    assert outcomes[0] is Outcome.APPLIED and outcomes[2] is Outcome.APPLIED
    assert isinstance(outcomes[1], HandlerFailure)
    assert await counts(owner) == (2, 2)  # b's key rolled back with its effect
    assert await handle(conns[0], b) is Outcome.APPLIED  # so its retry applies


async def test_an_event_the_statement_refuses_fails_alone_and_the_others_apply(owner, conns):
    # A task id past PostgreSQL's integer: the batch's statement cannot run, so each event
    # is tried alone, and only that one fails.
    good, bad = event(1), event(1)
    bad = events.TaskEvent(bad.id, bad.type, bad.version, bad.occurred_at, bad.source,
                           {"id": 2**40})
    outcomes = await handle_many(conns[0], [good, bad])
    assert outcomes[0] is Outcome.APPLIED
    assert isinstance(outcomes[1], asyncpg.DataError)
    assert await counts(owner) == (1, 1)


async def test_a_failed_attempt_leaves_nothing_and_its_retry_applies(owner, conns):
    e = event()
    with pytest.raises(HandlerFailure, match="injected failure"):
        await handle(conns[0], e, fail=FailureRate(1.0))
    assert await counts(owner) == (0, 0)  # the rollback took the key with the effect
    assert await handle(conns[0], e) is Outcome.APPLIED  # not DUPLICATE: nothing was lost
    assert await handle(conns[0], e, fail=FailureRate(1.0)) is Outcome.DUPLICATE
    assert await counts(owner) == (1, 1)


async def test_the_failure_rate_follows_its_random_source(owner, conns):
    draws = iter([0.29, 0.31, 0.5])
    fail = FailureRate(0.3, random=lambda: next(draws))
    with pytest.raises(HandlerFailure):
        await handle(conns[0], event(1), fail=fail)
    assert await handle(conns[0], event(2), fail=fail) is Outcome.APPLIED
    assert await handle(conns[0], event(3), fail=fail) is Outcome.APPLIED
    assert await counts(owner) == (2, 2)


def test_rates_zero_and_one_never_and_always_fail_and_others_are_refused():
    seeded = random.Random(5)
    assert not any(FailureRate(0.0, seeded.random).strikes() for _ in range(1000))
    assert all(FailureRate(1.0, seeded.random).strikes() for _ in range(1000))
    assert FailureRate(0.0, lambda: 0.0).strikes() is False  # the edges of [0, 1)
    assert FailureRate(1.0, lambda: 0.9999999).strikes() is True
    for bad in (-0.1, 1.01, float("nan")):
        with pytest.raises(ValueError, match="between 0 and 1"):
            FailureRate(bad)


async def test_cleanup_deletes_only_old_keys_in_batches(owner, conns):
    for task_id in range(1, 8):
        await handle(conns[0], event(task_id))
    await owner.execute("""UPDATE processed_messages SET processed_at = now() - interval '2 hours'
        WHERE message_id IN (SELECT message_id FROM processed_messages LIMIT 5)""")
    assert await cleanup(conns[1], timedelta(hours=1), batch=2) == 5  # 2 + 2 + 1
    assert await counts(owner) == (2, 7)  # the effects stay; only old keys go
    assert await cleanup(conns[1], timedelta(hours=1)) == 0
    with pytest.raises(ValueError):
        await cleanup(conns[1], timedelta(0))


async def test_run_cleanup_runs_at_once_then_stops_when_told(owner, conns):
    await handle(conns[0], event())
    await owner.execute("UPDATE processed_messages SET processed_at = now() - interval '1 day'")
    stop = asyncio.Event()
    task = asyncio.create_task(run_cleanup(conns[1], 60.0, timedelta(hours=1), stop))
    async with asyncio.timeout(TIMEOUT):
        while (await counts(owner))[0]:
            await asyncio.sleep(0.01)
        stop.set()  # ends the 60 s wait at once
        assert await task == 1


async def test_postgresql_unreachable_is_store_unavailable(owner):
    # A port nobody listens on: what the worker sees while PostgreSQL is down.
    pool = await asyncpg.create_pool("postgresql://lab_app:x@127.0.0.1:1/lab_test",
                                     min_size=0, max_size=1)
    try:
        with pytest.raises(StoreUnavailable):
            await handle(pool, event())
        with pytest.raises(StoreUnavailable):
            await cleanup(pool, timedelta(hours=1))
    finally:
        await pool.close()


def test_the_retention_outlasts_every_retry(lab_settings):
    delays = lab_settings.queue_retry_delays
    assert retention_for(delays) > timedelta(seconds=sum(delays))
    assert retention_for((1, 5, 25), timedelta(0)) == timedelta(seconds=31)
    with pytest.raises(ValueError):
        retention_for(delays, timedelta(seconds=-1))

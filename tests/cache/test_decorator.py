"""``cached``: plain memoisation for functions, single flight for coroutines.

The async tests use real concurrency -- many tasks on one event loop -- and an
``asyncio.Event`` to hold the loader open, so "concurrent" is certain, not hoped
for, and no test sleeps.
"""

import asyncio

import pytest

from lab.cache import LRUCache, TTLCache, cached
from tests.cache.clock import FakeClock


def test_sync_function_is_called_once_per_key():
    calls = []

    @cached(LRUCache(10))
    def square(n):
        calls.append(n)
        return n * n

    assert [square(3), square(3), square(4)] == [9, 9, 16]
    assert calls == [3, 4]
    assert square.cache.stats.hits == 1


def test_custom_key_enables_prefix_invalidation():
    cache = LRUCache(10)
    loads = []

    @cached(cache, key=lambda task_id: f"task:{task_id}")
    def load_task(task_id):
        loads.append(task_id)
        return {"id": task_id}

    load_task(1)
    load_task(2)
    assert sorted(cache) == ["task:1", "task:2"]
    cache.invalidate_prefix("task:")
    load_task(1)
    assert loads == [1, 2, 1]


def test_default_key_tells_arguments_apart():
    calls = []

    @cached(LRUCache(10))
    def f(*args, **kwargs):
        calls.append((args, kwargs))
        return len(calls)

    f(1)
    f((1,))  # a one-tuple argument is a different call from the bare argument
    f(1, 2)
    f(1, b=2)
    f(1, b=2)
    assert len(calls) == 4


def test_sync_exceptions_are_not_cached():
    attempts = []

    @cached(LRUCache(10))
    def flaky(n):
        attempts.append(n)
        if len(attempts) == 1:
            raise RuntimeError("database down")
        return n

    with pytest.raises(RuntimeError):
        flaky(1)
    assert flaky(1) == 1
    assert attempts == [1, 1]


def test_entries_follow_the_cache_policy():
    clock = FakeClock()
    calls = []

    @cached(TTLCache(10, ttl=5, clock=clock))
    def now_value(n):
        calls.append(n)
        return n

    now_value(1)
    clock.tick(6)
    now_value(1)
    assert calls == [1, 1]


def test_rejects_something_that_is_not_a_lab_cache():
    with pytest.raises(ValueError, match="lab cache"):
        cached({})


async def test_concurrent_misses_run_the_loader_once():
    release = asyncio.Event()
    calls = 0

    @cached(LRUCache(10))
    async def load(key):
        nonlocal calls
        calls += 1
        await release.wait()
        return f"value-{key}"

    waiters = [asyncio.create_task(load("k")) for _ in range(100)]
    await asyncio.sleep(0)  # let every waiter reach the flight
    assert len(load.in_flight) == 1
    release.set()
    results = await asyncio.gather(*waiters)
    assert results == ["value-k"] * 100
    assert calls == 1
    assert load.in_flight == {}
    assert await load("k") == "value-k" and calls == 1  # now a plain hit


async def test_different_keys_fly_separately():
    release = asyncio.Event()
    calls = []

    @cached(LRUCache(10))
    async def load(key):
        calls.append(key)
        await release.wait()
        return key

    tasks = [asyncio.create_task(load(k)) for k in "abab"]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*tasks) == list("abab")
    assert sorted(calls) == ["a", "b"]


async def test_a_failing_loader_wakes_every_waiter_and_caches_nothing():
    release = asyncio.Event()
    calls = 0

    @cached(LRUCache(10))
    async def load(key):
        nonlocal calls
        calls += 1
        await release.wait()
        if calls == 1:
            raise ConnectionError("database down")
        return "ok"

    waiters = [asyncio.create_task(load("k")) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert calls == 1
    assert "k" not in load.cache
    assert load.in_flight == {}
    assert await load("k") == "ok"  # the next call tries again
    assert calls == 2


async def test_cancelling_one_waiter_does_not_cancel_the_load():
    release = asyncio.Event()
    calls = 0

    @cached(LRUCache(10))
    async def load(key):
        nonlocal calls
        calls += 1
        await release.wait()
        return "loaded"

    leader = asyncio.create_task(load("k"))  # the caller that started the flight
    others = [asyncio.create_task(load("k")) for _ in range(5)]
    await asyncio.sleep(0)
    leader.cancel()
    others[0].cancel()
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*others[1:]) == ["loaded"] * 4
    assert leader.cancelled() and others[0].cancelled()
    assert calls == 1
    assert load.cache["k"] == "loaded"


async def test_a_load_whose_waiters_all_left_still_fills_the_cache():
    release = asyncio.Event()

    @cached(LRUCache(10))
    async def load(key):
        await release.wait()
        return "late"

    waiter = asyncio.create_task(load("k"))
    await asyncio.sleep(0)
    (flight,) = load.in_flight.values()
    waiter.cancel()
    release.set()
    await flight
    assert load.cache["k"] == "late"


def test_a_tuple_argument_is_not_the_same_call_as_its_items():
    @cached(LRUCache(10))
    def count(*args):
        return len(args)

    assert count(1, 2) == 2
    assert count((1, 2)) == 1


async def test_a_loader_that_asks_for_its_own_key_fails_instead_of_hanging():
    @cached(LRUCache(10))
    async def recursive(n):
        return await recursive(n)

    with pytest.raises(RuntimeError, match="re-entered"):
        await asyncio.wait_for(recursive(1), timeout=5)
    assert recursive.in_flight == {}

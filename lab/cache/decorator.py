"""``cached``: memoise a function in any lab cache; single-flight for coroutines.

Cache-aside, wrapped: look the key up; on a miss, call the function and store
its result. For ``async def`` functions a miss is also a *single flight*: while
one load for a key is running, later callers for the same key wait for that
load instead of starting their own. This is what stops a cache stampede -- a
hot key expires and a thousand requests hit the database at once.

How the async path works (``_Flights``): the first caller to miss starts the
load as its own ``asyncio.Task`` and records it in ``in_flight[key]``; every
caller, the first included, awaits ``asyncio.shield(task)``. So:

* N concurrent misses run the loader once and all N get its result;
* a loader that raises wakes every waiter with that same exception, and
  nothing is cached (the next call tries again);
* a caller that is cancelled stops *waiting*; the shield keeps the load
  running for the others, and its result is still cached.

Limits, on purpose: a loader that is itself cancelled (not a waiter) wakes
every waiter with ``CancelledError``; loaders that wait on each other's keys
(A loads B, B loads A) deadlock -- only a loader asking for its *own* key is
caught, with ``RuntimeError``; an invalidation that lands while a load is in
flight is overwritten when the load stores its (older) result, the classic
cache-aside race that challenge 4's generation numbers close.

The sync wrapper is plain memoisation: no threads here, so no flights.
Exceptions are never cached. The production tools: ``functools.lru_cache``
(C, sync only), ``cachetools.cached`` (sync; ``cachetools-async`` or
``aiocache`` for coroutines).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable, Hashable
from typing import Any

from lab.cache.base import MISSING, Cache

_KWARGS = object()  # separates positional from keyword arguments in a default key


def default_key(*args: Hashable, **kwargs: Hashable) -> Hashable:
    """The arguments as one hashable key: the argument itself when there is just one.

    Not when that one argument is a tuple: ``f((1, 2))`` and ``f(1, 2)`` must not
    share a key.
    """
    if not kwargs:
        if len(args) == 1 and not isinstance(args[0], tuple):
            return args[0]
        return args
    return (*args, _KWARGS, *sorted(kwargs.items()))


def cached(cache: Cache, key: Callable[..., Hashable] = default_key) -> Callable:
    """Decorate a function or coroutine function so its results live in ``cache``.

    ``key`` maps the call's arguments to the cache key, e.g.
    ``key=lambda task_id: f"task:{task_id}"`` (then ``cache.invalidate_prefix("task:")``
    works). The wrapper exposes ``.cache`` and ``.key``.
    """
    if not isinstance(cache, Cache):
        raise ValueError(f"cached() needs a lab cache, got {type(cache).__name__}")

    def decorate(func: Callable) -> Callable:
        if inspect.iscoroutinefunction(func):
            wrapper = _async_wrapper(func, cache, key)
        else:
            wrapper = _sync_wrapper(func, cache, key)
        wrapper.cache = cache  # type: ignore[attr-defined]
        wrapper.key = key  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _sync_wrapper(func: Callable, cache: Cache, key: Callable) -> Callable:
    get = cache.get
    one_argument_is_the_key = key is default_key

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # The common case, one positional argument and the default key, skips a call.
        if (
            one_argument_is_the_key
            and len(args) == 1
            and not kwargs
            and not isinstance(args[0], tuple)
        ):
            k = args[0]
        else:
            k = key(*args, **kwargs)
        value = get(k, MISSING)
        if value is MISSING:
            value = func(*args, **kwargs)
            cache[k] = value
        return value

    return wrapper


def _async_wrapper(func: Callable, cache: Cache, key: Callable) -> Callable:
    in_flight: dict[Hashable, asyncio.Task] = {}

    async def load(k: Hashable, args: tuple, kwargs: dict) -> Any:
        value = await func(*args, **kwargs)
        cache[k] = value  # stored before the flight lands, so no gap for a new miss
        return value

    def land(k: Hashable, task: asyncio.Task) -> None:
        del in_flight[k]
        if not task.cancelled():
            task.exception()  # mark it retrieved: if every waiter left, no warning

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        k = key(*args, **kwargs)
        value = cache.get(k, MISSING)
        if value is not MISSING:
            return value
        task = in_flight.get(k)
        if task is not None and task is asyncio.current_task():
            # The loader asked for its own key: awaiting its own flight would hang forever.
            raise RuntimeError(f"cached loader re-entered for key {k!r}")
        if task is None:
            task = asyncio.ensure_future(load(k, args, kwargs))
            in_flight[k] = task
            task.add_done_callback(functools.partial(land, k))
        # shield: a cancelled caller stops waiting but does not cancel the load
        return await asyncio.shield(task)

    wrapper.in_flight = in_flight  # type: ignore[attr-defined]
    return wrapper

"""In-process cache operations: the lab's caches beside cachetools and functools.

Every side runs the same loop over the same trace (``workload.py``); one
benchmark round is one pass over the trace, and the harness reports the median
round divided by its length, in ns per operation. The loop itself costs the
same on every side, so it narrows ratios a little; it never flatters either.

Both sides are used as their users write them: ``cache[key]`` for a read that
is known to hit, ``cache.get(key)`` then ``cache[key] = value`` for
cache-aside, a decorated function for memoisation.
"""

from __future__ import annotations

import functools

import cachetools
import pytest

from bench.cache.workload import (
    KEYS,
    LONG_TRACE_LEN,
    MAXSIZE,
    hit_trace,
    miss_trace,
    mixed_trace,
    zipf_trace,
)
from bench.registry import Comparison
from lab.cache import LRUCache, TTLCache, cached

TTL = 600  # long enough that nothing expires inside a benchmark: we time the lookups

CACHES = {
    "lab.LRUCache": lambda: LRUCache(MAXSIZE),
    "cachetools.LRUCache": lambda: cachetools.LRUCache(MAXSIZE),
    "lab.TTLCache": lambda: TTLCache(MAXSIZE, ttl=TTL),
    "cachetools.TTLCache": lambda: cachetools.TTLCache(MAXSIZE, ttl=TTL),
}

MEMOISERS = {
    "lab.cached": lambda f: cached(LRUCache(MAXSIZE))(f),
    "functools.lru_cache": lambda f: functools.lru_cache(maxsize=MAXSIZE)(f),
    "cachetools.cached": lambda f: cachetools.cached(cachetools.LRUCache(MAXSIZE))(f),
}


def _pairs(operation: str, lab: str, production: str, target=None) -> Comparison:
    return Comparison(
        "cache", operation, f"cache/{operation}/{lab}", f"cache/{operation}/{production}",
        production, target,
    )


COMPARISONS = [
    _pairs("get-hit", "lab.LRUCache", "cachetools.LRUCache", ("<=", 0.5)),
    _pairs("get-hit", "lab.LRUCache", "functools.lru_cache", ("<=", 2.0)),
    _pairs("get-hit", "lab.TTLCache", "cachetools.TTLCache", ("<=", 0.25)),
    _pairs("miss+set", "lab.LRUCache", "cachetools.LRUCache", ("<=", 0.4)),
    _pairs("miss+set", "lab.TTLCache", "cachetools.TTLCache", ("<=", 0.4)),
    _pairs("mixed 90/10", "lab.LRUCache", "cachetools.LRUCache"),
    _pairs("mixed 90/10", "lab.TTLCache", "cachetools.TTLCache"),
    _pairs("memoised call", "lab.cached", "functools.lru_cache"),
    _pairs("memoised call", "lab.cached", "cachetools.cached"),
]


def run(benchmark, operation: str, side: str, ops: int, loop) -> None:
    benchmark.group = f"cache: {operation}"
    benchmark.extra_info.update(id=f"cache/{operation}/{side}", ops=ops)
    benchmark(loop)


@pytest.mark.parametrize("side", CACHES)
def test_get_hit(benchmark, side):
    cache = CACHES[side]()
    preload, trace = hit_trace()
    for key in preload:
        cache[key] = key

    def loop():
        for key in trace:
            cache[key]

    run(benchmark, "get-hit", side, len(trace), loop)
    assert cache.get(trace[0]) == trace[0]  # still a hit: the loop measured hits


def test_get_hit_lru_cache(benchmark):
    preload, trace = hit_trace()
    lookup = functools.lru_cache(maxsize=MAXSIZE)(lambda key: key)
    for key in preload:
        lookup(key)

    def loop():
        for key in trace:
            lookup(key)

    run(benchmark, "get-hit", "functools.lru_cache", len(trace), loop)
    assert lookup.cache_info().misses == MAXSIZE  # only the preload missed


@pytest.mark.parametrize("side", CACHES)
def test_miss_and_set(benchmark, side):
    cache = CACHES[side]()
    trace = miss_trace()

    def loop():
        for key in trace:
            if cache.get(key) is None:
                cache[key] = key

    run(benchmark, "miss+set", side, len(trace), loop)
    assert len(cache) == MAXSIZE and trace[0] not in cache  # the loop evicted as it went


@pytest.mark.parametrize("side", CACHES)
def test_mixed(benchmark, side):
    cache = CACHES[side]()
    trace = mixed_trace()

    def loop():
        for is_write, key in trace:
            if is_write:
                cache[key] = key
            elif cache.get(key) is None:
                cache[key] = key  # cache-aside: load on a miss

    run(benchmark, "mixed 90/10", side, len(trace), loop)
    assert len(cache) == MAXSIZE


@pytest.mark.parametrize("side", MEMOISERS)
def test_memoised_call(benchmark, side):
    trace = zipf_trace(KEYS, LONG_TRACE_LEN, seed=4)
    square = MEMOISERS[side](lambda key: key * 2)

    def loop():
        for key in trace:
            square(key)

    run(benchmark, "memoised call", side, len(trace), loop)
    assert square(trace[0]) == trace[0] * 2

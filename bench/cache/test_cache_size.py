"""Memory held by a cache of one million small entries, measured with tracemalloc.

Keys are built before tracing starts and every value is the small int 1 (a
shared object), so the figure is the cache's own structure: hash tables,
linked-list nodes, per-entry records. Lower is better.
"""

from __future__ import annotations

import gc
import tracemalloc

import cachetools
import pytest

from bench.registry import Comparison
from lab.cache import LRUCache, TTLCache

ENTRIES = 1_000_000

CACHES = {
    "lab.LRUCache": lambda n: LRUCache(n),
    "cachetools.LRUCache": lambda n: cachetools.LRUCache(n),
    "lab.TTLCache": lambda n: TTLCache(n, ttl=600),
    "cachetools.TTLCache": lambda n: cachetools.TTLCache(n, ttl=600),
}

COMPARISONS = [
    Comparison("cache", "memory, 1M entries", "cache/memory/lab.LRUCache",
               "cache/memory/cachetools.LRUCache", "cachetools.LRUCache", ("<=", 1.2)),
    Comparison("cache", "memory, 1M entries", "cache/memory/lab.TTLCache",
               "cache/memory/cachetools.TTLCache", "cachetools.TTLCache"),
]


@pytest.mark.parametrize("side", CACHES)
def test_memory(side, record, quick):
    entries = 20_000 if quick else ENTRIES
    keys = [f"key:{i}" for i in range(entries)]
    gc.collect()
    tracemalloc.start()
    try:
        cache = CACHES[side](entries)
        for key in keys:
            cache[key] = 1
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(cache) == entries
    record(f"cache/memory/{side}", held / 2**20, "MiB")

"""The key traces every cache benchmark shares: one workload, several caches.

Keys follow a Zipf law (the k-th most popular key is asked for in proportion
to 1/k), as real read traffic roughly does: a few hot keys, a long cold tail.
100,000 distinct keys, a cache of 10,000 entries. Fixed seeds: every run and
every side sees the same trace.
"""

from __future__ import annotations

import itertools
import random

KEYS = 100_000
MAXSIZE = 10_000
TRACE_LEN = 20_000  # hits and misses: enough for a stable per-op time
LONG_TRACE_LEN = 200_000  # mixed traffic: long enough to touch ~40k keys, 4x the cache
ZIPF_S = 1.0


def zipf_trace(n_keys: int, length: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    weights = itertools.accumulate(1 / (rank**ZIPF_S) for rank in range(1, n_keys + 1))
    ranks = rng.choices(range(n_keys), cum_weights=list(weights), k=length)
    return [f"key:{rank}" for rank in ranks]


def hit_trace() -> tuple[list[str], list[str]]:
    """Keys to pre-load (the MAXSIZE hottest) and a trace that only asks for them."""
    return [f"key:{r}" for r in range(MAXSIZE)], zipf_trace(MAXSIZE, TRACE_LEN, seed=1)


def miss_trace() -> list[str]:
    """Distinct keys in a loop twice the cache's size: under LRU every access misses."""
    return [f"cold:{i}" for i in range(2 * MAXSIZE)]


def mixed_trace() -> list[tuple[bool, str]]:
    """90% reads, 10% writes, over all KEYS with Zipf popularity: (is_write, key)."""
    rng = random.Random(3)
    keys = zipf_trace(KEYS, LONG_TRACE_LEN, seed=2)
    return [(rng.random() < 0.10, key) for key in keys]

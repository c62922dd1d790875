"""Hypothesis drives LRUCache and TTLCache with random operations and compares
them, step by step, with a reference model small enough to be obviously right:
a Python list of (key, value, expires_at) in recency order, searched linearly."""

import math

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lab.cache import LRUCache, TTLCache
from tests.cache.clock import FakeClock

KEYS = st.sampled_from(["a", "b", "c", "d", "e", "f"])
VALUES = st.integers(0, 9)
MAXSIZE = 4


class Model:
    """Recency-ordered list; index 0 is the least recently used."""

    def __init__(self, maxsize, clock):
        self.maxsize, self.clock, self.rows = maxsize, clock, []

    def _find(self, key):
        for i, (k, _, expires_at) in enumerate(self.rows):
            if k == key:
                if expires_at <= self.clock():
                    del self.rows[i]  # expired: as good as absent
                    return None
                return i
        return None

    def get(self, key):
        i = self._find(key)
        if i is None:
            return None
        row = self.rows.pop(i)
        self.rows.append(row)
        return row[1]

    def set(self, key, value, ttl):
        i = self._find(key)
        if i is not None:
            del self.rows[i]
        elif len(self.rows) >= self.maxsize:
            del self.rows[0]
        self.rows.append((key, value, self.clock() + ttl))

    def delete(self, key):
        i = self._find(key)
        if i is not None:
            del self.rows[i]
        return i is not None

    def live_keys(self):
        return [k for k, _, e in self.rows if e > self.clock()]

    def stored_keys(self):
        return [k for k, _, _ in self.rows]

    def reclaim(self, keys):
        """The cache swept ``keys`` away on its own: each must have expired."""
        now = self.clock()
        for k, _, expires_at in self.rows:
            if k in keys:
                assert expires_at <= now, f"{k!r} was reclaimed while still live"
        self.rows = [row for row in self.rows if row[0] not in keys]


class LRUMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.clock = FakeClock()
        self.cache = self.make_cache()
        self.model = Model(MAXSIZE, self.clock)

    def make_cache(self):
        return LRUCache(MAXSIZE)

    @rule(key=KEYS)
    def get(self, key):
        assert self.cache.get(key) == self.model.get(key)

    @rule(key=KEYS, value=VALUES)
    def set(self, key, value):
        self.cache[key] = value
        self.model.set(key, value, math.inf)

    @rule(key=KEYS)
    def delete(self, key):
        assert self.cache.invalidate(key) == self.model.delete(key)

    @invariant()
    def same_live_keys_in_recency_order(self):
        assert list(self.cache) == self.model.live_keys()
        assert len(list(self.cache._storage())) <= MAXSIZE


class TTLMachine(LRUMachine):
    def make_cache(self):
        return TTLCache(MAXSIZE, ttl=5, clock=self.clock)

    def reconcile(self):
        """Mirror in the model the expired entries the cache's sweeps reclaimed.

        Which expired entries a sweep reaches depends on the sweep cursor, an
        implementation detail; what must hold is that it only ever takes
        expired ones and never invents a key.
        """
        stored = set(self.cache._entries)
        assert stored <= set(self.model.stored_keys())
        self.model.reclaim(set(self.model.stored_keys()) - stored)

    @rule(key=KEYS, value=VALUES, ttl=st.sampled_from([1, 2, 5, 30]))
    def set_with_ttl(self, key, value, ttl):
        self.cache.set(key, value, ttl=ttl)
        self.model.set(key, value, ttl)
        self.reconcile()

    @rule(key=KEYS, value=VALUES)
    def set(self, key, value):
        self.cache[key] = value
        self.model.set(key, value, 5)
        self.reconcile()

    @rule(seconds=st.sampled_from([0.5, 1, 3]))
    def tick(self, seconds):
        self.clock.tick(seconds)

    @precondition(lambda self: len(self.cache._entries) > 0)
    @rule()
    def sweep(self):
        self.cache.expire()
        self.reconcile()

    @invariant()
    def slots_match_entries(self):
        cache = self.cache
        assert len(cache._slots) == len(cache._entries) <= MAXSIZE
        for key, entry in cache._entries.items():
            assert cache._slots[entry.slot] == key

    @invariant()
    def same_stored_entries_in_recency_order(self):
        # Expired entries included: they occupy room until a read, a sweep or an
        # eviction reclaims them, in the cache as in the model.
        assert list(self.cache._entries) == self.model.stored_keys()
        assert list(self.cache) == self.model.live_keys()


TestLRUCacheAgainstModel = LRUMachine.TestCase
TestTTLCacheAgainstModel = TTLMachine.TestCase
RUNS = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestLRUCacheAgainstModel.settings = RUNS
TestTTLCacheAgainstModel.settings = RUNS

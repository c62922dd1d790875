"""One behaviour suite, run against the lab's caches and cachetools' equivalents.

What is checked here is the contract a caller relies on whatever the
implementation: a bounded mapping that forgets the least recently used entry.
Where the lab and cachetools differ on purpose (e.g. stats), the lab-only
tests live in test_lru.py and test_ttl.py.
"""

import cachetools
import pytest

from lab.cache import LRUCache, TTLCache
from tests.cache.clock import FakeClock

FACTORIES = {
    "lab.LRUCache": lambda n: LRUCache(n),
    "lab.TTLCache": lambda n: TTLCache(n, ttl=60, clock=FakeClock()),
    "cachetools.LRUCache": lambda n: cachetools.LRUCache(n),
    "cachetools.TTLCache": lambda n: cachetools.TTLCache(n, ttl=60, timer=FakeClock()),
}


@pytest.fixture(params=FACTORIES.values(), ids=FACTORIES.keys())
def make(request):
    return request.param


def test_stores_and_returns_values(make):
    cache = make(3)
    cache["a"] = 1
    cache["b"] = 2
    assert cache["a"] == 1
    assert cache.get("b") == 2
    assert cache.get("zz") is None
    assert cache.get("zz", "fallback") == "fallback"
    assert "a" in cache and "zz" not in cache
    assert len(cache) == 2


def test_missing_key_raises_keyerror(make):
    cache = make(2)
    with pytest.raises(KeyError):
        cache["nope"]


def test_evicts_least_recently_used_when_full(make):
    cache = make(3)
    for key in "abc":
        cache[key] = key
    cache["a"]  # a read makes "a" most recent; "b" is now the oldest
    cache["d"] = "d"
    assert sorted(cache) == ["a", "c", "d"]
    assert len(cache) == 3


def test_overwrite_updates_value_and_recency(make):
    cache = make(2)
    cache["a"] = 1
    cache["b"] = 2
    cache["a"] = 10  # a write makes "a" most recent too
    cache["c"] = 3
    assert cache["a"] == 10
    assert "b" not in cache


def test_delete_and_pop(make):
    cache = make(3)
    cache["a"] = 1
    cache["b"] = 2
    del cache["a"]
    assert "a" not in cache
    with pytest.raises(KeyError):
        del cache["a"]
    assert cache.pop("b") == 2
    assert cache.pop("b", "gone") == "gone"
    assert len(cache) == 0


def test_size_never_exceeds_maxsize(make):
    cache = make(10)
    for i in range(1000):
        cache[i] = i
        assert len(cache) <= 10
    assert sorted(cache) == list(range(990, 1000))


def test_clear_empties(make):
    cache = make(5)
    for i in range(5):
        cache[i] = i
    cache.clear()
    assert len(cache) == 0 and list(cache) == []


def test_values_may_be_none_or_falsy(make):
    cache = make(3)
    cache["none"] = None
    cache["zero"] = 0
    assert "none" in cache
    assert cache["none"] is None
    assert cache["zero"] == 0

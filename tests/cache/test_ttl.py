import math

import pytest

from lab.cache import TTLCache
from lab.cache.ttl import SWEEP_EVERY, SWEEP_MAX_ROUNDS, SWEEP_SAMPLE
from tests.cache.clock import FakeClock


def check_invariants(cache: TTLCache) -> None:
    assert len(cache._slots) == len(cache._entries)
    for key, entry in cache._entries.items():
        assert cache._slots[entry.slot] == key
    assert len(cache._entries) <= cache.maxsize


@pytest.fixture
def clock():
    return FakeClock()


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), "5", True])
def test_rejects_a_bad_ttl(ttl):
    with pytest.raises(ValueError, match="ttl"):
        TTLCache(10, ttl)


def test_rejects_a_bad_per_key_ttl(clock):
    cache = TTLCache(10, 5, clock)
    with pytest.raises(ValueError, match="ttl must be positive"):
        cache.set("a", 1, ttl=-3)
    assert "a" not in cache


def test_entry_expires_after_ttl(clock):
    cache = TTLCache(10, ttl=5, clock=clock)
    cache["a"] = 1
    clock.tick(4.999)
    assert cache["a"] == 1
    clock.tick(0.001)  # exactly at the expiry time it is gone
    assert "a" not in cache
    with pytest.raises(KeyError):
        cache["a"]
    assert cache.get("a", "gone") == "gone"


def test_lazy_expiry_reclaims_on_read_and_counts(clock):
    cache = TTLCache(10, ttl=5, clock=clock)
    cache["a"] = 1
    clock.tick(10)
    assert len(cache) == 1  # expired but not reclaimed yet (as Redis's DBSIZE)
    assert cache.get("a") is None
    assert len(cache) == 0
    assert (cache.stats.expirations, cache.stats.misses) == (1, 1)
    check_invariants(cache)


def test_per_key_ttl_overrides_the_default(clock):
    cache = TTLCache(10, ttl=60, clock=clock)
    cache.set("short", 1, ttl=1)
    cache.set("default", 2)
    clock.tick(2)
    assert "short" not in cache
    assert cache["default"] == 2


def test_no_default_ttl_means_live_until_evicted(clock):
    cache = TTLCache(2, ttl=None, clock=clock)
    cache["a"] = 1
    cache.set("b", 2, ttl=3)
    clock.tick(10**9)
    assert cache["a"] == 1
    assert "b" not in cache
    assert cache.time_to_live("a") == math.inf


def test_overwrite_restarts_the_clock(clock):
    cache = TTLCache(10, ttl=5, clock=clock)
    cache["a"] = 1
    clock.tick(4)
    cache["a"] = 2
    clock.tick(4)
    assert cache["a"] == 2


def test_touch_and_time_to_live(clock):
    cache = TTLCache(10, ttl=5, clock=clock)
    cache["a"] = 1
    clock.tick(2)
    assert cache.time_to_live("a") == pytest.approx(3)
    assert cache.touch("a", 100) is True
    assert cache.time_to_live("a") == pytest.approx(100)
    assert cache.touch("a", None) is True
    assert cache.time_to_live("a") == math.inf
    assert cache.touch("nope", 5) is False
    with pytest.raises(KeyError):
        cache.time_to_live("nope")
    cache.set("b", 1, ttl=1)
    clock.tick(1)
    assert cache.touch("b", 10) is False  # an expired key cannot be revived


def test_reads_refresh_recency_but_not_expiry(clock):
    cache = TTLCache(2, ttl=5, clock=clock)
    cache["a"] = 1
    cache["b"] = 2
    clock.tick(3)
    cache["a"]
    cache["c"] = 3  # evicts "b", the least recently used
    assert "b" not in cache
    clock.tick(2)
    assert "a" not in cache  # reading did not extend its life


def test_eviction_of_an_expired_entry_counts_as_expiration(clock):
    cache = TTLCache(2, ttl=5, clock=clock)
    cache["a"] = 1
    cache["b"] = 2
    clock.tick(6)
    cache["c"] = 3
    assert (cache.stats.evictions, cache.stats.expirations) == (0, 1)
    clock.tick(-6 + 1)  # back before "b" expired: a live LRU entry is now a real eviction
    cache["d"] = 4
    assert cache.stats.evictions == 1


def test_active_expiry_work_per_call_is_bounded(clock):
    cache = TTLCache(100_000, ttl=None, clock=clock)
    for i in range(10_000):
        cache.set(i, i, ttl=1)
    clock.tick(2)
    expired_before = cache.stats.expirations  # the automatic sweeps during the inserts
    removed = cache.expire()
    assert removed == SWEEP_SAMPLE * SWEEP_MAX_ROUNDS  # everything was stale: every round ran
    assert cache.stats.expirations == expired_before + removed
    check_invariants(cache)


def test_active_expiry_stops_early_when_few_are_stale(clock):
    cache = TTLCache(1000, ttl=None, clock=clock)
    for i in range(1000):
        cache.set(i, i, ttl=1 if i % 10 == 0 else 100)  # one in ten will expire
    clock.tick(2)
    removed = cache.expire()
    assert 0 < removed <= SWEEP_SAMPLE // 4  # one round only: a quarter or less was stale
    check_invariants(cache)


def test_repeated_sweeps_reclaim_every_expired_entry_without_any_read(clock):
    cache = TTLCache(10_000, ttl=None, clock=clock)
    for i in range(5000):
        cache.set(i, i, ttl=1 if i % 3 else 1000)
    clock.tick(5)
    for _ in range(200):
        cache.expire()
    assert len(cache) == len(range(0, 5000, 3))
    assert all(key % 3 == 0 for key in cache)
    check_invariants(cache)


def test_inserts_trigger_a_sweep_so_expired_entries_do_not_pile_up(clock):
    cache = TTLCache(1_000_000, ttl=1, clock=clock)
    for i in range(1000):
        cache[i] = i
    clock.tick(2)
    for i in range(1000, 1000 + SWEEP_EVERY * 50):  # writes only, never a read
        cache[i] = i
    assert cache.stats.expirations == 1000
    assert len(cache) == SWEEP_EVERY * 50


def test_membership_and_iteration_hide_expired_entries(clock):
    cache = TTLCache(10, ttl=5, clock=clock)
    cache["a"] = 1
    cache.set("b", 2, ttl=50)
    clock.tick(10)
    assert list(cache) == ["b"]
    assert cache.peek("a") is None and cache.peek("b") == 2
    assert "a" not in cache


def test_tags_and_prefix_invalidation(clock):
    cache = TTLCache(10, ttl=5, clock=clock)
    cache.set("task:1", 1, tags=["user:1"])
    cache.set("task:2", 2, tags=["user:1"])
    cache.set("list:a", 3)
    assert cache.invalidate_tag("user:1") == 2
    assert cache.invalidate_prefix("list:") == 1
    assert len(cache) == 0
    cache.set("x", 1, tags=["t"])
    clock.tick(6)
    assert cache.get("x") is None  # lazy expiry drops the tags as well
    assert cache._tags == {} and cache._key_tags == {}
    check_invariants(cache)


def test_repr_shows_the_state(clock):
    cache = TTLCache(4, ttl=5, clock=clock)
    cache["a"] = 1
    assert repr(cache) == (
        "TTLCache(maxsize=4, size=1, hits=0, misses=0, evictions=0, expirations=0, tags=0)"
    )


def test_a_key_the_automatic_sweep_reclaims_at_once_takes_its_tags_along(clock):
    cache = TTLCache(100, ttl=None, clock=clock)
    for i in range(SWEEP_EVERY - 1):
        cache[i] = i
        del cache[i]
    clock.now = 0.0
    cache.set("s", "v", ttl=1e-9, tags=["user:7"])  # this write runs the sweep
    clock.tick(1)
    cache.expire()
    assert "s" not in cache
    assert cache.tags_of("s") == ()
    assert cache.invalidate_tag("user:7") == 0
    check_invariants(cache)


def test_pop_answers_from_one_look(clock):
    cache = TTLCache(10, ttl=5, clock=clock)
    cache["a"] = 1
    assert cache.pop("a") == 1
    cache["b"] = 2
    clock.tick(5)
    assert cache.pop("b", "gone") == "gone"
    check_invariants(cache)

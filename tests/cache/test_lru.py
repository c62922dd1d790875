import pytest

from lab.cache import LRUCache


@pytest.mark.parametrize("maxsize", [0, -1, 2.5, "10", True])
def test_rejects_a_bad_maxsize(maxsize):
    with pytest.raises(ValueError, match="maxsize"):
        LRUCache(maxsize)


def test_counts_hits_misses_and_evictions():
    cache = LRUCache(2)
    cache["a"] = 1
    cache["a"]
    cache.get("a")
    cache.get("b")
    with pytest.raises(KeyError):
        cache["b"]
    cache["b"] = 2
    cache["c"] = 3  # evicts "a"
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.evictions, stats.size) == (2, 2, 1, 2)
    assert stats.hit_ratio == 0.5
    cache.reset_stats()
    assert cache.stats.hits == 0 and cache.stats.size == 2


def test_membership_peek_and_iteration_do_not_touch_recency_or_stats():
    cache = LRUCache(2)
    cache["a"] = 1
    cache["b"] = 2
    assert "a" in cache
    assert cache.peek("a") == 1
    assert list(cache) == ["a", "b"]
    cache["c"] = 3  # "a" is still the oldest: the reads above did not count
    assert list(cache) == ["b", "c"]
    assert cache.stats.hits == 0 and cache.stats.misses == 0


def test_iteration_is_a_snapshot():
    cache = LRUCache(5)
    for i in range(5):
        cache[i] = i
    for key in cache:
        del cache[key]  # would raise "mutated during iteration" on a live view
    assert len(cache) == 0


def test_invalidate_by_key_prefix_and_tag():
    cache = LRUCache(10)
    cache.set("task:1", "t1", tags=["user:7"])
    cache.set("task:2", "t2", tags=["user:7", "category:3"])
    cache.set("task:3", "t3", tags=["user:8"])
    cache["user:7"] = "u7"
    assert cache.invalidate("task:3") is True
    assert cache.invalidate("task:3") is False
    assert cache.invalidate_tag("user:7") == 2
    assert sorted(cache) == ["user:7"]
    assert cache.invalidate_tag("category:3") == 0  # its only key is gone already
    cache["task:9"] = 9
    assert cache.invalidate_prefix("task:") == 1
    assert list(cache) == ["user:7"]


def test_tags_follow_the_key_out_of_the_cache():
    cache = LRUCache(2)
    cache.set("a", 1, tags=["t"])
    cache.set("b", 2, tags=["t"])
    cache["c"] = 3  # evicts "a": its tag entry must go with it
    assert cache.tags_of("a") == ()
    assert cache.invalidate_tag("t") == 1
    cache.set("d", 4, tags=["x"])
    cache["d"] = 5  # a plain overwrite stores it untagged
    assert cache.tags_of("d") == ()
    assert cache.invalidate_tag("x") == 0
    assert cache["d"] == 5
    assert cache._tags == {} and cache._key_tags == {}  # nothing left behind


def test_prefix_invalidation_skips_keys_that_are_not_strings():
    cache = LRUCache(5)
    cache[("task:", 1)] = 1
    cache["task:1"] = 1
    assert cache.invalidate_prefix("task:") == 1
    assert ("task:", 1) in cache


def test_repr_shows_the_state():
    cache = LRUCache(3)
    cache["a"] = 1
    cache.get("a")
    cache.get("zz")
    assert repr(cache) == (
        "LRUCache(maxsize=3, size=1, hits=1, misses=1, evictions=0, expirations=0, tags=0)"
    )


def test_a_tag_given_twice_is_recorded_once():
    cache = LRUCache(2)
    cache.set("a", 1, tags=["t", "t"])
    cache["b"] = 2
    cache["c"] = 3  # evicts "a": its tag must leave cleanly
    assert sorted(cache) == ["b", "c"]
    assert cache._tags == {} and cache._key_tags == {}


def test_an_unhashable_tag_changes_nothing():
    cache = LRUCache(2)
    cache["k"] = "old"
    with pytest.raises(TypeError):
        cache.set("k", "new", tags=["ok", ["not", "hashable"]])
    assert cache.peek("k") == "old"
    assert cache._tags == {} and cache._key_tags == {}
    del cache["k"]


def test_whole_cache_views_are_not_hits_and_keep_the_order():
    cache = LRUCache(3)
    cache["a"], cache["b"] = 1, 2
    assert cache.items() == [("a", 1), ("b", 2)]
    assert cache.values() == [1, 2]
    assert cache == {"a": 1, "b": 2}
    assert cache.stats.hits == 0
    assert list(cache) == ["a", "b"]

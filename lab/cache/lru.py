"""LRUCache: evict the least recently used entry when full.

Design. One ``collections.OrderedDict`` holds key -> value *and* the recency
order: it is a hash map whose entries are threaded on a doubly linked list (in
C), so "move this key to the most-recent end" and "pop the least-recent key"
are O(1). That is the classic LRU layout -- hash map + linked list -- with the
list written in C instead of Python. CPython's pure-Python ``lru_cache`` builds
the list by hand with 4-slot Python lists; read it to see the same idea spelt
out, then compare the measured cost (README).

Invariants:

* ``len(self._data) <= maxsize`` after every public call;
* the first key of ``_data`` is the least recently used, the last the most;
* a *read* (``cache[k]``, ``get``) and a *write* both make a key most recent;
  ``in``, ``peek`` and iteration do not.

Not handled: size-aware limits (every entry weighs 1, unlike cachetools'
``getsizeof``), thread safety (one event loop, one thread).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

from lab.cache.base import MISSING, Cache


class LRUCache(Cache):
    """A mapping of at most ``maxsize`` entries that forgets the least recently used."""

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    # The three hot paths below are written flat on purpose: no helper calls.

    def __getitem__(self, key: Hashable) -> Any:
        try:
            value = self._data[key]
        except KeyError:
            self.misses += 1
            raise
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def get(self, key: Hashable, default: Any = None) -> Any:
        value = self._data.get(key, MISSING)
        if value is MISSING:
            self.misses += 1
            return default
        self._data.move_to_end(key)
        self.hits += 1
        return value

    def __setitem__(self, key: Hashable, value: Any) -> None:
        data = self._data
        if key in data:
            data.move_to_end(key)
        elif len(data) >= self.maxsize:
            evicted, _ = data.popitem(last=False)  # the least recently used
            self.evictions += 1
            if self._key_tags:
                self._forget_tags(evicted)
        data[key] = value
        if self._key_tags:
            self._forget_tags(key)  # a plain write stores the key untagged

    def set(self, key: Hashable, value: Any, *, tags: Iterable[Hashable] = ()) -> None:
        """Store ``value``; ``tags`` let ``invalidate_tag`` drop it later."""
        tags = self._check_tags(tags)  # before the store: a bad tag changes nothing
        self[key] = value
        self._tag(key, tags)

    def _remove(self, key: Hashable) -> None:
        del self._data[key]
        if self._key_tags:
            self._forget_tags(key)

    def _storage(self) -> Iterable[Hashable]:
        return self._data

    def peek(self, key: Hashable, default: Any = None) -> Any:
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Hashable]:
        """Keys from least to most recently used."""
        return iter(list(self._data))  # a snapshot: safe to mutate while iterating

    def clear(self) -> None:
        self._data.clear()
        self._tags.clear()
        self._key_tags.clear()

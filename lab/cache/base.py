"""What every cache policy shares: counters, tags, invalidation, and the mapping face.

A policy (``LRUCache``, ``TTLCache``) keeps its own storage and writes its own
hot paths -- ``__getitem__``, ``get``, ``__setitem__`` -- inline, because in
Python each extra call on the hot path costs more than the dictionary work
itself (see README: "Why the hot path is flat"). This base class holds what is
off the hot path:

* the counters behind ``stats`` (hits, misses, evictions, expirations);
* the tag index, so ``invalidate_tag("user:7")`` drops every entry stored with
  that tag without scanning the cache;
* invalidation by key, by key prefix (a scan: O(n), fine for an admin action,
  not for a request path) and ``clear``;
* the ``MutableMapping`` mixins and a ``__repr__`` that shows the state.

Invariant kept by every policy: a key is in the tag index if and only if it is
stored in the cache with at least one tag. A policy calls ``_forget_tags(key)``
whenever a key leaves the cache (delete, eviction, expiry, overwrite).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Hashable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

MISSING: Any = object()  # "no value": distinct from every value a caller can store


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of a cache's counters, taken by ``cache.stats``."""

    hits: int
    misses: int
    evictions: int
    expirations: int
    size: int
    maxsize: int

    @property
    def hit_ratio(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


class Cache(MutableMapping):
    """Base of every policy; not used on its own."""

    def __init__(self, maxsize: int) -> None:
        if not isinstance(maxsize, int) or isinstance(maxsize, bool):
            raise ValueError(f"maxsize must be an integer, got {maxsize!r}")
        if maxsize <= 0:
            raise ValueError(f"maxsize must be positive, got {maxsize}")
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0
        self._tags: dict[Hashable, set[Hashable]] = {}  # tag -> keys stored with it
        self._key_tags: dict[Hashable, tuple] = {}  # key -> its tags (tagged keys only)

    # -- what a policy provides ------------------------------------------------

    @abstractmethod
    def _remove(self, key: Hashable) -> None:
        """Drop ``key`` (known to be stored) and its tags; no counters change."""

    @abstractmethod
    def _storage(self) -> Iterable[Hashable]:
        """Every stored key, live or not yet reclaimed."""

    @abstractmethod
    def peek(self, key: Hashable, default: Any = None) -> Any:
        """The value for ``key`` without touching recency or counters."""

    # -- counters --------------------------------------------------------------

    @property
    def stats(self) -> CacheStats:
        return CacheStats(
            self.hits, self.misses, self.evictions, self.expirations, len(self), self.maxsize
        )

    def reset_stats(self) -> None:
        self.hits = self.misses = self.evictions = self.expirations = 0

    # -- tags ------------------------------------------------------------------

    @staticmethod
    def _check_tags(tags: Iterable[Hashable]) -> tuple:
        """The tags, each once, in order; TypeError before any state changes if one is
        unhashable (a caller checks them before storing the value)."""
        return tuple(dict.fromkeys(tags))

    def _tag(self, key: Hashable, tags: tuple) -> None:
        """Record ``key``'s tags (already checked); ``key`` is stored."""
        if self._key_tags:
            self._forget_tags(key)  # a write replaces the key's tags
        if not tags:
            return
        self._key_tags[key] = tags
        for tag in tags:
            self._tags.setdefault(tag, set()).add(key)

    def _forget_tags(self, key: Hashable) -> None:
        tags = self._key_tags.pop(key, ())
        for tag in tags:
            keys = self._tags[tag]
            keys.discard(key)
            if not keys:
                del self._tags[tag]  # no empty sets left behind: the index stays bounded

    def tags_of(self, key: Hashable) -> tuple:
        """The tags ``key`` was stored with (empty if none or absent)."""
        return self._key_tags.get(key, ())

    # -- invalidation ----------------------------------------------------------

    def invalidate(self, key: Hashable) -> bool:
        """Drop one key; True if it was there."""
        if key in self:
            self._remove(key)
            return True
        return False

    def invalidate_prefix(self, prefix: str) -> int:
        """Drop every string key that starts with ``prefix``. O(n): it scans the keys."""
        doomed = [k for k in list(self._storage()) if isinstance(k, str) and k.startswith(prefix)]
        for key in doomed:
            self._remove(key)
        return len(doomed)

    def invalidate_tag(self, tag: Hashable) -> int:
        """Drop every key stored with ``tag``. O(keys with that tag)."""
        doomed = list(self._tags.get(tag, ()))
        for key in doomed:
            self._remove(key)
        return len(doomed)

    # -- mapping face ----------------------------------------------------------

    def __delitem__(self, key: Hashable) -> None:
        if key not in self:
            raise KeyError(key)
        self._remove(key)

    def pop(self, key: Hashable, default: Any = MISSING) -> Any:
        value = self.peek(key, MISSING)  # one look: a TTL entry cannot expire in between
        if value is not MISSING:
            self._remove(key)
            return value
        if default is MISSING:
            raise KeyError(key)
        return default

    # Snapshots read with peek(): looking at the whole cache is not a "hit" and
    # does not reorder it (the mixins would call __getitem__ for every key).

    def items(self) -> list[tuple[Hashable, Any]]:  # type: ignore[override]
        return [(key, self.peek(key)) for key in self]

    def values(self) -> list[Any]:  # type: ignore[override]
        return [self.peek(key) for key in self]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(maxsize={self.maxsize}, size={len(self)}, "
            f"hits={self.hits}, misses={self.misses}, evictions={self.evictions}, "
            f"expirations={self.expirations}, tags={len(self._tags)})"
        )

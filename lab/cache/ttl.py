"""TTLCache: an LRUCache whose entries also expire, each at its own time.

Design. ``_entries`` is an ``OrderedDict`` key -> ``_Entry`` in recency order,
exactly as in ``LRUCache``; each entry carries its absolute expiry time, so a
per-key TTL override costs nothing extra. Expired entries leave in two ways,
the two Redis uses:

* **Lazy expiry**: a read that finds an expired entry drops it and answers
  "miss". Cheap, but an expired key that is never read again would stay.
* **Active expiry** (``expire()``): a sweep looks at a bounded number of
  entries per call, from a cursor that walks a dense array of keys (``_slots``),
  drops the expired ones, and -- the Redis idea -- goes on to another round
  only while more than a quarter of what it looked at had expired (Redis 5's
  threshold; Redis 6 lowered it to 10%). Work per
  call is at most ``SWEEP_SAMPLE * SWEEP_MAX_ROUNDS`` entries, however large
  the cache. Redis 6+ walks its expires table with a cursor the same way
  (older versions sampled at random). ``expire()`` runs by itself once every
  ``SWEEP_EVERY`` writes, and a server can call it on a timer.

``_slots`` makes the cursor possible: a dict cannot be indexed, an array can.
Removing a key moves the last key into its slot (swap-remove), so removal
stays O(1) and each entry remembers its slot.

Invariants:

* ``_entries`` and ``_slots`` hold the same keys; ``_slots[e.slot] == key``
  for every ``key, e`` in ``_entries``;
* a key whose ``expires_at <= clock()`` is never returned by a read;
* ``len(_entries) <= maxsize``; ``len()`` may count expired entries not yet
  reclaimed (as Redis's DBSIZE does).

``ttl=None`` means "no default expiry": entries live until evicted unless a
per-key ``ttl`` is given (this is what the RESP server uses).

Not handled: size-aware limits, thread safety, a clock that goes backwards
(use ``time.monotonic``, the default).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

from lab.cache.base import Cache

SWEEP_SAMPLE = 20  # entries looked at per round (Redis: ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP)
SWEEP_MAX_ROUNDS = 16  # bound on rounds per call, so one call's work is bounded
SWEEP_EVERY = 32  # writes between automatic sweeps


class _Entry:
    __slots__ = ("expires_at", "slot", "value")

    def __init__(self, value: Any, expires_at: float, slot: int) -> None:
        self.value = value
        self.expires_at = expires_at
        self.slot = slot

    def __repr__(self) -> str:
        return f"_Entry({self.value!r}, expires_at={self.expires_at}, slot={self.slot})"


def _check_ttl(ttl: float | None, what: str) -> float:
    """Seconds to live as a float (``inf`` for None); ValueError if not positive."""
    if ttl is None:
        return math.inf
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or math.isnan(ttl):
        raise ValueError(f"{what} must be a number of seconds, got {ttl!r}")
    if ttl <= 0:
        raise ValueError(f"{what} must be positive, got {ttl}")
    return float(ttl)


class TTLCache(Cache):
    """An LRU mapping whose entries expire ``ttl`` seconds after they are written."""

    def __init__(
        self,
        maxsize: int,
        ttl: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(maxsize)
        self.ttl = None if ttl is None else _check_ttl(ttl, "ttl")
        self._default_ttl = _check_ttl(ttl, "ttl")
        self._clock = clock
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._slots: list[Hashable] = []  # dense array of keys, for the sweep cursor
        self._cursor = 0
        self._until_sweep = SWEEP_EVERY

    # -- hot paths, written flat ------------------------------------------------

    def __getitem__(self, key: Hashable) -> Any:
        try:
            entry = self._entries[key]
        except KeyError:
            self.misses += 1
            raise
        if entry.expires_at <= self._clock():
            self._drop(key, entry)
            self.expirations += 1
            self.misses += 1
            raise KeyError(key)
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.value

    def get(self, key: Hashable, default: Any = None) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return default
        if entry.expires_at <= self._clock():
            self._drop(key, entry)
            self.expirations += 1
            self.misses += 1
            return default
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.value

    def __setitem__(self, key: Hashable, value: Any) -> None:
        self._store(key, value, self._clock() + self._default_ttl)
        if self._key_tags:
            self._forget_tags(key)  # a plain write stores the key untagged
        self._until_sweep -= 1
        if not self._until_sweep:
            self._sweep_now()

    def set(
        self,
        key: Hashable,
        value: Any,
        *,
        ttl: float | None = None,
        tags: Iterable[Hashable] = (),
    ) -> None:
        """Store ``value`` for ``ttl`` seconds (default: the cache's ``ttl``)."""
        seconds = self._default_ttl if ttl is None else _check_ttl(ttl, "ttl")
        tags = self._check_tags(tags)  # before the store: a bad argument changes nothing
        self._store(key, value, self._clock() + seconds)
        self._tag(key, tags)
        # The sweep runs last: it may reclaim this very key (a tiny ttl), and must
        # then find its tags recorded, so that they leave with it.
        self._until_sweep -= 1
        if not self._until_sweep:
            self._sweep_now()

    def _sweep_now(self) -> None:
        self._until_sweep = SWEEP_EVERY
        self.expire()

    def _store(self, key: Hashable, value: Any, expires_at: float) -> None:
        entries = self._entries
        entry = entries.get(key)
        if entry is not None:  # overwrite: new value, new expiry, most recent
            entry.value = value
            entry.expires_at = expires_at
            entries.move_to_end(key)
            return
        if len(entries) >= self.maxsize:
            self._evict()
        entries[key] = _Entry(value, expires_at, len(self._slots))
        self._slots.append(key)

    # -- expiry ------------------------------------------------------------------

    def expire(self, now: float | None = None) -> int:
        """Active expiry: reclaim expired entries with bounded work; returns how many."""
        if now is None:
            now = self._clock()
        slots, entries = self._slots, self._entries
        removed = 0
        for _ in range(SWEEP_MAX_ROUNDS):
            looked = expired = 0
            while looked < SWEEP_SAMPLE and slots:
                if self._cursor >= len(slots):
                    self._cursor = 0  # wrap: the cursor walks the array in laps
                key = slots[self._cursor]
                entry = entries[key]
                looked += 1
                if entry.expires_at <= now:
                    # The last key moves into this slot, so the cursor stays put.
                    self._drop(key, entry)
                    expired += 1
                else:
                    self._cursor += 1
            removed += expired
            if expired * 4 <= looked:  # a quarter or less was stale: stop here
                break
        self.expirations += removed
        return removed

    def touch(self, key: Hashable, ttl: float | None) -> bool:
        """Give a live ``key`` a new TTL (None: never expire); False if absent."""
        seconds = _check_ttl(ttl, "ttl")
        entry = self._live(key)
        if entry is None:
            return False
        entry.expires_at = self._clock() + seconds
        return True

    def time_to_live(self, key: Hashable) -> float:
        """Seconds until ``key`` expires (``inf`` if never); KeyError if absent."""
        entry = self._live(key)
        if entry is None:
            raise KeyError(key)
        return entry.expires_at - self._clock()

    def _live(self, key: Hashable) -> _Entry | None:
        """The entry for ``key`` if it has not expired; drops it if it has."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock():
            self._drop(key, entry)
            self.expirations += 1
            return None
        return entry

    # -- removal -----------------------------------------------------------------

    def _evict(self) -> None:
        key, entry = self._entries.popitem(last=False)  # the least recently used
        self._free_slot(entry.slot)
        if entry.expires_at <= self._clock():
            self.expirations += 1  # it was dead already: not a real eviction
        else:
            self.evictions += 1
        if self._key_tags:
            self._forget_tags(key)

    def _drop(self, key: Hashable, entry: _Entry) -> None:
        del self._entries[key]
        self._free_slot(entry.slot)
        if self._key_tags:
            self._forget_tags(key)

    def _free_slot(self, slot: int) -> None:
        slots = self._slots
        last = slots.pop()
        if slot < len(slots):  # not the last slot: move the last key into the hole
            slots[slot] = last
            self._entries[last].slot = slot

    def _remove(self, key: Hashable) -> None:
        self._drop(key, self._entries[key])

    def _storage(self) -> Iterable[Hashable]:
        return self._entries

    # -- mapping face ------------------------------------------------------------

    def peek(self, key: Hashable, default: Any = None) -> Any:
        entry = self._entries.get(key)
        if entry is None or entry.expires_at <= self._clock():
            return default
        return entry.value

    def __contains__(self, key: object) -> bool:
        return self._live(key) is not None  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Hashable]:
        """Live keys from least to most recently used (a snapshot)."""
        now = self._clock()
        return iter([k for k, e in self._entries.items() if e.expires_at > now])

    def clear(self) -> None:
        self._entries.clear()
        self._slots.clear()
        self._cursor = 0
        self._tags.clear()
        self._key_tags.clear()

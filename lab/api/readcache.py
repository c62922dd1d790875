"""A Redis read cache for ``GET /tasks`` and ``GET /tasks/{id}``: cache-aside, keyed by generation.

**Cache-aside.** A read asks Redis; on a miss it asks the store, answers, and
puts the answer in Redis for the next reader. Writes never touch cached
answers. The other way, write-through, would have each write recompute what it
changed in the cache -- but a write to one task changes the answer of an
unbounded number of ``GET /tasks`` variants (every filter, search, sort, page
and cursor), and nobody can list them. What is cached is the answer's body,
the exact bytes the uncached path writes, so a hit cannot answer differently.

**Generations instead of deletes.** Every key carries a number::

    lab:tasks:generation                      INCR on every write (a plain counter)
    lab:tasks:g42:list?limit=10&page=1&sort=desc
    lab:tasks:g42:task/7

A read first GETs the generation, then looks for its key under it. A write, once
the store has it, INCRs the generation -- before its client is answered, so the
next read on any instance looks under the new number and so loads from the
store after the write. Old keys are never read again and leave by their TTL:
invalidation costs one INCR, never a scan of keys (``KEYS``/``SCAN`` are O(n)),
and it closes the race that deleting keys leaves open: a reader that loaded
before a write and stores after it puts its stale answer under the *old*
generation, where nobody looks. One generation covers every task answer (tasks
embed user and category names, so those writes bump it too): coarse, simple.
The prefix names the data: ``python -m lab.api`` derives it from the database
URL (``cache_prefix``), so two stacks on different databases sharing one Redis
never read each other's answers.

**Single flight.** While one request of this instance loads a key, the others
wanting that key wait for it: N concurrent misses cost one Redis GET and one
store query. It reuses ``lab.cache.cached`` over a cache that keeps nothing
(``_FlightOnly``); the keeping is the L1's, and explicit below.

**L1** (optional): a ``lab.cache.TTLCache`` in this process, keyed by the same
generation-bearing keys. The generation is still read from Redis on every
request, so an L1 entry is never served across generations and instances stay
read-your-writes consistent; what L1 saves is the second round trip and the
transfer of a body that may be 50 KB. Its TTL only bounds how long answers of
dead generations hold memory. Trusting L1 *without* asking Redis would make a
read free of round trips, but another instance's write would then stay unseen
for up to the L1 TTL -- not taken here.

**Degraded.** Redis refused, reset, or slower than ``timeout`` (each command
waits at most that long; redis-py's own retries, which would multiply the
wait, are off): the request is answered from the store and counted as
degraded, never an error. Redis is then left alone for ``retry_after`` seconds
(a minimal circuit breaker, so an outage costs no wait per request) and tried
again by the next request: it recovers by itself. Degraded reads skip single
flight: with no generation to key on, a read that began after a write could
join a load that began before it. A write whose INCR fails is *owed*: this
instance pays it before it next reads through Redis, but until then other
instances may serve answers from before that write -- for at most the TTL,
which is what bounds staleness when an INCR is lost. (A Redis that restores a
snapshot rewinds the generation the same way: run a cache without persistence.)

Production does the same with a pooled redis-py client, often adds an HTTP
cache or CDN in front (``Cache-Control``, ``ETag``, purges by surrogate key),
reads the generation and the key in one round trip (a Lua script), keeps one
generation per entity so a write invalidates less, and uses Redis's client-side
caching (``CLIENT TRACKING``) to invalidate an L1 by push. Left out here:
stampede protection across instances (each may load a key once), answers over
a size limit, compression, and ``maxmemory`` policy (``allkeys-lru`` suits a cache).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from lab.cache import LRUCache, TTLCache, cached
from lab.cache.base import MISSING
from lab.settings import redact

log = logging.getLogger("lab.api.readcache")

DEFAULT_TTL = 60.0  # seconds an answer lives in Redis; also the staleness bound if an INCR is lost
DEFAULT_TIMEOUT = 0.1  # seconds any one Redis command may take before the store answers instead
DEFAULT_RETRY_AFTER = 1.0  # seconds Redis is left alone after it failed
DEFAULT_L1_SIZE = 1024
PREFIX = "lab:tasks"
NOT_FOUND = b""  # the cached answer "no such task": a 404 is cached like any other answer
SOURCES = ("l1", "hit", "miss", "degraded")  # where an answer came from (the X-Cache header)
_COUNTER = {"l1": "l1Hits", "hit": "hits", "miss": "misses", "degraded": "degraded"}
_REDIS_FAILED = (RedisError, OSError)  # redis-py's errors; OSError includes TimeoutError

Loader = Callable[[], Awaitable[bytes]]


# -- keys: pure functions of the request ------------------------------------------------------


def canonical_query(query: Mapping[str, Any]) -> str:
    """The validated query in one spelling: names sorted, defaults filled in, ids as parsed.

    So ``?sort=asc&status=pending`` and ``?status=pending&sort=asc&page=1`` are one key
    (the same question), and ``?userId=007`` is ``?userId=7``; any other difference is
    another key. Values are percent-encoded, so no value can forge a separator.
    """
    return urlencode(sorted((name, str(value)) for name, value in query.items()))


def list_key(query: Mapping[str, Any]) -> str:
    return f"list?{canonical_query(query)}"


def task_key(task_id: int) -> str:
    return f"task/{task_id}"


def versioned(prefix: str, generation: int, what: str) -> str:
    """The Redis key of ``what`` in ``generation``: ``lab:tasks:g42:task/7``."""
    return f"{prefix}:g{generation}:{what}"


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes  # exactly what the uncached path writes; NOT_FOUND for a 404
    source: str  # one of SOURCES


class _FlightOnly(LRUCache):
    """A cache that keeps nothing: ``cached()`` over it is single flight alone."""

    def __init__(self) -> None:
        super().__init__(maxsize=1)

    def __setitem__(self, key: Hashable, value: Any) -> None:
        pass  # the flight's result is forgotten at once; the L1 (if any) keeps it instead


def _flight_key(key: str, load: Loader) -> str:
    return key  # equal keys ask the same question, so any caller's loader will do


# -- the cache: I/O -----------------------------------------------------------------------------


class ReadCache:
    """Answers by key from L1, Redis or the store; ``bump()`` after every write."""

    def __init__(self, client: redis.Redis, *, ttl: float = DEFAULT_TTL,
                 l1_ttl: float | None = None, l1_size: int = DEFAULT_L1_SIZE,
                 retry_after: float = DEFAULT_RETRY_AFTER, prefix: str = PREFIX,
                 name: str = "redis", clock: Callable[[], float] = time.monotonic):
        if not ttl > 0 or retry_after < 0:
            raise ValueError(f"ttl must be positive and retry_after not negative, "
                             f"got {ttl} and {retry_after}")
        self._redis = client
        self.ttl, self.l1_ttl, self.retry_after = ttl, l1_ttl, retry_after
        self.prefix, self.name = prefix, name
        self._generation_key = f"{prefix}:generation"
        self._ttl_ms = max(1, round(ttl * 1000))
        self._clock = clock
        self._l1 = None if l1_ttl is None else TTLCache(l1_size, l1_ttl, clock=clock)
        self._flight = cached(_FlightOnly(), key=_flight_key)(self._load_once)
        self._down_until: float | None = None  # set while Redis is left alone
        self.owed_bump = False  # a write's INCR failed; paid before the next read via Redis
        self.generation: int | None = None  # the last one seen
        self.counts = dict.fromkeys(("hits", "l1Hits", "misses", "degraded", "coalesced",
                                     "errors"), 0)

    @classmethod
    def from_url(cls, url: str, *, timeout: float = DEFAULT_TIMEOUT, **options: Any) -> ReadCache:
        """A cache on the Redis at ``url`` whose every command waits at most ``timeout``."""
        client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0))  # no retries: one wait of `timeout`, then the store
        return cls(client, name=redact(url), **options)

    async def get(self, what: str, load: Loader) -> Answer:
        """The answer to ``what`` (``list_key``, ``task_key``); ``load`` asks the store."""
        generation = await self._current_generation()
        if generation is None:  # no generation, no key: the store answers, unshared
            self.counts["degraded"] += 1
            return Answer(await load(), "degraded")
        key = versioned(self.prefix, generation, what)
        if self._l1 is not None:
            body = self._l1.get(key, MISSING)
            if body is not MISSING:
                self.counts["l1Hits"] += 1
                return Answer(body, "l1")
        if key in self._flight.in_flight:
            self.counts["coalesced"] += 1  # it waits for another request's load
        answer = await self._flight(key, load)
        self.counts[_COUNTER[answer.source]] += 1  # per request: a waiter counts as its flight
        return answer

    async def bump(self) -> None:
        """A write reached the store: start a new generation. Never raises.

        Tried even while Redis is being left alone: a lost INCR is the one failure
        that can make other instances stale, so a write pays up to ``timeout`` for it.
        """
        try:
            self.generation = await self._redis.incr(self._generation_key)
        except _REDIS_FAILED as error:
            self.owed_bump = True
            self._failed(error)
        else:
            self.owed_bump = False
            self._recovered()

    async def _current_generation(self) -> int | None:
        """The generation in Redis (0 before any write), or None when Redis cannot say."""
        if self._down_until is not None and self._clock() < self._down_until:
            return None
        try:
            if self.owed_bump:  # a write of ours is not in the generation yet: pay first
                await self._redis.incr(self._generation_key)
                self.owed_bump = False
            raw = await self._redis.get(self._generation_key)
        except _REDIS_FAILED as error:
            self._failed(error)
            return None
        self._recovered()
        self.generation = int(raw or 0)  # a missing key: a new or restarted Redis
        return self.generation

    async def _load_once(self, key: str, load: Loader) -> Answer:
        """One flight for ``key``: Redis, and on a miss the store and a SET."""
        try:
            body = await self._redis.get(key)
        except _REDIS_FAILED as error:
            self._failed(error)
            return Answer(await load(), "degraded")
        if body is not None:
            self._keep(key, body)
            return Answer(body, "hit")
        body = await load()  # loaded after the generation was read, so fresh enough for it
        try:
            # If a write bumped the generation meanwhile, this lands under the old number,
            # where no reader looks any more: a late SET is harmless.
            await self._redis.set(key, body, px=self._ttl_ms)
        except _REDIS_FAILED as error:
            self._failed(error)  # the answer is still right; the next reader just misses
        else:
            self._keep(key, body)  # before the flight lands: no gap for a new miss
        return Answer(body, "miss")

    def _keep(self, key: str, body: bytes) -> None:
        if self._l1 is not None:
            self._l1[key] = body  # L1 holds what Redis holds, under the same key

    def _failed(self, error: BaseException) -> None:
        self.counts["errors"] += 1
        if self._down_until is None:
            log.warning("redis %s did not answer (%s); serving from the store, retrying in "
                        "%gs", self.name, type(error).__name__, self.retry_after)
        self._down_until = self._clock() + self.retry_after

    def _recovered(self) -> None:
        if self._down_until is not None:
            log.info("redis %s answers again; the read cache is back", self.name)
            self._down_until = None

    @property
    def up(self) -> bool:
        return self._down_until is None

    async def ping(self) -> bool:
        """Does Redis answer now? (For a start-up message; requests never need it.)"""
        try:
            return bool(await self._redis.ping())
        except _REDIS_FAILED as error:
            self._failed(error)
            return False

    def status(self) -> dict[str, Any]:
        """What ``GET /cache`` shows: settings, state and the counters since start."""
        return {"enabled": True, "redis": self.name, "up": self.up,
                "generation": self.generation, "owedBump": self.owed_bump,
                "ttl": self.ttl, "l1Ttl": self.l1_ttl,
                "l1Size": 0 if self._l1 is None else len(self._l1), **self.counts}

    async def close(self) -> None:
        await self._redis.aclose()

    def __repr__(self) -> str:
        counts = " ".join(f"{name}={n}" for name, n in self.counts.items())
        return (f"<ReadCache {self.name} generation={self.generation} up={self.up} "
                f"l1={'off' if self._l1 is None else len(self._l1)} {counts}>")

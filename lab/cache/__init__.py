"""Challenge 1: caches built by hand -- LRU, TTL, a single-flight decorator, a RESP server.

Read in this order: ``base`` (what every policy shares), ``lru``, ``ttl``,
``decorator``; then the server side: ``resp`` and ``replies`` (the wire format, sans-IO),
``commands`` (what each command does to the cache), ``server`` (asyncio).
"""

from lab.cache.base import CacheStats
from lab.cache.decorator import cached
from lab.cache.lru import LRUCache
from lab.cache.ttl import TTLCache

__all__ = ["CacheStats", "LRUCache", "TTLCache", "cached"]

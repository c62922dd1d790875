"""Where the time of one cache read goes: ``python -m bench.cache.anatomy``.

Builds a get-hit up step by step -- an empty loop, a bare dict lookup, the
OrderedDict recency update, the Python method call, the hit counter -- and
times each step with ``timeit`` on the same trace as the benchmarks, beside
cachetools and ``functools.lru_cache``. The differences between lines are the
cost of each step. This is the profile behind the get-hit rows of the results
table: it shows which part of a read a pure-Python cache cannot avoid.
"""

from __future__ import annotations

import functools
import sys
import timeit
from collections import OrderedDict

import cachetools

from bench.cache.workload import hit_trace
from lab.cache import LRUCache, TTLCache


class CallOnly:
    def __getitem__(self, key):
        return key


class RecencyNoCounter:
    def __init__(self, data):
        self._data = data

    def __getitem__(self, key):
        value = self._data[key]
        self._data.move_to_end(key)
        return value


def steps():
    preload, trace = hit_trace()
    plain = {key: key for key in preload}
    ordered = OrderedDict(plain)
    lab, lab_ttl = LRUCache(len(preload)), TTLCache(len(preload), ttl=600)
    tools, tools_ttl = cachetools.LRUCache(len(preload)), cachetools.TTLCache(len(preload), 600)
    lru = functools.lru_cache(maxsize=len(preload))(lambda key: key)
    for key in preload:
        lab[key] = lab_ttl[key] = tools[key] = tools_ttl[key] = key
        lru(key)
    call_only, recency = CallOnly(), RecencyNoCounter(ordered)
    move = ordered.move_to_end

    def loop_only():
        for _key in trace:
            pass

    def dict_lookup():
        for key in trace:
            plain[key]

    def inline_recency():
        for key in trace:
            ordered[key]
            move(key)

    def method_call_only():
        for key in trace:
            call_only[key]

    def method_with_recency():
        for key in trace:
            recency[key]

    def lab_lru():
        for key in trace:
            lab[key]

    def lab_ttl_get():
        for key in trace:
            lab_ttl[key]

    def cachetools_lru():
        for key in trace:
            tools[key]

    def cachetools_ttl():
        for key in trace:
            tools_ttl[key]

    def lru_cache_hit():
        for key in trace:
            lru(key)

    return len(trace), [
        ("empty loop over the trace", loop_only),
        ("+ dict lookup (C, no recency)", dict_lookup),
        ("+ OrderedDict lookup and move_to_end, inline", inline_recency),
        ("a Python __getitem__ that does nothing", method_call_only),
        ("__getitem__ with lookup + move_to_end", method_with_recency),
        ("lab.LRUCache (+ hit counter)", lab_lru),
        ("lab.TTLCache (+ clock read, expiry check)", lab_ttl_get),
        ("cachetools.LRUCache", cachetools_lru),
        ("cachetools.TTLCache", cachetools_ttl),
        ("functools.lru_cache hit (C)", lru_cache_hit),
    ]


def main() -> int:
    ops, named = steps()
    print(f"{'step':50} ns/read   (best of 7 x 20 passes over {ops:,} reads)")
    for name, loop in named:
        best = min(timeit.repeat(loop, number=20, repeat=7)) / 20 / ops
        print(f"{name:50} {best * 1e9:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Redis read cache: ``GET /tasks`` with no cache, a warm cache and a cold one.

Three Task API instances, each ``python -m lab.api --store postgres`` in its
own process, on one seeded schema (``bench_cache`` in ``lab_test``: 200
users, 12 categories, 100,000 tasks; ``bench/db/dataset.py``), as ``lab_app``:

* ``none``: no read cache -- every request asks PostgreSQL;
* ``warm``: the read cache on its own Redis, asked once before the runs, so
  every timed request is a hit (two Redis GETs: the generation and the answer);
* ``cold``: the read cache on another Redis, with answers that expire after a
  millisecond, so no request is answered from Redis: each asks for the
  generation and the answer (absent), then PostgreSQL, then SETs. What is left
  of the cache is single flight: the misses that arrive while a load of the
  same key is in flight wait for it instead of asking PostgreSQL again -- with
  50 connections asking for one key, most of them. So "cold" here is a cache
  that keeps nothing; a cache cold because every request asks for a different
  key would do worse than none (it adds three Redis round trips to each).

Each Redis is private (``redis-server`` on a free port, no persistence), so
neither instance sees the other's answers. ``wrk`` drives
``GET /tasks?status=pending&limit=20`` -- a page of 20 and the total over a
quarter of the tasks -- with 50 connections for 5 s; rounds alternate none,
warm, cold; three rounds, medians. After the runs, each instance's ``GET
/cache`` counters must show what its name says (hits for warm, misses for cold).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from bench import wrk
from bench.db import dataset
from bench.registry import Comparison
from bench.servers import free_port, redis_server, running
from lab import settings

SCHEMA = "bench_cache"
ROUNDS, SECONDS, QUICK_SECONDS = 3, 5, 1
CONNECTIONS = 50
PATH = "/tasks?status=pending&limit=20"
SIDES = ("none", "warm", "cold")


def measurement(side: str) -> str:
    return f"lb-cache/rps/{side}"


COMPARISONS = [
    Comparison("lb-cache", f"GET {PATH} req/s, warm Redis cache vs none", measurement("warm"),
               measurement("none"), "no cache (PostgreSQL every time)", (">=", 5.0)),
    Comparison("lb-cache", f"GET {PATH} req/s, cold Redis cache vs none", measurement("cold"),
               measurement("none"), "no cache (PostgreSQL every time)"),
]


def api(port: int, env: dict[str, str], *flags: str):
    """A Task API instance on the benchmark's schema, stopped by its PID at the end."""
    return running([sys.executable, "-m", "lab.api", "--store", "postgres", "--no-migrate",
                    "--no-access-log", "--port", str(port), *flags], port, env)


def get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        return json.load(answer)


@pytest.fixture(scope="module")
def instances() -> Iterator[dict[str, int]]:
    """side → port; the schema, the Redis servers and the instances, all gone at the end."""
    lab_settings = settings.load()
    owner, app = lab_settings.test_database_owner_url, lab_settings.test_database_url
    asyncio.run(dataset.prepare(owner, app, schema=SCHEMA))
    env = {**os.environ, "DATABASE_URL": dataset.with_search_path(app, SCHEMA)}
    ports = {side: free_port() for side in SIDES}
    redis_ports = {side: free_port() for side in ("warm", "cold")}
    try:
        with contextlib.ExitStack() as stack:
            for port in redis_ports.values():
                stack.enter_context(redis_server(port))
            stack.enter_context(api(ports["none"], env, "--instance", "none"))
            stack.enter_context(api(ports["warm"], env, "--instance", "warm", "--redis-url",
                                    f"redis://127.0.0.1:{redis_ports['warm']}/0"))
            stack.enter_context(api(ports["cold"], env, "--instance", "cold", "--redis-url",
                                    f"redis://127.0.0.1:{redis_ports['cold']}/0",
                                    "--cache-ttl", "0.001"))
            yield ports
    finally:
        asyncio.run(dataset.drop(owner, SCHEMA))


def test_read_cache_side_by_side(instances, tmp_path, record, quick, capsys):
    rounds, seconds = (1, QUICK_SECONDS) if quick else (ROUNDS, SECONDS)
    answers = {side: get(port, PATH) for side, port in instances.items()}  # warms "warm"
    assert answers["none"] == answers["warm"] == answers["cold"]  # like for like
    assert answers["none"]["total"] > 20_000
    script = tmp_path / "timed.lua"
    script.write_text(wrk.script())
    seen: dict[str, list[wrk.WrkRun]] = {}
    for round_no in range(1, rounds + 1):
        for side in SIDES:  # interleaved: none, warm, cold, none ...
            seen.setdefault(side, []).append(
                wrk.run(f"http://127.0.0.1:{instances[side]}{PATH}", seconds, CONNECTIONS,
                        script))
        with capsys.disabled():
            print(f"\nlb-cache round {round_no}/{rounds} req/s: " + ", ".join(
                f"{side} {runs[-1].requests_per_second:,.0f}" for side, runs in seen.items()),
                file=sys.stderr, end="")
    failed = [f"{side}: {r.non_2xx} non-2xx, {r.socket_errors} socket errors"
              for side, runs in seen.items() for r in runs if r.non_2xx or r.socket_errors]
    assert not failed, "; ".join(failed)
    warm, cold = get(instances["warm"], "/cache"), get(instances["cold"], "/cache")
    assert warm["hits"] > 0.99 * (warm["hits"] + warm["misses"] + warm["degraded"]), warm
    assert cold["hits"] < 0.05 * (cold["hits"] + cold["misses"]), cold
    assert cold["coalesced"] > 0, cold  # the single flight the docstring speaks of
    with capsys.disabled():
        print(f"\nlb-cache counters: warm {warm}\nlb-cache counters: cold {cold}",
              file=sys.stderr, end="")
    assert warm["degraded"] == cold["degraded"] == 0, (warm, cold)
    for side, runs in seen.items():
        record(measurement(side), statistics.median(r.requests_per_second for r in runs),
               "ops/s")

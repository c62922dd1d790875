"""The lab's RESP server against a real Redis, both driven by redis-benchmark.

redis-benchmark is Redis's own load generator, written in C, so the client is
never the bottleneck being measured. Both servers run on this machine, each on
a free port, one at a time: rounds alternate lab, Redis, lab, Redis ... and the
median round counts, so a burst of noise on this shared machine hits both
sides alike. Redis runs as a cache usually does (no persistence); the lab
server uses uvloop when installed, as its users would.

``-c 50``: 50 connections, one command in flight each -- the cost of a round
trip, dominated by per-request syscalls and parsing. ``-P 16``: 16 commands in
flight per connection (pipelining) -- raw parsing and command throughput.
"""

from __future__ import annotations

import csv
import io
import shutil
import statistics
import subprocess

import pytest

from bench.registry import Comparison
from bench.servers import free_port, lab_cache_server, redis_server

MODES = {"c50": ["-c", "50"], "c50-P16": ["-c", "50", "-P", "16"]}
ROUNDS = 3
REQUESTS = 100_000


def _row(command: str, mode: str, target: float) -> Comparison:
    return Comparison(
        "cache", f"RESP server {command} ops/s, {mode}",
        f"cache/resp/{command}/{mode}/lab", f"cache/resp/{command}/{mode}/redis",
        "Redis (redis-server)", (">=", target),
    )


COMPARISONS = [
    _row("GET", "c50", 0.4), _row("SET", "c50", 0.4),
    _row("GET", "c50-P16", 0.2), _row("SET", "c50-P16", 0.2),
]


def redis_benchmark(port: int, mode: str, requests: int) -> dict[str, float]:
    """Run redis-benchmark for GET and SET; returns requests per second by command."""
    args = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "get,set",
            "-n", str(requests), "--csv", *MODES[mode]]
    done = subprocess.run(args, capture_output=True, text=True, timeout=180, check=True)
    rows = list(csv.reader(io.StringIO(done.stdout)))
    return {row[0]: float(row[1]) for row in rows[1:] if row and row[0] in ("GET", "SET")}


@pytest.fixture(scope="module")
def servers():
    if shutil.which("redis-benchmark") is None:
        pytest.fail("redis-benchmark is not installed: run `make services` (redis-tools)")
    lab_port, redis_port = free_port(), free_port()
    with lab_cache_server(lab_port), redis_server(redis_port):
        yield {"lab": lab_port, "redis": redis_port}


@pytest.mark.parametrize("mode", MODES)
def test_resp_throughput(servers, mode, record, quick):
    rounds, requests = (1, 2_000) if quick else (ROUNDS, REQUESTS)
    seen: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for side, port in servers.items():  # interleaved: lab, redis, lab, redis ...
            for command, rps in redis_benchmark(port, mode, requests).items():
                seen.setdefault((command, side), []).append(rps)
    assert {command for command, _ in seen} == {"GET", "SET"}
    for (command, side), figures in seen.items():
        record(f"cache/resp/{command}/{mode}/{side}", statistics.median(figures), "ops/s")

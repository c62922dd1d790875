"""lab/api/readcache.py on a real Redis of its own: keys, hits, generations, flights, outages.

Each test that needs Redis starts a private ``redis-server`` on a free port, without
persistence, and stops, pauses (SIGSTOP), slows (``DEBUG SLEEP``) or restarts it by its
PID -- never the shared one on 6379. The store is the memory store (PostgreSQL has its
own tests), subclassed to count its reads and, for single flight, to make them slow.
Every cached answer is compared byte for byte with an app on the same store without a
cache: the reference.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import NamedTuple

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis

from lab.api.app import build_app
from lab.api.memory import MemoryStore
from lab.api.readcache import ReadCache, list_key, task_key, versioned
from lab.api.store import TaskQuery
from lab.http.app import serve
from tests.api.conftest import FAST_HASHER, Api
from tests.cache.clock import FakeClock

pytestmark = pytest.mark.integration

REDIS_SERVER = shutil.which("redis-server")
TIMEOUT = 0.1  # the longest wait for one Redis command, as the tests configure it
RETRY_AFTER = 0.2  # how long an instance leaves a failed Redis alone
BOUND = 1.0  # no request may take longer than this, whatever Redis does
PATHS = ["/tasks", "/tasks?sort=asc", "/tasks?status=completed", "/tasks?search=REPORT",
         "/tasks?userId=1&limit=1", "/tasks?limit=1&page=2", "/tasks/1", "/tasks/99"]


# -- a private redis-server -----------------------------------------------------------------------


class PrivateRedis:
    def __init__(self, cwd: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.cwd = cwd
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--enable-debug-command", "local"],
            cwd=self.cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        """Gone at once, as a crash: SIGKILL by PID."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused server cannot die otherwise
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)  # connections stay open; nothing answers

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)


@pytest.fixture
def private_redis(tmp_path):
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(str(tmp_path))
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- the API, with and without the cache ----------------------------------------------------------


class CountingStore(MemoryStore):
    """The memory store, counting the reads the cache should save; ``delay`` slows them."""

    def __init__(self) -> None:
        super().__init__()
        self.list_calls = self.get_calls = 0
        self.delay = 0.0

    async def list_tasks(self, query: TaskQuery):
        self.list_calls += 1
        await asyncio.sleep(self.delay)
        return await super().list_tasks(query)

    async def get_task(self, task_id: int):
        self.get_calls += 1
        await asyncio.sleep(self.delay)
        return await super().get_task(task_id)


class Read(NamedTuple):
    status: int
    cache: str | None  # X-Cache
    body: bytes
    instance: str | None  # X-Instance
    seconds: float


@dataclass
class Instance(Api):
    reads: ReadCache | None = None

    async def read(self, path: str) -> Read:
        started = time.perf_counter()
        async with self.client.get(path) as answer:
            body = await answer.read()
        return Read(answer.status, answer.headers.get("X-Cache"), body,
                    answer.headers.get("X-Instance"), time.perf_counter() - started)

    async def write(self, method: str, path: str, json: dict | None = None) -> int:
        status, _ = await self.call(method, path, json)
        return status


@contextlib.asynccontextmanager
async def instance(store: MemoryStore, url: str | None, name: str = "a",
                   **options) -> AsyncIterator[Instance]:
    reads = None
    if url is not None:
        options = {"timeout": TIMEOUT, "retry_after": RETRY_AFTER, **options}
        reads = ReadCache.from_url(url, **options)
    app = build_app(store, hasher=FAST_HASHER, read_cache=reads, instance=name)
    try:
        async with (serve(app) as (host, port),
                    aiohttp.ClientSession(f"http://{host}:{port}") as client):
            yield Instance(client, store, reads)
    finally:
        if reads is not None:
            await reads.close()


async def seed(api: Api) -> None:
    """Two users, two categories, three tasks: ids 1.. exist."""
    ada, bob = await api.user("Ada"), await api.user("Bob")
    work, home = await api.category("Work"), await api.category("Home")
    await api.task(title="Write the report", userId=ada["id"], categoryId=work["id"])
    await api.task(title="Buy milk", userId=bob["id"], categoryId=home["id"], status="completed")
    await api.task(title="Call Bob", description="about the report", userId=ada["id"])


@pytest.fixture(params=[None, 30.0], ids=["no-l1", "l1"])
async def both(request, private_redis):
    """A cached instance and the uncached reference, on one store; seeded."""
    store = CountingStore()
    async with (instance(store, private_redis.url, l1_ttl=request.param) as cached,
                instance(store, None, "reference") as reference):
        await seed(cached)
        yield cached, reference


async def same_as_reference(cached: Instance, reference: Instance, path: str) -> Read:
    got, expected = await cached.read(path), await reference.read(path)
    assert (got.status, got.body) == (expected.status, expected.body), path
    return got


# -- keys: no Redis -------------------------------------------------------------------------------


def test_equal_queries_share_a_key_and_every_other_query_has_its_own():
    assert list_key({"sort": "asc", "status": "pending"}) == list_key(
        {"status": "pending", "sort": "asc"})
    variants = [{}, {"sort": "asc"}, {"status": "pending"}, {"userId": 1}, {"userId": 2},
                {"categoryId": 1}, {"search": "report"}, {"search": "Report"}, {"page": 2},
                {"limit": 20}, {"after": "abc"}, {"search": "a&b=c"}, {"search": "a", "b": "c"}]
    assert len({list_key(v) for v in variants}) == len(variants)  # a value cannot forge a "&"
    assert versioned("lab:tasks", 42, task_key(7)) == "lab:tasks:g42:task/7"
    assert list_key({}) != task_key(1)


# -- hits, misses, keys ---------------------------------------------------------------------------


async def test_a_miss_then_hits_answer_the_same_bytes_as_no_cache(both):
    cached, reference = both
    for path in PATHS:
        assert (await same_as_reference(cached, reference, path)).cache in ("MISS", None)
    for path in PATHS:
        second = await same_as_reference(cached, reference, path)
        assert second.cache in ("HIT", "L1", None)  # None: a 404 is an error answer, unlabelled
    counts = cached.reads.counts
    assert counts["misses"] == len(PATHS)
    assert counts["hits"] + counts["l1Hits"] == len(PATHS)
    assert (counts["degraded"], counts["errors"]) == (0, 0)


async def test_the_store_is_asked_once_per_key_and_generation(both):
    cached, _ = both
    store = cached.store
    for _ in range(3):
        await cached.read("/tasks/1")
        await cached.read("/tasks/99")  # "no such task" is cached too
        await cached.read("/tasks?sort=asc")
    assert (store.get_calls, store.list_calls) == (2, 1)


async def test_each_query_variant_is_keyed_apart_and_equal_queries_share_a_key(
        both, private_redis):
    cached, reference = both
    for path in PATHS[:6]:
        assert (await cached.read(path)).cache == "MISS"
    spelt_otherwise = ["/tasks?page=1&sort=desc&limit=10", "/tasks?limit=10&sort=asc",
                       "/tasks?status=completed&page=1", "/tasks?search=REPORT&sort=desc",
                       "/tasks?limit=1&userId=01", "/tasks?page=2&limit=1"]
    for path in spelt_otherwise:
        read = await same_as_reference(cached, reference, path)
        assert read.cache in ("HIT", "L1"), path
    generation = cached.reads.generation
    keys = private_redis.client().keys(f"lab:tasks:g{generation}:*")
    assert len(keys) == 6


async def test_a_bad_query_is_refused_before_the_cache_is_asked(both):
    cached, _ = both
    assert (await cached.read("/tasks?page=2&after=abc")).status == 400
    assert (await cached.read("/tasks?stauts=pending")).status == 400
    assert cached.reads.counts["misses"] == 0


# -- invalidation ---------------------------------------------------------------------------------

WRITES = {
    "create task": ("POST", "/tasks", {"title": "New", "userId": 2}),
    "update task": ("PUT", "/tasks/1", {"title": "Rewrite the report"}),
    "delete task": ("DELETE", "/tasks/1", None),
    "create user": ("POST", "/users", {"name": "Cy", "email": "cy@example.com",
                                       "password": "secret1"}),
    "update user": ("PUT", "/users/1", {"name": "Ada Lovelace"}),  # embedded in tasks 1, 3
    "delete user": ("DELETE", "/users/1", None),
    "create category": ("POST", "/categories", {"name": "Errands"}),
    "update category": ("PUT", "/categories/1", {"name": "Office"}),  # embedded in task 1
    "delete category": ("DELETE", "/categories/1", None),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
async def test_every_write_starts_a_new_generation(both, write):
    cached, reference = both
    watched = ["/tasks", "/tasks/1", "/tasks?search=ada", "/tasks?categoryId=1"]
    for path in watched * 2:
        await cached.read(path)
    before = cached.reads.generation
    assert await cached.write(*write) in (200, 201, 204)
    assert cached.reads.generation == before + 1
    for path in watched:
        read = await same_as_reference(cached, reference, path)
        assert read.cache in ("MISS", None), path  # nothing from before the write


@pytest.mark.parametrize("write", [
    ("PUT", "/tasks/99", {"title": "x"}),  # 404
    ("POST", "/tasks", {"title": ""}),  # 400
    ("POST", "/tasks", {"title": "x", "userId": 99}),  # 400: no such user
    ("POST", "/users", {"name": "Ada", "email": "ADA@example.com", "password": "secret1"}),  # 409
    ("DELETE", "/categories/99", None),  # 404
], ids=["404", "400", "unknown user", "409", "delete 404"])
async def test_a_write_that_failed_changes_no_generation(both, write):
    cached, _ = both
    await cached.read("/tasks")
    before = cached.reads.generation
    assert await cached.write(*write) >= 400
    assert cached.reads.generation == before
    assert (await cached.read("/tasks")).cache in ("HIT", "L1")


async def test_a_write_on_one_instance_is_seen_by_the_next_read_on_another(private_redis):
    store = CountingStore()
    async with (instance(store, private_redis.url, "a") as a,
                instance(store, private_redis.url, "b", l1_ttl=30.0) as b):
        await seed(a)
        assert (await a.read("/tasks/1")).cache == "MISS"
        assert (await b.read("/tasks/1")).cache == "HIT"  # filled by a
        assert (await b.read("/tasks/1")).cache == "L1"
        assert await a.write("PUT", "/tasks/1", {"title": "Renamed on a"}) == 200
        read = await b.read("/tasks/1")  # b's L1 holds the old answer, under the old generation
        assert (read.cache, read.instance) == ("MISS", "b")
        assert b"Renamed on a" in read.body
        assert await b.write("PUT", "/users/1", {"name": "Renamed on b"}) == 200
        read = await a.read("/tasks?search=renamed")
        assert (read.cache, read.instance) == ("MISS", "a")
        assert b"Renamed on b" in read.body


async def test_l1_entries_expire_after_their_ttl(private_redis):
    clock = FakeClock()
    async with instance(CountingStore(), private_redis.url, l1_ttl=5.0, clock=clock) as a:
        await seed(a)
        assert [(await a.read("/tasks")).cache for _ in range(3)] == ["MISS", "L1", "L1"]
        clock.tick(5.5)
        assert [(await a.read("/tasks")).cache for _ in range(2)] == ["HIT", "L1"]


# -- single flight --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/tasks?status=pending", "/tasks/1"])
async def test_concurrent_misses_make_one_store_call(both, path):
    cached, reference = both
    store = cached.store
    store.delay = 0.2  # long enough for every request to arrive during the one load
    calls_before = store.list_calls + store.get_calls
    reads = await asyncio.gather(*(cached.read(path) for _ in range(20)))
    assert store.list_calls + store.get_calls == calls_before + 1
    assert {r.body for r in reads} == {(await reference.read(path)).body}
    assert {r.cache for r in reads} == {"MISS"}  # each waiter is told what its flight did
    assert cached.reads.counts["coalesced"] == 19


# -- Redis down, slow, back -----------------------------------------------------------------------


async def test_with_redis_down_every_request_is_answered_by_the_store_quickly(
        both, private_redis):
    cached, reference = both
    for path in PATHS:
        await cached.read(path)
    private_redis.stop()
    for _ in range(2):
        for path in PATHS:
            read = await same_as_reference(cached, reference, path)
            assert read.cache in ("DEGRADED", None) and read.seconds < BOUND, read
    started = time.perf_counter()
    assert await cached.write("POST", "/tasks", {"title": "Written while down", "userId": 1}) == 201
    assert time.perf_counter() - started < BOUND
    read = await cached.read("/tasks")
    assert read.cache == "DEGRADED" and b"Written while down" in read.body
    status = (await cached.call("GET", "/cache"))[1]
    assert status["up"] is False and status["owedBump"] is True
    assert status["degraded"] >= 2 * len(PATHS) and status["errors"] >= 1


async def test_redis_stopped_under_load_fails_no_request(both, private_redis):
    cached, reference = both
    expected = {path: (await reference.read(path)).status for path in PATHS}  # 404 for one
    statuses: list[int] = []
    sources: set[str | None] = set()

    async def reader(path: str) -> None:
        until = time.perf_counter() + 1.5
        while time.perf_counter() < until:
            read = await cached.read(path)
            statuses.append(read.status)
            sources.add(read.cache)
            assert read.status == expected[path], (path, read)

    async def stop_redis() -> None:
        await asyncio.sleep(0.5)  # mid-run: readers are being served from Redis by now
        await asyncio.to_thread(private_redis.stop)

    await asyncio.gather(*(reader(PATHS[k % len(PATHS)]) for k in range(10)), stop_redis())
    assert len(statuses) > 100, collections.Counter(statuses)  # really under load
    assert {"DEGRADED"} < sources and sources & {"HIT", "L1"}, sources  # before and after


async def test_a_restarted_redis_is_used_again_without_help(both, private_redis):
    cached, reference = both
    await cached.read("/tasks")
    private_redis.stop()
    assert (await cached.read("/tasks")).cache == "DEGRADED"
    assert await cached.write("PUT", "/tasks/1", {"status": "completed"}) == 200  # bump owed
    private_redis.start()  # the same port, empty
    deadline = time.monotonic() + 5
    while (read := await same_as_reference(cached, reference, "/tasks")).cache == "DEGRADED":
        assert time.monotonic() < deadline, "the cache never came back"
        await asyncio.sleep(0.05)
    assert read.cache == "MISS"
    assert (await cached.read("/tasks")).cache in ("HIT", "L1")
    assert cached.reads.owed_bump is False
    assert private_redis.client().get("lab:tasks:generation") == b"1"  # the owed INCR, paid


async def _debug_sleep(server: PrivateRedis, seconds: float) -> None:
    client = aioredis.Redis(port=server.port, socket_timeout=seconds + 5)
    try:
        await client.execute_command("DEBUG", "SLEEP", seconds)
    finally:
        await client.aclose()


@pytest.mark.parametrize("how", ["sigstop", "debug-sleep"])
async def test_a_slow_redis_costs_a_bounded_wait_then_the_store_answers(
        both, private_redis, how):
    cached, reference = both
    for path in PATHS:
        await cached.read(path)
    if how == "sigstop":
        private_redis.pause()
        sleeper = None
    else:
        sleeper = asyncio.create_task(_debug_sleep(private_redis, 1.5))
        await asyncio.sleep(0.1)  # the server is now inside DEBUG SLEEP
    try:
        slow = []
        for path in PATHS:
            read = await same_as_reference(cached, reference, path)
            assert read.status in (200, 404) and read.seconds < BOUND, read
            slow.append(read)
        assert slow[0].cache == "DEGRADED" and slow[0].seconds >= TIMEOUT * 0.9  # it did wait
        assert await cached.write("PUT", "/tasks/2", {"title": "Slow"}) == 200
    finally:
        if sleeper is None:
            private_redis.resume()
        else:
            await sleeper
    assert cached.reads.counts["degraded"] >= len(PATHS)
    deadline = time.monotonic() + 5
    while (read := await cached.read("/tasks/2")).cache == "DEGRADED":
        assert time.monotonic() < deadline, "the cache never came back"
        await asyncio.sleep(0.05)
    assert b"Slow" in read.body
    assert (await cached.read("/tasks/2")).cache in ("HIT", "L1")


# -- X-Instance, /cache ---------------------------------------------------------------------------


async def test_every_answer_names_its_instance(both):
    cached, _ = both
    for path in ("/health", "/tasks", "/tasks/99", "/nowhere", "/openapi.json"):
        assert (await cached.read(path)).instance == "a", path
    async with cached.client.post("/tasks", json={"title": ""}) as answer:
        assert answer.status == 400 and answer.headers["X-Instance"] == "a"


async def test_without_a_cache_there_is_no_x_cache_and_cache_says_so():
    async with instance(MemoryStore(), None, "solo") as solo:
        await seed(solo)
        read = await solo.read("/tasks")
        assert (read.status, read.cache, read.instance) == (200, None, "solo")
        assert await solo.call("GET", "/cache") == (200, {"instance": "solo", "enabled": False})
    async with (serve(build_app(MemoryStore(), hasher=FAST_HASHER)) as (host, port),
                aiohttp.ClientSession() as session,
                session.get(f"http://{host}:{port}/health") as answer):
        assert "X-Instance" not in answer.headers  # an app alone does not name itself


# -- the command line -----------------------------------------------------------------------------


def start_cli(*flags: str) -> tuple[subprocess.Popen, str, str]:
    process = subprocess.Popen([sys.executable, "-m", "lab.api", "--port", "0", *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline().strip()
    found = re.match(r"lab\.api listening on http://(127\.0\.0\.1:\d+) \((.*)\)$", line)
    assert found, line
    return process, found.group(1), found.group(2)


def stop_cli(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.stderr.read()


async def test_the_cli_serves_through_redis_and_names_itself_host_port(private_redis):
    process, where, details = start_cli("--redis-url", private_redis.url, "--l1-ttl", "5",
                                        "--no-access-log")
    try:
        assert details == f"store=memory, loop=uvloop, read-cache={private_redis.url}"
        async with aiohttp.ClientSession(f"http://{where}") as client:
            seen = []
            for _ in range(3):
                async with client.get("/tasks") as answer:
                    seen.append((answer.headers["X-Cache"], answer.headers["X-Instance"]))
            assert seen == [("MISS", where), ("L1", where), ("L1", where)]
            async with client.get("/cache") as answer:
                status = await answer.json()
            assert (status["l1Ttl"], status["ttl"], status["misses"]) == (5.0, 60.0, 1)
    finally:
        log = stop_cli(process)
    assert "Traceback" not in log


async def test_the_cli_starts_and_serves_with_no_redis_listening(private_redis):
    private_redis.stop()  # its port is now free: nothing answers there
    process, where, _ = start_cli("--redis-url", private_redis.url, "--instance", "api-1")
    try:
        async with (aiohttp.ClientSession(f"http://{where}") as client,
                    client.get("/tasks") as answer):
            assert answer.status == 200
            assert (answer.headers["X-Cache"], answer.headers["X-Instance"]) == (
                "DEGRADED", "api-1")
    finally:
        log = stop_cli(process)
    assert "does not answer yet" in log and "Traceback" not in log


@pytest.mark.parametrize("args", [["--redis-url", "http://127.0.0.1:6379"],
                                  ["--cache-ttl", "0"], ["--l1-ttl", "-1"],
                                  ["--redis-timeout", "soon"]])
def test_bad_cache_flags_are_one_line(args):
    result = subprocess.run([sys.executable, "-m", "lab.api", *args], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2
    assert re.fullmatch(r"python -m lab\.api: error: .+ \(see --help\)\n", result.stderr)

"""The RESP server over real sockets on 127.0.0.1, side by side with a private real Redis.

Every server here listens on a free port and is stopped by the test that
started it: the lab's in-process through ``serve()``, the real ``redis-server``
by PID in a fixture finalizer, ``python -m lab.cache`` by SIGTERM/SIGINT.
"""

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from lab.cache.commands import execute_all
from lab.cache.server import CacheServer, serve
from lab.cache.ttl import TTLCache

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
TIMEOUT = 10  # seconds: no test waits longer for any one thing


def encode_command(*args: bytes | str) -> bytes:
    words = [a if isinstance(a, bytes) else a.encode() for a in args]
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%b\r\n" % (len(w), w) for w in words)


QUIT = encode_command("QUIT")
FLUSHALL = encode_command("FLUSHALL")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
async def server():
    async with serve(TTLCache(10_000, ttl=None), "127.0.0.1", 0) as srv:
        yield srv


@pytest.fixture
async def client(server):
    conn = aioredis.Redis(host="127.0.0.1", port=server.port)
    yield conn
    await conn.aclose()


@pytest.fixture(scope="module")
def real_redis(tmp_path_factory):
    """A private redis-server on a free port, stopped by PID when the module is done."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed: the differential tests compare against it")
    port = free_port()
    process = subprocess.Popen(
        [REDIS_SERVER, "--save", "", "--appendonly", "no", "--port", str(port),
         "--bind", "127.0.0.1", "--daemonize", "no"],
        cwd=tmp_path_factory.mktemp("redis"),  # nothing is written, but never into the repo
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16) == b"+PONG\r\n":
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()  # by PID: only the server this fixture started
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes on a fresh connection; everything received until the server closes."""
    async with asyncio.timeout(TIMEOUT):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(data)
            await writer.drain()
            return await reader.read()  # until EOF: QUIT or a protocol error closes
        finally:
            writer.close()


# -- redis-py round trips ----------------------------------------------------------------


async def test_redis_py_round_trips(client):
    assert await client.ping() is True
    assert await client.set("greeting", "hello") is True
    assert await client.get("greeting") == b"hello"
    assert await client.get("missing") is None
    assert await client.set("greeting", "x", nx=True) is None
    assert await client.exists("greeting", "greeting", "missing") == 2
    assert await client.incr("hits") == 1
    assert await client.incrby("hits", 9) == 10
    assert await client.expire("hits", 100) is True
    assert await client.ttl("hits") == 100
    assert await client.mset({"a": "1", "b": "2"}) is True
    assert await client.mget("a", "nope", "b") == [b"1", None, b"2"]
    assert await client.delete("a", "b", "nope") == 2
    assert await client.dbsize() == 2
    assert await client.echo(b"\x00\r\n") == b"\x00\r\n"
    info = await client.info()
    assert info["keyspace_hits"] >= 2 and info["db0"]["keys"] == 2
    assert await client.flushall() is True
    assert await client.dbsize() == 0


async def test_redis_py_errors_are_response_errors(client):
    with pytest.raises(ResponseError, match="wrong number of arguments for 'get' command"):
        await client.execute_command("GET")
    with pytest.raises(ResponseError, match="unknown command 'NOPE'"):
        await client.execute_command("NOPE", "a")
    assert await client.ping() is True  # an error reply does not close the connection


async def test_redis_py_pipeline_of_1000_commands(client, server):
    async with client.pipeline(transaction=False) as pipe:
        for i in range(500):
            pipe.set(f"key:{i}", f"value:{i}")
        for i in range(500):
            pipe.get(f"key:{i}")
        results = await pipe.execute()
    assert results[:500] == [True] * 500
    assert results[500:] == [f"value:{i}".encode() for i in range(500)]
    assert len(server.cache) == 500


@pytest.mark.parametrize("protocol", [2, None], ids=["resp2", "redis-py-default"])
async def test_redis_py_config_get_works_whichever_protocol_it_asks_for(server, protocol):
    # redis-py 8.2 asks for RESP3 by default; HELLO 3 is refused, so it stays on RESP2.
    conn = aioredis.Redis(port=server.port, protocol=protocol)
    try:
        assert await conn.set("k", "v") is True
        assert await conn.config_get("save") == {"save": ""}
    finally:
        await conn.aclose()


# -- differential: the same script against the lab and against Redis ---------------------------

SCRIPT = [
    ("FLUSHALL",),
    ("SET", "k", "v"), ("GET", "k"), ("GET", "missing"),
    ("SET", "k", "v2", "NX"), ("SET", "k", "v3", "XX"), ("SET", "new", "v", "XX"), ("GET", "k"),
    ("SET", "n", "10", "EX", "100"), ("TTL", "n"), ("INCR", "n"), ("TTL", "n"),
    ("INCRBY", "n", "-20"), ("DECR", "n"), ("DECRBY", "n", "5"), ("INCRBY", "n", "x"),
    ("SET", "k", "v", "EX", "0"), ("SET", "k", "v", "EX", "-5"), ("SET", "k", "v", "EX", "abc"),
    ("SET", "k", "v", "NX", "XX"), ("SET", "k", "v", "PX"), ("SET", "k", "v", "EX", "1", "PX", "1"),
    ("SET", "k", "v", "PX", "9223372036854775807"), ("SET", "k", "v", "BOGUS"),
    ("SET", "k", "v", "nx", "nx"), ("set", "k", "v", "ex", "10", "ex", "20"), ("TTL", "k"),
    ("MSET", "a", "1", "b", "2"), ("MGET", "a", "b", "nope"), ("MSET", "a", "1", "b"),
    ("EXISTS", "a", "a", "nope"), ("DEL", "a", "a", "nope"), ("EXISTS", "a"),
    ("EXPIRE", "b", "50"), ("TTL", "b"), ("EXPIRE", "b", "10", "GT"), ("EXPIRE", "b", "10", "LT"),
    ("TTL", "b"), ("EXPIRE", "b", "10", "FOO"), ("EXPIRE", "b", "10", "NX", "XX"),
    ("EXPIRE", "b", "10", "GT", "LT"), ("EXPIRE", "b", "x"),
    ("EXPIRE", "b", "9223372036854775807"), ("PEXPIRE", "b", "9223372036854775807"),
    ("EXPIRE", "b", "-1"), ("EXISTS", "b"), ("EXPIRE", "missing", "10"),
    ("PEXPIRE", "missing", "100"), ("TTL", "missing"), ("PTTL", "missing"),
    ("SET", "p", "v"), ("PTTL", "p"),  # milliseconds left would race: only the -1 and -2 cases
    ("SET", "s", "abc"), ("INCR", "s"), ("SET", "s", "007"), ("INCR", "s"),
    ("SET", "big", "9223372036854775807"), ("INCR", "big"),
    ("DECRBY", "big", "-9223372036854775808"),
    ("ECHO", "hello"), ("PING",), ("PING", "hi"), ("PING", "a", "b"),
    ("GET",), ("GET", "a", "b"), ("TTL",), ("MGET",), ("DBSIZE", "x"),
    ("NOSUCH", "x", "y"), ("nosuch",), ("NOSUCH", "x" * 200, "y"),
    ("SELECT", "0"), ("SELECT", "x"), ("FLUSHALL", "bogus"), ("DBSIZE",),
    ("SET", b"bin\x00\r\n", b"\x00\xff\r\n"), ("GET", b"bin\x00\r\n"), ("SET", "", ""), ("GET", ""),
    ("FLUSHALL",), ("DBSIZE",),
]  # fmt: skip


async def replay(port: int, protocol: int | None) -> list:
    conn = aioredis.Redis(host="127.0.0.1", port=port, protocol=protocol)
    results = []
    try:
        async with asyncio.timeout(TIMEOUT):
            for args in SCRIPT:
                try:
                    results.append(await conn.execute_command(*args))
                except ResponseError as exc:
                    results.append(f"error: {exc}")
    finally:
        await conn.aclose()
    return results


@pytest.mark.parametrize("protocol", [2, None], ids=["resp2", "redis-py-default"])
async def test_differential_redis_py_script(server, real_redis, protocol):
    lab = await replay(server.port, protocol)
    redis = await replay(real_redis, protocol)
    differences = [(args, a, b) for args, a, b in zip(SCRIPT, lab, redis, strict=True) if a != b]
    assert differences == []
    assert sum(isinstance(r, str) for r in redis) > 20  # the script really covers errors


RAW_CASES = [
    b"PING\r\n",
    b"SET k \"a b\"\r\nGET k\r\nset k 'c'\r\nGET k\r\n",
    b"\r\n\n*0\r\n*-1\r\nPING\r\n",  # empty lines and empty frames are skipped
    encode_command("SET", "k", b"a\r\nb") + encode_command("GET", "k"),
    encode_command("MGET", "k", "nope") + encode_command("EXISTS", "k", "k"),
    encode_command("CONFIG", "GET", "save") + encode_command("CONFIG", "GET", "appendonly"),
    encode_command("CONFIG", "GET", "no-such-parameter"),
    encode_command("CONFIG") + encode_command("CONFIG", "GET") + encode_command("CONFIG", "x"),
    encode_command("CLIENT") + encode_command("COMMAND", "nope"),
    encode_command("nope", "x" * 100, "y" * 100, "z") + encode_command("nope"),
    encode_command("SET", "k", "v", "EX", "0") + encode_command("SET", "k", "v", "NX", "XX"),
    encode_command("HELLO", "4") + encode_command("HELLO", "x"),
    encode_command("INFO", "nosuchsection"),
    b"PING\r\nQUIT\r\nPING\r\n",  # nothing after QUIT runs
]
PROTOCOL_ERROR_CASES = [
    encode_command("PING") + b"*1\r\n$x\r\n",  # the PING before the bad frame is answered
    b"*1\r\nx\r\n",
    b"*2\r\n$3\r\nGET\r\n:1\r\n",
    b"*x\r\n",
    b"*+1\r\n",
    b"*1\r\n$-1\r\n",
    b"*1\r\n$03\r\nabc\r\n",
    b"*1\r\n$536870913\r\n",  # over proto-max-bulk-len: refused at the header
    b'SET k "unbalanced\r\n',
    b'PING\r\nSET k "v"x\r\n',
]


@pytest.mark.parametrize("data", RAW_CASES)
async def test_differential_raw_bytes(server, real_redis, data):
    data = FLUSHALL + data + QUIT  # the real Redis lives for the whole module: start empty
    assert await exchange(server.port, data) == await exchange(real_redis, data)


@pytest.mark.parametrize("data", PROTOCOL_ERROR_CASES)
async def test_differential_protocol_errors(server, real_redis, data):
    data = FLUSHALL + data
    lab = await exchange(server.port, data)
    assert lab == await exchange(real_redis, data)
    assert b"-ERR Protocol error: " in lab


# -- redis-cli ------------------------------------------------------------------------------


@pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli is not installed")
async def test_redis_cli_works_unchanged(server):
    async def cli(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            REDIS_CLI, "-h", "127.0.0.1", "-p", str(server.port), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
        assert process.returncode == 0, err
        return out.decode().strip()

    assert await cli("ping") == "PONG"
    assert await cli("set", "city", "Lisbon") == "OK"
    assert await cli("get", "city") == "Lisbon"
    assert await cli("get", "nowhere") == ""
    assert await cli("incr", "visits") == "1"


# -- bad clients ----------------------------------------------------------------------------


async def test_malformed_input_closes_only_that_connection(server, client):
    assert await client.set("k", "v") is True
    received = await exchange(server.port, b"*1\r\n$x\r\n")
    assert received == b"-ERR Protocol error: invalid bulk length\r\n"  # and then EOF
    assert await client.get("k") == b"v"  # the other client never noticed


async def test_a_bulk_over_the_limit_is_refused_before_its_payload(client):
    async with serve(TTLCache(100, ttl=None), max_bulk_len=1024) as small:
        header = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n"  # the 1025 bytes are never sent
        assert await exchange(small.port, header) == (
            b"-ERR Protocol error: invalid bulk length\r\n"
        )
        assert len(small.cache) == 0
        fits = encode_command("SET", "k", b"x" * 1024) + QUIT
        assert await exchange(small.port, fits) == b"+OK\r\n+OK\r\n"


async def test_our_check_of_the_crlf_after_a_payload(server):
    # Redis skips these two bytes unread; the lab insists (see resp.py).
    assert await exchange(server.port, b"*1\r\n$4\r\nPINGxx") == (
        b"-ERR Protocol error: expected '\\r\\n' after bulk data\r\n"
    )


async def test_a_client_that_vanishes_mid_frame_is_forgotten(server, client):
    assert await client.ping() is True  # redis-py connects on its first command
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"*3\r\n$3\r\nSET\r\n$1\r\nk")  # half a command, then gone
    await writer.drain()
    await asyncio.sleep(0.05)
    assert len(server.clients) == 2
    writer.transport.abort()  # RST, as a crashed client would
    async with asyncio.timeout(TIMEOUT):
        while len(server.clients) != 1:
            await asyncio.sleep(0.01)
    assert await client.exists("k") == 0


async def test_backpressure_stops_reading_from_a_client_that_does_not_read(server, client):
    value = b"v" * (1024 * 1024)
    await client.set("big", value)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for _ in range(32):  # 32 MiB of replies: far more than the kernel's socket buffers
            writer.write(encode_command("GET", "big"))
            await writer.drain()
        connection = next(c for c in server.clients if c.peer.endswith(
            str(writer.get_extra_info("sockname")[1])))  # fmt: skip
        async with asyncio.timeout(TIMEOUT):
            while connection._transport.is_reading():
                await asyncio.sleep(0.01)
        assert await client.ping() is True  # meanwhile everyone else is served
        expected = b"$%d\r\n%b\r\n" % (len(value), value)
        async with asyncio.timeout(TIMEOUT):
            for _ in range(32):
                assert await reader.readexactly(len(expected)) == expected
        assert connection._transport.is_reading()  # resumed once the client caught up
    finally:
        writer.close()


async def test_closing_the_server_closes_its_clients():
    async with serve(TTLCache(10, ttl=None)) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(encode_command("PING"))
        assert await reader.readexactly(7) == b"+PONG\r\n"
    async with asyncio.timeout(TIMEOUT):
        assert await reader.read() == b""  # EOF: the server closed us on its way out
    writer.close()
    assert srv.clients == set()


async def test_shutdown_does_not_wait_forever_for_a_client_that_never_reads():
    srv = CacheServer(TTLCache(10, ttl=None))
    await srv.start("127.0.0.1", 0)
    execute_all(srv.cache, [[b"SET", b"big", b"v" * (1024 * 1024)]])
    _, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        writer.write(encode_command("GET", "big") * 32)  # 32 MiB of replies it won't read
        await writer.drain()
        async with asyncio.timeout(TIMEOUT):
            while not srv.clients or next(iter(srv.clients))._transport.is_reading():
                await asyncio.sleep(0.01)
        started = time.monotonic()
        await srv.close(grace=0.2)
        assert time.monotonic() - started < 2  # gave up on it after the grace period
        assert srv.clients == set()
    finally:
        writer.close()
        await srv.close(grace=0)  # a no-op unless an assertion failed first


async def test_the_cron_expires_keys_nobody_reads():
    cache = TTLCache(1000, ttl=None)
    async with serve(cache, hz=100) as srv:
        conn = aioredis.Redis(port=srv.port, protocol=2)
        try:
            for i in range(10):
                await conn.set(f"k{i}", "v", px=20)
            assert len(cache) == 10
            async with asyncio.timeout(TIMEOUT):
                while len(cache):  # no reads: only the active expiry can reclaim them
                    await asyncio.sleep(0.01)
            assert cache.expirations == 10
        finally:
            await conn.aclose()


# -- python -m lab.cache --------------------------------------------------------------------

READY = re.compile(
    r"lab\.cache listening on 127\.0\.0\.1:(\d+) \(maxsize=1000, ttl=30s, loop=(uvloop|asyncio)\)"
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_the_cli_serves_and_exits_0_on_a_signal(signum):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "lab.cache", "serve", "--port", "0", "--maxsize", "1000",
        "--ttl", "30",
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), TIMEOUT)).decode()
        ready = READY.fullmatch(line.strip())
        assert ready, line
        conn = aioredis.Redis(port=int(ready[1]))
        assert await conn.set("k", "v") is True
        assert await conn.ttl("k") == 30  # --ttl is the default for keys set without EX
        process.send_signal(signum)
        assert await asyncio.wait_for(process.wait(), TIMEOUT) == 0
        await conn.aclose()
        assert b"Traceback" not in await process.stderr.read()
    finally:
        if process.returncode is None:
            process.kill()  # only if the test failed before the process exited
            await process.wait()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lab.cache", *args],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [["serve", "--bogus"], ["serve", "--maxsize", "0"], ["serve", "--port", "70000"],
     ["serve", "--ttl", "soon"], ["serve", "--max-bulk-bytes", "-1"], ["nope"]],
)  # fmt: skip
def test_the_cli_refuses_bad_flags_in_one_line(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert re.match(r"python -m lab\.cache( serve)?: error: .+ \(see --help\)$", result.stderr)
    assert "Traceback" not in result.stderr


def test_the_cli_reports_a_port_in_use_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli("serve", "--port", str(taken.getsockname()[1]))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot listen on 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_cli_without_a_command_prints_help():
    result = run_cli()
    assert result.returncode == 0
    assert "serve" in result.stdout and "usage:" in result.stdout


def test_serve_help_explains_every_flag():
    result = run_cli("serve", "--help")
    assert result.returncode == 0
    for flag in ("--host", "--port", "--maxsize", "--ttl", "--max-bulk-bytes", "--hz", "--loop"):
        assert flag in result.stdout

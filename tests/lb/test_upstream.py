"""One backend connection against real sockets: an idle one the backend touches closes at
once, a reused one that closes before any answer is stale, a slow reader pauses the backend."""

from __future__ import annotations

import asyncio

import pytest

from lab.lb.messages import EndOfMessage, Response
from lab.lb.retry import Failure
from lab.lb.upstream import READ_HIGH_WATER, UpstreamFailure
from tests.lb.conftest import OK, TIMEOUT, get, pool, raw_backend, until

pytestmark = pytest.mark.integration


async def close_it(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(0.1)  # the pool has it by now
    writer.close()


async def write_to_it(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(0.1)
    writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")


@pytest.mark.parametrize("after", [close_it, write_to_it])
async def test_a_pooled_connection_the_backend_touches_leaves_the_pool_at_once(after) -> None:
    async with raw_backend(after=after) as port:
        p = pool(port)
        conn = await p.acquire()
        await get(conn)
        p.release(conn, reuse=True)
        await until(lambda: p.open == 0, "dropped as soon as the backend touched it")
        assert p.idle == 0
        fresh = await p.acquire()
        assert fresh is not conn and p.opened == 2
        await p.close()


async def test_a_reused_connection_closed_before_any_answer_is_stale() -> None:
    async with raw_backend(answer=lambda n: OK if n == 0 else None) as port:
        p = pool(port)
        conn = await p.acquire()
        await get(conn)
        p.release(conn, reuse=True)
        again = await p.acquire()
        assert again is conn
        with pytest.raises(UpstreamFailure) as failed:
            await get(again)
        assert (failed.value.failure, failed.value.stale) == (Failure.CLOSED, True)
        fresh = await p.acquire(fresh=True)
        assert fresh is not conn and len(await get(fresh)) == 3  # answered, as a first one
        await p.close()


async def test_a_slow_reader_pauses_the_backend() -> None:
    size = 8 * READ_HIGH_WATER
    big = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size + b"x" * size
    async with raw_backend(answer=lambda n: big) as port:
        p = pool(port)
        conn = await p.acquire()
        conn.begin(b"GET")
        conn.write(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n")
        assert isinstance(await conn.next_event(TIMEOUT), Response)
        await asyncio.sleep(0.3)  # nobody reads: the queue must stop growing
        assert READ_HIGH_WATER < conn.queued < 2 * READ_HIGH_WATER
        received = 0
        while not isinstance(event := await conn.next_event(TIMEOUT), EndOfMessage):
            received += len(event.data)
        assert received == size and conn.queued == 0
        await p.close()


async def test_a_backend_that_does_not_read_is_a_timeout_for_the_writer() -> None:
    done = asyncio.Event()

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await done.wait()  # never reads: its socket buffers fill, then ours
        writer.close()

    server = await asyncio.start_server(deaf, "127.0.0.1", 0)
    try:
        p = pool(server.sockets[0].getsockname()[1])
        conn = await p.acquire()
        conn.begin(b"PUT")
        conn.write(b"PUT / HTTP/1.1\r\nHost: lab\r\nContent-Length: 67108864\r\n\r\n")
        with pytest.raises(UpstreamFailure) as failed:
            for _ in range(64):
                conn.write(b"x" * (1024 * 1024))
                await conn.drain(0.2)
        assert failed.value.failure is Failure.TIMEOUT
        assert "did not read the request" in failed.value.detail
        await p.close()
    finally:
        done.set()
        server.close()

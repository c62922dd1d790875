"""The keep-alive pool against real sockets: LIFO reuse, bounds, idle timeouts, what goes
back and what does not, connect failures. (One connection's own behaviour: test_upstream.py.)"""

from __future__ import annotations

import socket

import pytest

from lab.lb.messages import Data, EndOfMessage, Response
from lab.lb.retry import Failure
from lab.lb.upstream import UpstreamFailure
from tests.lb.conftest import get, pool, raw_backend, until

pytestmark = pytest.mark.integration


async def test_idle_connections_are_reused_last_in_first_out() -> None:
    async with raw_backend() as port:
        p = pool(port)
        first, second = await p.acquire(), await p.acquire()
        for conn in (first, second):
            assert [e.status if isinstance(e, Response) else e for e in await get(conn)] == [
                200, Data(b"ok"), EndOfMessage()]
        p.release(first, reuse=True)
        p.release(second, reuse=True)
        assert (p.open, p.idle) == (2, 2)
        assert await p.acquire() is second  # the most recently used
        assert await p.acquire() is first
        assert (p.opened, p.reused) == (2, 2)
        assert "idle=0/4" in repr(p)
        await p.close()
        assert p.open == 0


async def test_a_full_pool_closes_the_connection_idle_longest() -> None:
    async with raw_backend() as port:
        p = pool(port, max_idle=1)
        first, second = await p.acquire(), await p.acquire()
        await get(first)
        await get(second)
        p.release(first, reuse=True)
        p.release(second, reuse=True)
        assert p.idle == 1
        await until(lambda: p.open == 1, "the older one is closed")
        assert await p.acquire() is second
        await p.close()


async def test_an_idle_connection_is_closed_after_idle_timeout() -> None:
    async with raw_backend() as port:
        p = pool(port, idle_timeout=0.1)
        conn = await p.acquire()
        await get(conn)
        p.release(conn, reuse=True)
        assert p.idle == 1
        await until(lambda: p.open == 0, "closed after its idle timeout")
        assert conn.closed.done() and p.idle == 0


async def test_only_a_connection_that_can_carry_another_request_goes_back() -> None:
    closing = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    async with raw_backend(answer=lambda n: closing) as port:
        p = pool(port)
        conn = await p.acquire()
        await get(conn)
        assert not conn.reusable  # the answer said close
        p.release(conn, reuse=True)
        assert p.idle == 0
    async with raw_backend() as port:
        p = pool(port)
        conn = await p.acquire()
        await get(conn)
        assert conn.reusable
        p.release(conn, reuse=False)  # e.g. the request body was not all sent
        assert p.idle == 0
        await until(lambda: p.open == 0, "closed")


async def test_connect_failures() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refused = probe.getsockname()[1]
    with pytest.raises(UpstreamFailure) as failed:
        await pool(refused).acquire()
    assert failed.value.failure is Failure.CONNECT
    assert "Connection refused" in failed.value.detail
    with pytest.raises(ValueError):
        pool(refused, max_idle=-1)

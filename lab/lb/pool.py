"""Keep-alive connections to one backend, reused last in, first out.

Opening a TCP connection per request costs a handshake and, on the backend,
an ``accept``: at a few thousand requests a second that is most of the work.
So, like NGINX's ``keepalive`` directive in an ``upstream``, the proxy keeps
idle connections to each backend and sends the next request down one of them.

The pool is a stack of idle ``upstream.BackendConnection``: the most recently
used goes out first (its TCP state is warm, and the ones at the bottom age
out). It is bounded by ``max_idle``: when full, the connection idle the
longest is closed (NGINX's ``keepalive N`` cache). A connection idle for
``idle_timeout`` is closed (``keepalive_timeout``), which should be shorter
than the backend's own, so that the proxy, not the backend, ends it; one that
the backend closes or writes to while idle leaves at once (``upstream.py``).
A connection goes back only if its framer says it can carry another message
(``ResponseFramer.idle`` and ``keep_alive``) and the caller says the request
went out whole. The pool never limits connections in use, as NGINX's does not.
"""

from __future__ import annotations

import asyncio

from lab.cli import os_reason
from lab.lb.retry import Failure
from lab.lb.upstream import BackendConnection, UpstreamFailure


class Pool:
    """Keep-alive connections to one backend (see the module docstring)."""

    def __init__(self, host: str, port: int, *, max_idle: int, idle_timeout: float,
                 connect_timeout: float) -> None:
        if max_idle < 0 or idle_timeout <= 0 or connect_timeout <= 0:
            raise ValueError("max_idle must be >= 0, the timeouts positive")
        self.host, self.port = host, port
        self.address = f"{host}:{port}"
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self.connect_timeout = connect_timeout
        self._idle: list[BackendConnection] = []  # a stack: the most recently used on top
        self._open: set[BackendConnection] = set()
        self.opened = 0  # connections ever opened
        self.reused = 0  # requests sent on a pooled connection
        self._closing = False

    @property
    def open(self) -> int:
        return len(self._open)

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def acquire(self, fresh: bool = False) -> BackendConnection:
        """A connection ready for a request: the most recently pooled, or a new one (``fresh``:
        always new). Raises ``UpstreamFailure`` (CONNECT or CONNECT_TIMEOUT)."""
        assert not self._closing, "the pool is closed"
        while self._idle and not fresh:
            conn = self._idle.pop()
            conn.unpark()
            if conn.reusable:
                self.reused += 1
                return conn
            conn.abort()  # cannot happen often: a closed one leaves the stack when it closes
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: BackendConnection(self.address, self._lost), self.host, self.port)
        except TimeoutError:
            raise UpstreamFailure(Failure.CONNECT_TIMEOUT, "not connected within "
                                  f"{self.connect_timeout:g} s") from None
        except OSError as exc:  # refused, unreachable, no such host
            raise UpstreamFailure(Failure.CONNECT, f"connect: {os_reason(exc)}") from None
        self._open.add(conn)
        self.opened += 1
        return conn

    def release(self, conn: BackendConnection, reuse: bool) -> None:
        """Done with ``conn``: back on the stack if ``reuse`` and it can carry another request,
        else closed."""
        if not (reuse and conn.reusable and self.max_idle and not self._closing):
            conn.close()
            return
        if len(self._idle) >= self.max_idle:
            self._idle.pop(0).close()  # full: the one idle the longest makes room
        conn.park(self.idle_timeout, self._expire)
        self._idle.append(conn)

    def _expire(self, conn: BackendConnection) -> None:
        """Its idle timer fired."""
        self._idle.remove(conn)
        conn.close()

    def _lost(self, conn: BackendConnection) -> None:
        """It closed, whoever closed it."""
        self._open.discard(conn)
        if conn in self._idle:
            self._idle.remove(conn)

    async def close(self, timeout: float = 1.0) -> None:
        """Close every connection, idle or not, and wait (bounded) until they are gone."""
        self._closing = True
        conns = list(self._open)
        for conn in conns:
            conn.close()
        if conns:
            await asyncio.wait([c.closed for c in conns], timeout=timeout)
        for conn in conns:
            if not conn.closed.done():
                conn.abort()  # it did not close in time: drop what it still had to send

    def __repr__(self) -> str:
        return (f"Pool({self.address}, open={self.open}, idle={self.idle}/{self.max_idle}, "
                f"opened={self.opened}, reused={self.reused})")

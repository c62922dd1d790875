"""The cache as a network server that speaks RESP2: asyncio wiring around pure parts.

Everything that decides anything lives elsewhere: ``resp.RequestParser`` turns
bytes into commands, ``commands.execute`` turns a command into reply bytes. This
module only connects them to sockets, the way Redis's ``networking.c`` connects
its parser to its event loop:

* **one ``asyncio.Protocol`` per client** (``RESPConnection``), not streams:
  ``data_received`` is called with the bytes of one read, with no coroutine,
  task or future in between -- the cheapest path asyncio offers;
* **one write per read**: the replies of every command that read completed go
  out in a single ``transport.write``. A client that pipelines 100 commands
  costs one system call for the replies, not 100: that is why pipelining is fast;
* **backpressure**: when a client does not read its replies, the transport's
  write buffer passes its high-water mark and asyncio calls ``pause_writing``;
  we then stop *reading* from that client until ``resume_writing``. That bounds
  the replies buffered per *read*, not in all: one read of pipelined GETs of a
  large value is answered whole (Redis's ``client-output-buffer-limit`` would
  disconnect such a client; it is not built here);
* **a bad client only hurts itself**: malformed bytes get ``-ERR Protocol
  error: ...`` (after the replies to the commands before them, as Redis does)
  and that one connection is closed; a client that vanishes just drops out;
* **active expiry** runs on a timer, ``hz`` times a second (Redis's ``hz 10``
  serverCron), calling ``cache.expire()``, whose work per call is bounded.

Invariant: the event loop runs one callback at a time and no handler awaits, so
each command runs alone against the cache: no locks, exactly like single-threaded
Redis. What Redis does beyond this: client output buffer limits per client class,
an idle ``timeout``, ``maxclients``, TLS, and replies written from a per-client
buffer in the next event-loop turn rather than straight from the read handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from lab.cache.commands import execute_all
from lab.cache.replies import error
from lab.cache.resp import PROTO_MAX_BULK_LEN, ProtocolError, RequestParser
from lab.cache.ttl import TTLCache

log = logging.getLogger("lab.cache")

HZ = 10  # active-expiry ticks per second, Redis's default "hz"
SHUTDOWN_GRACE = 1.0  # seconds a closing client gets to take its last replies


class RESPConnection(asyncio.Protocol):
    """One client: its own parser; replies go back in the order commands came."""

    __slots__ = ("_cache", "_feed", "_server", "_transport", "_write", "closed", "peer")

    def __init__(self, server: CacheServer) -> None:
        self._server = server
        self._cache = server.cache
        self._feed = RequestParser(max_bulk_len=server.max_bulk_len).feed
        self._transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()  # set by connection_lost
        self.peer = "?"

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._transport = transport  # uvloop's transports are not asyncio.Transport subclasses
        self._write = transport.write  # bound once: it is called for every read
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = f"{host}:{port}"
        if self._server.closing:
            transport.close()  # accepted just as the server began to close
            return
        self._server.clients.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            commands = self._feed(data)
        except ProtocolError as exc:
            log.debug("%s: %s; closing", self.peer, exc)
            replies, quit = execute_all(self._cache, exc.commands)  # those before the bad bytes
            if not quit:
                replies += error(b"ERR " + str(exc).encode("latin-1"))
            self._write(replies)
            self._transport.close()  # close() sends what is buffered first
            return
        if commands:
            replies, quit = execute_all(self._cache, commands)
            self._write(replies)  # one write for all the replies of this read
            if quit:
                self._transport.close()  # QUIT: after its +OK is written (close() flushes)

    def eof_received(self) -> bool:
        return False  # the client closed its side: close ours once the replies are out

    def pause_writing(self) -> None:
        if not self._transport.is_closing():
            self._transport.pause_reading()  # the client is not reading: stop taking requests

    def resume_writing(self) -> None:
        if not self._transport.is_closing():
            self._transport.resume_reading()

    def close(self) -> None:
        """Close once the replies already written have been sent."""
        self._transport.close()

    def abort(self) -> None:
        """Close now, dropping unsent replies."""
        self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.clients.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)

    def __repr__(self) -> str:
        state = "closed" if self.closed.done() else "open"
        return f"RESPConnection({self.peer}, {state})"


class CacheServer:
    """A listening socket, its clients and the expiry timer, around one ``TTLCache``."""

    def __init__(
        self, cache: TTLCache, *, max_bulk_len: int = PROTO_MAX_BULK_LEN, hz: float = HZ
    ) -> None:
        if hz <= 0:
            raise ValueError(f"hz must be positive, got {hz}")
        self.cache = cache
        self.max_bulk_len = max_bulk_len
        self.hz = hz
        self.clients: set[RESPConnection] = set()
        self.closing = False
        self._server: asyncio.Server | None = None
        self._cron: asyncio.Task | None = None

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (0: a free port) and start the expiry timer."""
        RequestParser(max_bulk_len=self.max_bulk_len)  # a bad limit fails here, not per client
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: RESPConnection(self), host, port)
        self._cron = asyncio.create_task(self._server_cron(), name="lab.cache cron")

    @property
    def host(self) -> str:
        assert self._server is not None, "not started"
        return self._server.sockets[0].getsockname()[0]

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return self._server.sockets[0].getsockname()[1]

    async def _server_cron(self) -> None:
        while True:
            await asyncio.sleep(1 / self.hz)
            self.cache.expire()  # bounded work: at most SWEEP_SAMPLE * SWEEP_MAX_ROUNDS keys

    async def close(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop accepting, let each client take its pending replies, then drop it."""
        if self._server is None:
            return
        self.closing = True
        self._server.close()  # no new clients from here on
        if self._cron is not None:
            self._cron.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cron  # the timer is ours: wait until it has really stopped
        clients = list(self.clients)
        for client in clients:
            client.close()  # sends what is buffered, then closes
        if clients:
            _, stuck = await asyncio.wait([c.closed for c in clients], timeout=grace)
            for client in clients:
                if not client.closed.done():
                    client.abort()  # it never read its replies: don't wait for it forever
            if stuck:
                await asyncio.wait(stuck, timeout=grace)
        await self._server.wait_closed()
        self._server = None

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self._server else "not listening"
        return f"CacheServer({where}, clients={len(self.clients)}, cache={self.cache!r})"


@contextlib.asynccontextmanager
async def serve(
    cache: TTLCache,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_bulk_len: int = PROTO_MAX_BULK_LEN,
    hz: float = HZ,
) -> AsyncIterator[CacheServer]:
    """Serve ``cache`` on ``host:port`` while the ``async with`` body runs.

    Port 0 picks a free port; ``server.port`` tells which, so a test can point
    ``redis.asyncio.Redis(port=server.port)`` at it.
    """
    server = CacheServer(cache, max_bulk_len=max_bulk_len, hz=hz)
    await server.start(host, port)
    try:
        yield server
    finally:
        await server.close()  # also on error or cancellation: never leave a socket open

"""The load balancer: an asyncio HTTP/1.1 reverse proxy wired from this package's pure parts.

A request's path, and the module that decides each step::

    accept          one task per client connection (asyncio.start_server)
    read the head   client.py: RequestFramer, header_timeout -> 400 414 431 501 505, 408
    refuse early    a declared body over max_body_size -> 413, before any backend sees it
    /lb-status      answered here, from the counters (status.py); every other path goes on
    choose          balancer.py: round-robin or least-conn over what health.py says is up
    connect         pool.py, upstream.py: the most recently pooled connection, or a new one
    send            exchange.py + rewrite.py: the head, then the body streamed by a pump
    answer          exchange.py: the head within read_timeout -> health: success;
                    the body streamed back, chunked if need be
    on failure      retry.py: the same backend afresh, the next one, or 502 / 503 / 504

**Ownership of tasks.** asyncio starts one task per client; the proxy records
each in ``_clients`` as it starts and each removes itself (and closes its
socket) in a ``finally``. A request's body pump is owned by its attempt
(``Exchange.sending_body``). The active checker, if any, is owned by the
proxy. ``close()`` ends them all, in order: stop accepting; close the idle
clients; let requests in flight finish for up to ``shutdown_timeout``, then
cancel what is left; stop the checker; close the pools. No task outlives it.

**Counting.** Each backend's turn at a request (``Turn``) is counted as
started once and judged once: success when an answer head arrives, failure
when ``retry.verdict`` blames the backend, *abandoned* when neither can be
said (the client left first, or the proxy is shutting down). The balancer's
``active`` counts and the health machine rely on that pairing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

from lab.lb import retry, status
from lab.lb.balancer import BALANCERS, Backend
from lab.lb.checks import run_checks
from lab.lb.client import LINGER, ClientConnection, ClientGone, RequestTimeout
from lab.lb.exchange import Exchange
from lab.lb.health import Event, Health, State
from lab.lb.messages import EndOfMessage, ProtocolError, Request
from lab.lb.pool import Pool
from lab.lb.retry import Next, Verdict
from lab.lb.tuning import CONNECTIONS, DEFAULTS, Tuning
from lab.lb.tuning import Backend as BackendAddress
from lab.lb.upstream import UpstreamFailure

log = logging.getLogger("lab.lb")

STATUS_PATH = "/lb-status"  # answered by the proxy itself; None turns it off
SHUTDOWN_TIMEOUT = 5.0  # seconds requests in flight get to finish on SIGTERM


class Turn:
    """One backend's turn at a request: started once, judged once, ended once."""

    def __init__(self, backend: Backend, health: Health) -> None:
        self.backend, self.health = backend, health
        backend.started()
        health.request_started()  # PROBING -> TRIAL: no other request is sent meanwhile
        self._judged = self._failed = self._ended = False

    def succeeded(self) -> None:
        if not self._judged:
            self._judged = True
            self.health.request_succeeded()

    def failed(self, blame: bool) -> None:
        self._failed = True  # the backend's failure counter counts every failed turn
        if not self._judged:  # its health only hears of failures before an answer head
            self._judged = True
            (self.health.request_failed if blame else self.health.request_abandoned)()

    def end(self) -> None:
        if self._ended:
            return
        self._ended = True
        if not self._judged:
            self.health.request_abandoned()  # no verdict: a trial leaves its place to the next
        self.backend.finished(failed=self._failed)

    def __repr__(self) -> str:
        return f"Turn({self.backend.address}, judged={self._judged}, failed={self._failed})"


class Proxy:
    """A reverse proxy in front of ``backends``; ``start()`` listens, ``close()`` drains."""

    def __init__(self, backends: Sequence[BackendAddress], *, strategy: str = "round-robin",
                 tuning: Tuning = DEFAULTS, keepalive: int = CONNECTIONS,
                 status_path: str | None = STATUS_PATH, check_interval: float | None = None,
                 shutdown_timeout: float = SHUTDOWN_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if strategy not in BALANCERS:
            raise ValueError(f"strategy must be one of {', '.join(BALANCERS)}: {strategy!r}")
        self.tuning, self.strategy = tuning, strategy
        self.backends = [Backend(b.host, b.port, b.weight) for b in backends]
        self.health = {b: Health(tuning.max_fails, tuning.fail_timeout, clock,
                                 on_transition=functools.partial(self._heard, b))
                       for b in self.backends}
        self.balancer = BALANCERS[strategy](self.backends,
                                            available=lambda b: self.health[b].available)
        self.pools = {b: Pool(b.host, b.port, max_idle=keepalive,
                              idle_timeout=tuning.upstream_idle_timeout,
                              connect_timeout=tuning.connect_timeout) for b in self.backends}
        self.status_path = status_path.encode("ascii") if status_path else None
        self.check_interval = check_interval
        self.shutdown_timeout = shutdown_timeout
        self.requests = 0  # request heads read from clients
        self.answers: collections.Counter[int] = collections.Counter()  # ours, by status
        self.draining = False
        self._clients: dict[asyncio.Task, ClientConnection] = {}
        self._server: asyncio.Server | None = None
        self._checks: asyncio.Task | None = None
        self.address: tuple[str, int] = ("", 0)  # where it listens, once started

    # -- life cycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (0: a free port); the address bound."""
        self._server = await asyncio.start_server(self._serve_client, host, port)
        if self.check_interval:
            self._checks = asyncio.create_task(
                run_checks(self.health, self.tuning, self.check_interval), name="lab.lb checks")
        self.address = self._server.sockets[0].getsockname()[:2]
        return self.address

    async def close(self) -> None:
        """Stop accepting, let requests in flight finish (bounded), close everything."""
        if self._server is None:
            return
        self._server.close()  # no new clients from here on
        self.draining = True  # answers now say Connection: close
        for task, client in list(self._clients.items()):
            if client.idle:
                task.cancel()  # waiting for a request that will not be served
        if self._clients:
            _, late = await asyncio.wait(list(self._clients), timeout=self.shutdown_timeout)
            for task in late:
                task.cancel()  # still in flight after shutdown_timeout: cut
            if late:
                await asyncio.wait(late, timeout=2 * LINGER)  # their finally closes them
        if self._checks is not None:
            self._checks.cancel()
            await asyncio.wait([self._checks])  # wait, not await: our cancellation stays ours
        for pool in self.pools.values():
            await pool.close()
        await self._server.wait_closed()
        self._server = None

    # -- one client connection

    async def _serve_client(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        """The task asyncio starts for each client: recorded here until it ends."""
        client = ClientConnection(reader, writer, self.tuning)
        task = asyncio.current_task()
        self._clients[task] = client
        try:
            await self._converse(client)
        except asyncio.CancelledError:
            # Only close() cancels a client task, and it only waits for the task to end; a
            # handler that ends cancelled is logged as an error by asyncio 3.11's streams.
            pass
        finally:  # however it ended: close() waits only for the clients still recorded
            self._clients.pop(task, None)

    async def _converse(self, client: ClientConnection) -> None:
        """Requests and answers, in turn, until one side is done."""
        linger = False
        try:
            keep = True
            while keep and not self.draining:
                keep, linger = await self._serve_request(client)
        except ClientGone:
            pass  # it went away: nobody to answer
        except Exception:  # a bug; it costs this client its connection, and nobody else
            log.exception("client %s: unexpected error", client.peer)
        finally:  # each client connection is closed by its own task, however it ended
            await client.close(linger)

    async def _serve_request(self, client: ClientConnection) -> tuple[bool, bool]:
        """Read and answer one request: (keep the connection, linger on close)."""
        try:
            request = await client.next_request()
        except ProtocolError as exc:
            return self._refuse(client, exc.status, exc.message)
        except RequestTimeout as exc:
            return self._refuse(client, 408, str(exc))
        if request is None:
            return False, False
        self.requests += 1
        if (early := client.refusal()) is not None:
            return self._refuse(client, early.status, early.message)
        exchange = Exchange(client, request, self.tuning, lambda: self.draining)
        try:
            if self.status_path is not None and \
                    request.target.partition(b"?")[0] == self.status_path:
                return await self._answer_status(client, request)
            keep = await self._forward(exchange)
        except (ProtocolError, RequestTimeout) as exc:  # the client's body: bad, or too slow
            if exchange.answer_begun:
                return False, True
            return self._refuse(client, getattr(exc, "status", 408), str(exc))
        return keep, not exchange.body_read

    def _refuse(self, client: ClientConnection, code: int, detail: str) -> tuple[bool, bool]:
        self.answers[code] += 1
        client.write(status.error_answer(code, detail, close=True))
        return False, True  # close, after the client has read the answer

    # -- forwarding

    async def _forward(self, exchange: Exchange) -> bool:
        """Send the request to backends until one answers or the retry rules say stop."""
        tried: list[Backend] = []
        turn: Turn | None = None
        verdict: Verdict | None = None
        reached = False  # did any attempt get as far as sending the request?
        try:
            while verdict is None or verdict.next in (Next.NEXT_BACKEND, Next.SAME_BACKEND):
                if verdict is None or verdict.next is Next.NEXT_BACKEND:
                    backend = self.balancer.choose(exclude=tried)
                    if backend is None:
                        break
                    if turn is not None:
                        turn.end()
                    tried.append(backend)
                    turn = Turn(backend, self.health[backend])
                fresh = verdict is not None and verdict.next is Next.SAME_BACKEND
                try:
                    return await self._attempt(exchange, turn, fresh)
                except UpstreamFailure as exc:
                    verdict = retry.verdict(exc.failure, method=exchange.request.method,
                                            replayable=exchange.replayable, stale=exc.stale,
                                            answer_begun=exchange.answer_begun)
                    reached = reached or exc.failure.sent
                    if verdict.next is not Next.SAME_BACKEND:
                        turn.failed(verdict.blame)
                    log.warning("%s %s: backend %s: %s; %s", exchange.request.method.decode(),
                                exchange.request.target.decode(), turn.backend.address,
                                exc.detail, verdict.next.value)
        finally:
            if turn is not None:
                turn.end()  # once per turn, however the request ended (cancelled too)
        if verdict is not None and verdict.next is Next.CLOSE:
            return False  # the answer had begun: cutting the connection is all that is left
        # 503: no backend could be reached at all; 502/504: one took the request and failed.
        code = verdict.status if reached else 503
        keep = exchange.body_read and exchange.request.keep_alive and not self.draining
        self.answers[code] += 1
        exchange.client.write(status.error_answer(code, close=not keep))
        return keep

    async def _attempt(self, exchange: Exchange, turn: Turn, fresh: bool) -> bool:
        """One try on one backend; whether the client connection stays open."""
        pool = self.pools[turn.backend]
        conn = await pool.acquire(fresh=fresh)
        reuse = False
        try:
            exchange.send_head(conn, turn.backend.address)
            async with exchange.sending_body(conn):
                response = await exchange.answer_head(conn)
                turn.succeeded()  # an answer, whatever its status: the backend works
                keep = await exchange.relay(conn, response)
            reuse = exchange.body_sent
            return keep
        finally:  # the connection goes back to the pool only after a complete exchange
            pool.release(conn, reuse)

    # -- what the proxy answers itself

    async def _answer_status(self, client: ClientConnection,
                             request: Request) -> tuple[bool, bool]:
        while not isinstance(await client.next_body_event(), EndOfMessage):
            pass  # a body sent here is read and dropped
        keep = request.keep_alive and not self.draining
        if request.method in (b"GET", b"HEAD"):
            answer = status.json_answer(200, self.status_document(), close=not keep,
                                        head_only=request.method == b"HEAD")
        else:
            answer = status.json_answer(405, {"message": "Method not allowed"}, close=not keep,
                                        extra=((b"Allow", b"GET, HEAD"),))
        client.write(answer)
        return keep, False

    def status_document(self) -> dict:
        entries = [status.backend_entry(
            address=b.address, weight=b.weight, state=self.health[b].state.value,
            requests=b.requests, failures=b.failures, active=b.active,
            open_connections=self.pools[b].open, idle_connections=self.pools[b].idle,
            opened=self.pools[b].opened, reused=self.pools[b].reused) for b in self.backends]
        return status.document(strategy=self.strategy, clients=len(self._clients),
                               requests=self.requests, answers=self.answers, backends=entries)

    def _heard(self, backend: Backend, old: State, new: State, event: Event) -> None:
        log.warning("backend %s: %s -> %s (%s)", backend.address, old.value, new.value,
                    event.value)

    def __repr__(self) -> str:
        where = f"{self.address[0]}:{self.address[1]}" if self._server else "not listening"
        return (f"Proxy({where}, {self.strategy}, backends={len(self.backends)}, "
                f"clients={len(self._clients)}, draining={self.draining})")


@contextlib.asynccontextmanager
async def serve(backends: Sequence[BackendAddress], host: str = "127.0.0.1", port: int = 0,
                **options) -> AsyncIterator[Proxy]:
    """Run a proxy while the ``async with`` body runs; ``proxy.address`` says where."""
    proxy = Proxy(backends, **options)
    await proxy.start(host, port)
    try:
        yield proxy
    finally:
        await proxy.close()  # also on error or cancellation: no socket or task is left

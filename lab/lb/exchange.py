"""One request's trip through the proxy: its body streamed to a backend, the answer streamed back.

Both bodies are **streamed**: the proxy holds one piece at a time, never a
whole body, so a 1 MiB upload or a 1 MiB answer costs the same memory as a
small one, and the first bytes reach the other side at once. The two
directions run at the same time -- the request body in a task of its own
(the *pump*), the answer in the request's task -- because a backend may
answer before it has read the whole body (a 413, or a ``100 Continue`` that
the client waits for before it sends the body).

Streaming has a price that NGINX avoids by buffering (``proxy_request_buffering
on``, its default, reads the whole body before choosing a backend): once part
of a body has gone to a backend, it is no longer here to send to the next one.
So the pump *keeps* what it sends while the body stays within ``REPLAY_LIMIT``
(64 KiB: every request of the Task API); such a request can be retried in full.
A larger one is sent on, not kept, and is never retried once a byte of it has
gone (``retry.py``). The pump writes the body as the backend expects it:
re-chunked if the client chunked it (``rewrite.py``). The answer is written
in as few writes as its arrival allows: the head and the pieces of body
already received go out together (one ``send()`` for a small answer, where
a write per piece cost a system call each), and are flushed before any wait.

Timeouts: waiting for the answer is bounded by ``read_timeout`` only once the
whole request has been written; while the body is still on its way, the
pump's own bounds apply (the client's ``read_timeout`` between reads, the
backend's ``read_timeout`` to take each piece), so a slow upload is not
mistaken for a slow backend.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from lab.lb import rewrite
from lab.lb.client import ClientConnection
from lab.lb.messages import (
    LAST_CHUNK,
    EndOfMessage,
    Framing,
    Request,
    Response,
    encode_chunk,
    encode_head,
)
from lab.lb.retry import Failure
from lab.lb.tuning import Tuning
from lab.lb.upstream import BackendConnection, UpstreamFailure

REPLAY_LIMIT = 64 * 1024  # bytes of request body kept so that the request can be sent again
WRITE_BATCH = 64 * 1024  # answer bytes already here are joined into one write until past this


class Exchange:
    """One request and its answer, over however many attempts the retry rules allow."""

    def __init__(self, client: ClientConnection, request: Request, tuning: Tuning,
                 draining: Callable[[], bool]) -> None:
        self.client, self.request, self.tuning = client, request, tuning
        self._draining = draining  # the proxy is shutting down: close after this answer
        self._chunked = request.framing is Framing.CHUNKED
        self._kept: list[bytes] | None = []  # the body as sent on, while within REPLAY_LIMIT
        self._kept_size = 0
        self.body_read = False  # the client's whole body has been read
        self.body_sent = False  # ... and written, whole, to the current backend connection
        self.answer_begun = False  # bytes of an answer have been written to the client

    @property
    def replayable(self) -> bool:
        """Can the request body be sent again, in full, to another backend?"""
        return self._kept is not None

    # -- the request: head, then the body in a task of its own

    def send_head(self, conn: BackendConnection, backend: str) -> None:
        head, _ = rewrite.request_for_backend(self.request, client=self.client.ip,
                                              backend=backend)
        conn.begin(self.request.method)
        conn.write(encode_head(head))
        self.body_sent = False  # now, not in the pump: it may not have run by the answer

    @contextlib.asynccontextmanager
    async def sending_body(self, conn: BackendConnection) -> AsyncIterator[None]:
        """Run the pump while the answer is read; it never outlives the attempt."""
        if self.request.framing is Framing.EMPTY and (self.body_read or self.client.take_end()):
            self.body_read = self.body_sent = True  # no body: nothing to pump, no task
            yield
            return
        pump = asyncio.create_task(self._pump(conn), name=f"lab.lb body to {conn!r}")
        try:
            yield
        finally:
            pump.cancel()  # a no-op if the body is all sent; else the answer came first
            await asyncio.wait([pump])  # wait, not await: our own cancellation stays ours

    async def _pump(self, conn: BackendConnection) -> None:
        try:
            await self._send_body(conn)
        except asyncio.CancelledError:
            raise  # the attempt is over: the context manager above cancelled us
        except Exception as exc:  # client gone or slow, bad chunk, backend not reading
            conn.interrupt(exc)  # the answer's reader raises it: the attempt ends there

    async def _send_body(self, conn: BackendConnection) -> None:
        assert self.replayable or not self._kept_size, "a body sent on cannot be sent again"
        if self._kept:
            conn.write(b"".join(self._kept))  # a retry: what the last backend was sent
        while not self.body_read:
            event = await self.client.next_body_event()
            if isinstance(event, EndOfMessage):
                self.body_read = True
                wire = LAST_CHUNK if self._chunked else b""
            else:
                wire = encode_chunk(event.data) if self._chunked else event.data
            self._keep(wire)
            if wire:
                conn.write(wire)
            if not self.body_read:
                await conn.drain(self.tuning.read_timeout)
        self.body_sent = True  # set before the drain: the backend may answer meanwhile
        await conn.drain(self.tuning.read_timeout)

    def _keep(self, wire: bytes) -> None:
        if self._kept is None:
            return
        self._kept_size += len(wire)
        if self._kept_size > REPLAY_LIMIT:
            self._kept = None  # too large to keep: from now on this request cannot be retried
        else:
            self._kept.append(wire)

    # -- the answer

    async def answer_head(self, conn: BackendConnection) -> Response:
        """The backend's final answer head; interim (1xx) ones are passed to the client."""
        while True:
            head = await self._next(conn)
            assert isinstance(head, Response), head
            if head.status >= 200:
                return head
            interim, _, _ = rewrite.answer_for_client(head, self.request, keep_alive=True)
            if interim is not None:
                self.client.write(encode_head(interim))  # e.g. 100 Continue: the body may go
            assert isinstance(await self._next(conn), EndOfMessage)

    async def relay(self, conn: BackendConnection, response: Response) -> bool:
        """Stream the answer to the client; whether the client connection stays open."""
        # An answer before the whole body was read: the client may still be sending it.
        keep = self.request.keep_alive and self.body_sent and not self._draining()
        head, chunked, keep = rewrite.answer_for_client(response, self.request, keep)
        assert head is not None
        self.answer_begun = True  # from here on, nothing can be retried
        # What has already arrived goes out in one write, head and body together: a small
        # answer costs one send() to the client, not one per piece. Held bytes are written
        # before any wait, so nothing reaches the client later than piece by piece.
        held = [encode_head(head)]
        held_size = 0
        while True:
            if not conn.ready or held_size > WRITE_BATCH:
                self.client.write(b"".join(held))
                held.clear()
                held_size = 0
                if self.client.needs_drain():
                    await self.client.drain()  # a slow client slows the backend, not our memory
            event = await self._next(conn)
            if isinstance(event, EndOfMessage):
                break
            held.append(encode_chunk(event.data) if chunked else event.data)
            held_size += len(event.data)
        if chunked:
            held.append(LAST_CHUNK)
        if held:
            self.client.write(b"".join(held))
        return keep

    async def _next(self, conn: BackendConnection):
        """The next event of the answer, with ``read_timeout`` once the request is all sent."""
        while True:
            try:
                return await conn.next_event(self.tuning.read_timeout)
            except UpstreamFailure as exc:
                if exc.failure is not Failure.TIMEOUT or self.body_sent:
                    raise
                # The body is still on its way: the pump's own timeouts bound it.

    def __repr__(self) -> str:
        kept = "kept" if self.replayable else "not kept"
        return (f"Exchange({self.request.method.decode()} {self.request.target.decode()}, "
                f"body_read={self.body_read}, body_sent={self.body_sent}, body {kept}, "
                f"answer_begun={self.answer_begun})")

"""A client connection to the proxy: a ``RequestFramer`` fed from a stream, under deadlines.

The client side is where a proxy meets the open Internet, so every wait on
the client is bounded, with NGINX's timeouts (values in ``tuning.Tuning``):

=================  ==============================================  ==================
wait               bound                                           NGINX
=================  ==============================================  ==================
next request       ``idle_timeout`` until its first byte; then      keepalive_timeout
                   silence is a close, not an error
request head       ``header_timeout`` for the *whole* head, from    client_header_timeout
                   the connection's start or the first byte: a
                   client trickling a byte at a time is cut (408)
request body       ``read_timeout`` between two reads (408)         client_body_timeout
writing an answer  ``read_timeout`` for the client to take bytes    send_timeout
=================  ==============================================  ==================

Streams suit this side: one task per client reads when it wants the next
event. (The backend side is a protocol instead, for its idle pool; see
``pool.py``.) Bytes go to the framer as they arrive; its events queue up
until asked for, so pipelined requests are served one after another, and a
framing error is raised only after the complete events before it.

Closing after an error is a **lingering close**: the answer is written, our
side is shut for writing, and what the client still sends is read and
dropped for up to ``LINGER`` seconds. Closing at once, with unread bytes in
the socket, would make the kernel send a reset, which can destroy the answer
before the client reads it (NGINX's ``lingering_close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

from lab.lb.framer import RequestFramer
from lab.lb.messages import Data, EndOfMessage, Event, ProtocolError, Request
from lab.lb.tuning import Tuning

READ_SIZE = 64 * 1024  # bytes asked of the socket per read
LINGER = 2.0  # seconds of reading and dropping a client's bytes after an error answer


class ClientGone(Exception):
    """The client closed or reset its connection, or stopped reading: nothing to answer."""


class RequestTimeout(Exception):
    """The request's head or body did not arrive in time: answer 408 if still possible."""


class ClientConnection:
    """One client: its framer, its queued events, its deadlines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 tuning: Tuning) -> None:
        self.reader, self.writer, self.tuning = reader, writer, tuning
        self.framer = RequestFramer(max_head_size=tuning.max_head_size,
                                    max_line_size=tuning.header_buffer_size,
                                    max_body_size=tuning.max_body_size)
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.ip = peer[0]
        self.peer = f"{peer[0]}:{peer[1]}"
        self.started = time.monotonic()
        self.requests = 0
        self.idle = True  # waiting for a request's first byte: closed at once on shutdown
        self._events: deque[Event] = deque()
        self._end: BaseException | None = None  # ProtocolError or ClientGone, after the events

    async def next_request(self) -> Request | None:
        """The next request's head; None when the client is done (closed, or idle too long).

        Raises ``ProtocolError`` (answer its status) or ``RequestTimeout``.
        """
        self.idle = True
        if not self._events and self._end is None:
            # The first request's head is due header_timeout after the connection opened;
            # a later one may come idle_timeout after the last, its head header_timeout later.
            wait = (time.monotonic() + self.tuning.idle_timeout if self.requests
                    else self.started + self.tuning.header_timeout)
            try:
                await self._read(wait)
            except TimeoutError:
                return None  # not a byte of a request: just close, as NGINX does
        self.idle = False
        began = self.started if not self.requests else time.monotonic()
        deadline = began + self.tuning.header_timeout
        while not self._events:
            if isinstance(self._end, ClientGone):
                return None  # it went away, with or without part of a head
            if self._end is not None:
                raise self._end
            try:
                await self._read(deadline)
            except TimeoutError:
                raise RequestTimeout(f"request head not received within "
                                     f"{self.tuning.header_timeout:g} s") from None
        event = self._events.popleft()
        assert isinstance(event, Request), event
        self.requests += 1
        return event

    def refusal(self) -> ProtocolError | None:
        """An error that comes right after the head just read (a Content-Length over the
        limit): the request must be refused before any backend sees it."""
        return self._end if not self._events and isinstance(self._end, ProtocolError) else None

    async def next_body_event(self) -> Data | EndOfMessage:
        """The next piece of the current request's body. Raises ``ProtocolError``,
        ``RequestTimeout`` or ``ClientGone``."""
        while not self._events:
            if self._end is not None:
                raise self._end
            try:
                await self._read(time.monotonic() + self.tuning.read_timeout)
            except TimeoutError:
                raise RequestTimeout(f"request body stalled for {self.tuning.read_timeout:g} "
                                     "s") from None
        event = self._events.popleft()
        assert isinstance(event, Data | EndOfMessage), event
        return event

    def take_end(self) -> bool:
        """Take the request's end if it is already here (a request with no body: the framer
        gave its end with its head), so that no task need wait for it."""
        if self._events and isinstance(self._events[0], EndOfMessage):
            self._events.popleft()
            return True
        return False

    async def _read(self, deadline: float) -> None:
        """One read, fed to the framer; the new events are queued."""
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            try:
                data = await self.reader.read(READ_SIZE)
            except ConnectionError:
                data = b""  # a reset: the same as a close for us
        try:
            events = self.framer.feed(data) if data else self.framer.feed_eof()
        except ProtocolError as exc:
            events = exc.events
            self._end = ClientGone("closed mid-request") if not data else exc
        else:
            if not data:
                self._end = ClientGone("closed")
        self._events.extend(events)

    def write(self, data: bytes) -> None:
        if self.writer.transport.is_closing():
            raise ClientGone("closed while being answered")
        self.writer.write(data)

    async def drain(self) -> None:
        """Wait until the client takes what was written, at most ``read_timeout``."""
        try:
            async with asyncio.timeout(self.tuning.read_timeout):
                await self.writer.drain()
        except (ConnectionError, TimeoutError):
            raise ClientGone("stopped reading its answer") from None

    def needs_drain(self) -> bool:
        """Is the write buffer above its high-water mark? (Skip the await when it is not.)"""
        transport = self.writer.transport
        return transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]

    async def close(self, linger: bool = False) -> None:
        """Close the connection; ``linger``: first let the client read what was written."""
        writer = self.writer
        try:
            if linger and not writer.transport.is_closing() and writer.can_write_eof():
                writer.write_eof()  # the client reads the answer, then an end of stream
                async with asyncio.timeout(LINGER):
                    while await self.reader.read(READ_SIZE):
                        pass  # dropped: the request was refused
        except (ConnectionError, TimeoutError):
            pass  # it reset, or took too long: close regardless
        finally:  # whatever happened above, the socket is released
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(LINGER):
                    await writer.wait_closed()

    def __repr__(self) -> str:
        state = "idle" if self.idle else "busy"
        return (f"ClientConnection({self.peer}, {state}, requests={self.requests}, "
                f"queued={len(self._events)}, {self.framer!r})")

"""One TCP connection to a backend: an ``asyncio.Protocol`` that feeds a ``ResponseFramer``.

Why a protocol and not a pair of streams: a connection waiting in the
keep-alive pool (``pool.py``) has nobody reading it, yet it must learn at
once when the backend closes it, or sends bytes no request asked for (a
server may write ``408`` before it closes an idle connection). A protocol is
told by asyncio the moment either happens, and the connection then closes
itself and leaves the pool on the spot; NGINX's keepalive close handler does
the same. (The client side uses streams: ``client.py``.)

Received bytes go straight into the framer; its events wait in a queue for
``next_event``. When that queue holds more than ``READ_HIGH_WATER`` bytes of
body (the client reads more slowly than the backend writes), reading from the
backend is paused until the queue drains below ``READ_LOW_WATER``: the
backpressure reaches the backend through TCP, and memory stays bounded.
Writes are bounded the other way: ``drain`` waits while asyncio's write
buffer is above its high-water mark.

Every failure is an ``UpstreamFailure`` carrying a ``retry.Failure``: what
``retry.verdict`` needs. ``stale`` marks a connection that had carried a
request before and closed before any byte of the next answer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from lab.lb.framer import ResponseFramer
from lab.lb.messages import Data, Event, ProtocolError
from lab.lb.retry import Failure

READ_HIGH_WATER = 256 * 1024  # bytes of answer queued: pause reading the backend above this
READ_LOW_WATER = 64 * 1024  # and resume below this


class UpstreamFailure(Exception):
    """An attempt on a backend failed; ``stale``: on a reused connection, before any answer."""

    def __init__(self, failure: Failure, detail: str, stale: bool = False) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail
        self.stale = stale

    def __repr__(self) -> str:
        return f"UpstreamFailure({self.failure.name}, {self.detail!r}, stale={self.stale})"


class BackendConnection(asyncio.Protocol):
    """One TCP connection to a backend, carrying one request at a time."""

    def __init__(self, address: str, on_lost: Callable[[BackendConnection], None]) -> None:
        self.address = address
        self._on_lost = on_lost  # the pool's: forget this connection
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self.framer = ResponseFramer()
        self._events: deque[Event] = deque()
        self._queued = 0  # bytes of Data in _events
        self._error: BaseException | None = None  # raised by next_event once _events is empty
        self._waiter: asyncio.Future | None = None  # next_event waits on it
        self._drained: asyncio.Future | None = None  # drain waits on it while writing is paused
        self._idle_timer: asyncio.TimerHandle | None = None  # set while pooled
        self.requests = 0  # requests sent on this connection; more than 1: it was reused
        self.answer_bytes = 0  # bytes received of the current answer
        self.closed = self._loop.create_future()  # done once the connection is lost

    @property
    def pooled(self) -> bool:
        return self._idle_timer is not None

    @property
    def queued(self) -> int:
        """Bytes of answer received and not yet taken by ``next_event``."""
        return self._queued

    @property
    def ready(self) -> bool:
        """Is an event here, that ``next_event`` returns without waiting?"""
        return bool(self._events)

    @property
    def reusable(self) -> bool:
        """May it carry another request? The answer is over, and nothing says close."""
        return (self._error is None and self._transport is not None
                and not self._transport.is_closing() and self.framer.idle
                and self.framer.keep_alive)

    # -- asyncio calls these

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self.pooled:
            self.abort()  # bytes no request asked for: this connection is not to be trusted
            return
        self.answer_bytes += len(data)
        try:
            events = self.framer.feed(data)
        except ProtocolError as exc:  # not HTTP: keep the events before it, then fail
            events = exc.events
            self._fail(UpstreamFailure(Failure.INVALID, exc.message))
            self._transport.abort()
        self._push(events)

    def eof_received(self) -> bool:
        if not self.pooled:
            try:
                self._push(self.framer.feed_eof())  # ends an answer that runs until the close
            except ProtocolError as exc:
                self._push(exc.events)
                self._fail(self._closed_failure(exc.message))
        return False  # close our side too: the transport then calls connection_lost

    def connection_lost(self, exc: Exception | None) -> None:
        reason = "connection closed" if exc is None else f"connection lost: {exc}"
        self._fail(self._closed_failure(reason))
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)  # drain() then finds _error
        self.unpark()
        self._on_lost(self)
        self.closed.set_result(None)

    def pause_writing(self) -> None:
        self._drained = self._loop.create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    # -- the proxy calls these

    def begin(self, method: bytes) -> None:
        """A request with ``method`` is about to be written."""
        assert not self.pooled and self._error is None, self
        self.framer.expect(method)
        self.requests += 1
        self.answer_bytes = 0

    def write(self, data: bytes) -> None:
        """Queue bytes to send (no wait); a closed connection raises its failure."""
        if self._error is not None:
            raise self._error
        self._transport.write(data)

    async def drain(self, timeout: float) -> None:
        """Wait until the backend has taken what was written (``proxy_send_timeout``)."""
        if self._drained is not None:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self._drained)  # shield: resume_writing still finds it
            except TimeoutError:
                raise UpstreamFailure(Failure.TIMEOUT, "the backend did not read the "
                                      f"request within {timeout:g} s") from None
        if self._error is not None:
            raise self._error

    async def next_event(self, timeout: float) -> Event:
        """The next event of the answer, waiting at most ``timeout`` seconds for bytes."""
        if not self._events and self._error is None:
            self._waiter = waiter = self._loop.create_future()
            # A timer on our own future, not asyncio.timeout: nothing to cancel but the
            # future, and this wait comes once or more per request.
            timer = self._loop.call_later(timeout, _time_out, waiter)
            try:
                await waiter
            except TimeoutError:
                raise UpstreamFailure(Failure.TIMEOUT, "no answer within "
                                      f"{timeout:g} s") from None
            finally:
                timer.cancel()
                self._waiter = None  # whether woken, timed out or cancelled
        if not self._events:
            raise self._error
        event = self._events.popleft()
        if isinstance(event, Data):
            self._queued -= len(event.data)
            if self._queued < READ_LOW_WATER and not self._transport.is_closing():
                self._transport.resume_reading()  # a no-op unless it was paused
        return event

    def interrupt(self, exc: BaseException) -> None:
        """Make ``next_event`` raise ``exc`` (the request's sender failed: the attempt is over)."""
        self._fail(exc)

    def close(self) -> None:
        self.unpark()
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        self.unpark()
        if self._transport is not None:
            self._transport.abort()

    # -- the pool calls these

    def park(self, idle_timeout: float, on_expire: Callable[[BackendConnection], None]) -> None:
        """Idle in a pool: ``on_expire(self)`` after ``idle_timeout`` unless taken first."""
        self._idle_timer = self._loop.call_later(idle_timeout, on_expire, self)

    def unpark(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    # -- inside

    def _push(self, events: list[Event]) -> None:
        if not events:
            return
        self._events.extend(events)
        self._queued += sum(len(e.data) for e in events if isinstance(e, Data))
        if self._queued > READ_HIGH_WATER and not self._transport.is_closing():
            self._transport.pause_reading()  # the client is slower than the backend
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:  # the first cause is the one reported
            self._error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _closed_failure(self, detail: str) -> UpstreamFailure:
        stale = self.requests > 1 and self.answer_bytes == 0
        return UpstreamFailure(Failure.CLOSED, detail, stale=stale)

    def __repr__(self) -> str:
        state = ("closed" if self.closed.done() else "idle" if self.pooled
                 else "failed" if self._error else "busy")
        return (f"BackendConnection({self.address}, {state}, requests={self.requests}, "
                f"queued={self.queued}, {self.framer!r})")


def _time_out(waiter: asyncio.Future) -> None:
    """``next_event``'s timer: the wait ends with a ``TimeoutError``, unless it is over."""
    if not waiter.done():
        waiter.set_exception(TimeoutError())

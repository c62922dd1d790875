"""A sans-IO HTTP/1.1 framer: bytes in, message events out (events: ``messages.py``).

Theory of operation. HTTP/1.1 cuts a byte stream into messages, each a head
and a body whose end the head declares. ``RequestFramer`` reads what a client
sends the proxy, ``ResponseFramer`` what a backend answers; both are fed the
bytes that arrived and return the events now complete, and never touch a
socket. A framer is a state machine whose states each have a reader::

    HEAD --head read--> BODY | CHUNK_SIZE | UNTIL_CLOSE, or straight to the end
    CHUNK_SIZE -> CHUNK_DATA -> CHUNK_END -> CHUNK_SIZE ... size 0 -> TRAILERS
    end of message -> HEAD        keep-alive: the next bytes are the next message
                   -> MUST_CLOSE  it said close: later bytes are ignored (RFC 9112 9.6)

``feed`` runs the readers (``_READERS``) until none makes progress. What a
head means (its lines, its framing, the request-smuggling defences) is
``heads.py``; how lines are cut and bounded is ``buffer.py``.

Invariants. Each head line is checked as soon as its CRLF is in, so errors
come in stream order: the same bytes give the same events and error however
the reads split them (only ``Data`` pieces differ in size). A head that is
here whole and within every limit is cut into lines in one go (the fast path,
``ReceiveBuffer.head_lines``), then checked line by line in the same order;
any other is read a line at a time, so both paths give the same result.
Between feeds the buffer holds at most one incomplete line: body bytes go out
as ``Data`` at once, never accumulated. After a ``ProtocolError`` the framer
is dead.

Limits: a head line longer than ``max_line_size`` (a request line: 414, any
other line: 431), a head longer than ``max_head_size`` (431), a request body
longer than ``max_body_size`` (413, NGINX's ``client_max_body_size``; refused
as soon as a length or a chunk size announces it). Every error from a
``ResponseFramer`` carries 502, the proxy's answer when a backend misbehaves.
Not handled: trailers are checked, then dropped; a 1xx response is passed on
as a message of its own (head, ``EndOfMessage``), before the final one.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from enum import Enum

from lab.lb import heads
from lab.lb.buffer import ReceiveBuffer
from lab.lb.messages import (
    FIELD_VALUE,
    Data,
    EndOfMessage,
    Event,
    Framing,
    Headers,
    ProtocolError,
    Request,
    Response,
)

MAX_HEAD_SIZE = 16 * 1024  # the whole head: start line, fields, every CRLF
MAX_LINE_SIZE = 8 * 1024  # one line of a head; NGINX's large_client_header_buffers size

_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")  # a chunk size; 15 digits is far beyond any real one


class _State(Enum):
    HEAD = "head"  # reading a start line and header fields
    BODY = "body"  # Content-Length bytes still to come (_remaining)
    CHUNK_SIZE = "chunk-size"  # reading a chunk-size line
    CHUNK_DATA = "chunk-data"  # a chunk's bytes still to come (_remaining)
    CHUNK_END = "chunk-end"  # the CRLF after a chunk's data
    TRAILERS = "trailers"  # trailer fields after the last chunk, up to an empty line
    UNTIL_CLOSE = "until-close"  # every byte is body until feed_eof()
    MUST_CLOSE = "must-close"  # a message said close: nothing more is read
    CLOSED = "closed"  # feed_eof() was called


class _Framer(ABC):
    """What both directions share; a subclass parses its own start line and head."""

    _error_status: int | None = None  # if set, replaces every error's status
    _start_too_long: tuple[int, str]  # the status and message for an overlong start line
    _skip_empty_lines = False

    def __init__(self, max_head_size: int = MAX_HEAD_SIZE, max_line_size: int = MAX_LINE_SIZE,
                 max_body_size: int | None = None) -> None:
        for name, value in (("max_head_size", max_head_size), ("max_line_size", max_line_size),
                            ("max_body_size", 1 if max_body_size is None else max_body_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if max_line_size > max_head_size - 4:  # room for the line's CRLF and the final one
            raise ValueError("max_line_size must be at least 4 bytes below max_head_size")
        self.max_head_size = max_head_size
        self.max_line_size = max_line_size
        self.max_body_size = max_body_size
        self._buf = ReceiveBuffer()
        self._state = _State.HEAD
        self._start: tuple | None = None  # the parsed start line, once read
        self._fields: list[tuple[bytes, bytes]] = []
        self._head_size = 0  # bytes of the head (or of the trailer section) read so far
        self._remaining = 0  # bytes left in the body or in the current chunk
        self._body_size = 0  # body bytes announced so far, for max_body_size
        self._keep_alive = True  # of the message being read
        self._error: ProtocolError | None = None

    @property
    def keep_alive(self) -> bool:
        """False once this connection can carry no further message."""
        return self._keep_alive and self._state not in (_State.MUST_CLOSE, _State.CLOSED)

    @property
    def idle(self) -> bool:
        """Between messages, with no byte of the next one received."""
        return self._state is _State.HEAD and self._start is None and not self._buf

    def feed(self, data: bytes) -> list[Event]:
        """Add received bytes; return the events they complete, in order."""
        if self._error is not None:
            raise self._error
        if self._state is _State.CLOSED:
            raise ValueError("feed() after feed_eof()")
        self._buf.append(data)
        events: list[Event] = []
        try:
            while _READERS[self._state](self, events):
                pass
        except ProtocolError as error:
            self._die(error, events)
        self._buf.compact()
        assert len(self._buf) < self.max_head_size, "only an incomplete line is ever kept"
        return events

    def feed_eof(self) -> list[Event]:
        """The peer closed its side: end a body that runs until the close, or complain."""
        if self._error is not None:
            raise self._error
        events: list[Event] = []
        if self._state is _State.UNTIL_CLOSE:
            self._end_message(events)
        elif not (self.idle or self._state in (_State.MUST_CLOSE, _State.CLOSED)):
            began = self._start is not None or self._buf or self._state is not _State.HEAD
            where = "in the middle of a message" if began else "before the response began"
            self._die(ProtocolError(400, f"connection closed {where}"), events)
        self._state = _State.CLOSED
        return events

    def _die(self, error: ProtocolError, events: list[Event]) -> None:
        status = self._error_status or error.status
        self._error = ProtocolError(status, error.message)  # what later feeds raise
        self._buf.clear()
        raise ProtocolError(status, error.message, events) from None

    # -- the readers: each reads what it can and says whether it made progress

    def _read_head(self, events: list[Event]) -> bool:
        if not self._buf:
            return False  # the usual end of a feed: the message is over, nothing follows
        if self._start is None:
            self._check_expected()
            lines = self._buf.head_lines(self.max_head_size, self.max_line_size)
            if lines is not None:  # the whole head is here, within every limit: in one go
                self._start = self._parse_start(lines[0])
                self._fields = [heads.parse_field(line) for line in lines[1:]]
                self._end_head(events)
                return True
            line = self._buf.line(self.max_line_size, *self._start_too_long)
            if line is None:
                return False
            if not line and self._skip_empty_lines:
                return True
            self._start = self._parse_start(line)
            self._head_size = len(line) + 2
            return True
        line = self._head_line("header")
        if line is None:
            return False
        if line:
            self._fields.append(heads.parse_field(line))
            return True
        self._end_head(events)
        return True

    def _end_head(self, events: list[Event]) -> None:
        """The head's empty line was read: emit the head, and read its body next."""
        head, length = self._make_head(self._start, tuple(self._fields))
        self._start, self._fields = None, []
        self._keep_alive = head.keep_alive
        events.append(head)
        if head.framing is Framing.CHUNKED:
            self._state = _State.CHUNK_SIZE
        elif head.framing is Framing.UNTIL_CLOSE:
            self._state = _State.UNTIL_CLOSE
        elif length:
            self._count_body(length)
            self._remaining = length
            self._state = _State.BODY
        else:
            self._end_message(events)

    def _read_chunk_size(self, events: list[Event]) -> bool:
        line = self._buf.line(self.max_line_size, 400, "chunk size line too long")
        if line is None:
            return False
        size, semicolon, extensions = line.partition(b";")  # extensions are read and ignored
        size = size.rstrip(b" \t")  # RFC 9112 7.1.1 allows whitespace before an extension
        if not _HEX.fullmatch(size) or (semicolon and not FIELD_VALUE.fullmatch(extensions)):
            raise ProtocolError(400, "malformed chunk size line")
        self._remaining = int(size, 16)
        if self._remaining:
            self._count_body(self._remaining)
            self._state = _State.CHUNK_DATA
        else:
            self._state = _State.TRAILERS
            self._head_size = 0  # the trailer section has a limit of its own
        return True

    def _read_chunk_end(self, events: list[Event]) -> bool:
        if not self._buf.take_crlf():
            return False
        self._state = _State.CHUNK_SIZE
        return True

    def _read_trailers(self, events: list[Event]) -> bool:
        line = self._head_line("trailer")
        if line is None:
            return False
        if line:
            heads.parse_field(line)  # checked, then dropped
        else:
            self._end_message(events)
        return True

    def _read_until_close(self, events: list[Event]) -> bool:
        if self._buf:
            events.append(Data(self._buf.take(len(self._buf))))
        return False

    def _discard(self, events: list[Event]) -> bool:
        self._buf.take(len(self._buf))  # after a "close" message, nothing is processed
        return False

    def _read_data(self, events: list[Event]) -> bool:
        """BODY and CHUNK_DATA: pass on what is here of the ``_remaining`` bytes."""
        data = self._buf.take(self._remaining)
        if not data:
            return False
        events.append(Data(data))
        self._remaining -= len(data)
        if not self._remaining:
            if self._state is _State.CHUNK_DATA:
                self._state = _State.CHUNK_END
            else:
                self._end_message(events)
        return True

    # -- helpers

    def _end_message(self, events: list[Event]) -> None:
        events.append(EndOfMessage())
        self._state = _State.HEAD if self._keep_alive else _State.MUST_CLOSE
        self._body_size = 0

    def _head_line(self, section: str) -> bytes | None:
        """The next header or trailer line, within the line limit and the section's."""
        left = self.max_head_size - self._head_size - 2  # what the section can still take
        if self.max_line_size < left:
            line = self._buf.line(self.max_line_size, 431, f"{section} line too long")
        else:
            line = self._buf.line(left, 431, f"{section} section too large")
        if line is not None:
            self._head_size += len(line) + 2
        return line

    def _count_body(self, size: int) -> None:
        self._body_size += size
        if self.max_body_size is not None and self._body_size > self.max_body_size:
            raise ProtocolError(413, "request body too large")

    def _check_expected(self) -> None:  # noqa: B027 -- a hook; requests expect nothing
        """Called before a start line is read; the response side insists on a request."""

    _parse_start: Callable[[bytes], tuple]  # a start line -> its parts (see heads.py)

    @abstractmethod
    def _make_head(self, start: tuple, headers: Headers) -> tuple[Request | Response, int]:
        """The head event of a start line and its fields, and the body's length if known."""

    def __repr__(self) -> str:
        state = "failed" if self._error else self._state.value
        return (f"{type(self).__name__}(state={state}, buffered={len(self._buf)}, "
                f"keep_alive={self.keep_alive})")


class RequestFramer(_Framer):
    """Frames the requests a client sends. Errors carry 400, 413, 414, 431, 501 or 505;
    answer with that status and close the connection."""

    _start_too_long = (414, "request line too long")
    _skip_empty_lines = True  # RFC 9112 2.2: a client may send a stray CRLF after a body

    _parse_start = staticmethod(heads.parse_request_line)

    def _make_head(self, start: tuple, headers: Headers) -> tuple[Request, int]:
        method, target, version = start
        framing, length = heads.request_framing(method, version, headers)
        return Request(method, target, headers, version, framing), length


class ResponseFramer(_Framer):
    """Frames a backend's responses; call ``expect(method)`` for each request sent.

    Every error carries 502. ``feed_eof()`` on a connection that was awaiting a
    response and got no byte of it says "before the response began": on a
    reused keep-alive connection that is the backend closing it as the request
    went out, and the request may be sent again on a fresh one.
    """

    _error_status = 502
    _start_too_long = (502, "status line too long")

    def __init__(self, max_head_size: int = MAX_HEAD_SIZE,
                 max_line_size: int = MAX_LINE_SIZE) -> None:
        super().__init__(max_head_size, max_line_size)
        self._expected: deque[bytes] = deque()  # methods of the requests not answered yet

    def expect(self, method: bytes) -> None:
        """A request with this method was sent: its response comes next, in order. Its
        method matters: the answer to a HEAD has no body, whatever its headers say."""
        self._expected.append(method)

    @property
    def idle(self) -> bool:
        """No response awaited and no byte received: the connection may go back to a pool."""
        return super().idle and not self._expected

    def _check_expected(self) -> None:
        if not self._expected and self._buf:
            raise ProtocolError(502, "bytes from the backend with no request outstanding")

    _parse_start = staticmethod(heads.parse_status_line)

    def _make_head(self, start: tuple, headers: Headers) -> tuple[Response, int]:
        status, reason, version = start
        framing, length = heads.response_framing(self._expected[0], status, version, headers)
        if status >= 200:
            self._expected.popleft()  # the final answer; 1xx ones come before it
        return Response(status, headers, reason, version, framing), length


_READERS: dict[_State, Callable[[_Framer, list[Event]], bool]] = {
    _State.HEAD: _Framer._read_head,
    _State.BODY: _Framer._read_data,
    _State.CHUNK_SIZE: _Framer._read_chunk_size,
    _State.CHUNK_DATA: _Framer._read_data,
    _State.CHUNK_END: _Framer._read_chunk_end,
    _State.TRAILERS: _Framer._read_trailers,
    _State.UNTIL_CLOSE: _Framer._read_until_close,
    _State.MUST_CLOSE: _Framer._discard,
}

"""RESP2, the Redis wire protocol: a sans-IO request parser (replies: ``replies.py``).

Theory of operation. A client sends commands as *multibulk* frames -- an array
of binary-safe strings, each prefixed by its length::

    *3\\r\\n$3\\r\\nSET\\r\\n$1\\r\\nk\\r\\n$5\\r\\nhello\\r\\n        SET k hello

or, when a human types into telnet, as an *inline* command: one line, words
split on spaces (``PING\\r\\n``). TCP gives no framing of its own, so one read
may hold half a frame, or a hundred frames (pipelining). ``RequestParser`` is
fed whatever bytes arrived and returns every command now complete; it never
touches a socket, so tests feed it bytes and a server wires it to any loop.

How it stays fast (this is the hot path of the throughput benchmark): each
``feed`` walks *one* buffer with an index, finding line ends with
``bytes.find(b"\\r\\n", pos)`` and cutting arguments out with one slice each;
a small header such as ``$3`` is checked and converted by one dict lookup.
Bytes left over at the end are kept as one slice, once per feed. While a
large bulk string is still arriving, new reads are only appended to a list
and joined once the declared length is there: no copying per read. In front
of that general loop sits a fast path, ``_simple_frames``: one C-level
``split`` of a read full of small pipelined commands, checked frame by frame,
which halves the cost per command (see its docstring for why the check is
enough); anything unusual falls through to the general loop.

Invariants:

* the parser remembers where it is inside a multibulk frame (``_args``,
  ``_remaining``, ``_bulk_len``): a completed argument is never parsed twice;
* ``_chunks`` holds only bytes not parsed yet; ``buffered`` is their length;
* a declared length over a limit is refused as soon as its header line is
  read, before any byte of the payload is buffered: a client cannot make the
  server reserve 512 MiB by *announcing* 512 MiB;
* after a ``ProtocolError`` the parser is dead: every later ``feed`` raises the
  same error (the server closes the connection anyway, as Redis does).

What Redis does differently: it also refuses a client whose unparsed input
passes ``client-query-buffer-limit`` (1 GiB); it skips the two bytes after a
bulk payload without looking at them, where this parser insists they are
``\\r\\n``; it accepts an inline line of any length once its newline has
arrived, where this parser applies ``max_inline_len`` to every line.
Not handled: RESP3 requests (there are none: RESP3 changes only the replies).
"""

from __future__ import annotations

from typing import NoReturn

PROTO_MAX_BULK_LEN = 512 * 1024 * 1024  # Redis's proto-max-bulk-len default
PROTO_MAX_MULTIBULK_LEN = 1024 * 1024  # Redis's cap for unauthenticated clients
PROTO_INLINE_MAX_SIZE = 64 * 1024  # Redis's PROTO_INLINE_MAX_SIZE; also bounds header lines

_DIGITS_MAX = 19  # a length with more digits cannot fit in a signed 64-bit integer


class ProtocolError(Exception):
    """Bytes that are not RESP. ``str(error)`` is the Redis-style message.

    ``commands`` holds the complete commands that came before the malformed
    bytes in the same ``feed``: Redis runs those before it replies with the error.
    """

    def __init__(self, message: str, commands: list[list[bytes]] | None = None) -> None:
        super().__init__(message)
        self.commands = commands if commands is not None else []


class RequestParser:
    """Turns a stream of request bytes into commands (lists of ``bytes``)."""

    __slots__ = (
        "_args",
        "_buffered",
        "_bulk_len",
        "_bulk_lens",
        "_chunks",
        "_counts",
        "_error",
        "_line_limit",
        "_need",
        "_remaining",
        "max_bulk_len",
        "max_inline_len",
        "max_multibulk_len",
    )

    def __init__(
        self,
        max_bulk_len: int = PROTO_MAX_BULK_LEN,
        max_multibulk_len: int = PROTO_MAX_MULTIBULK_LEN,
        max_inline_len: int = PROTO_INLINE_MAX_SIZE,
    ) -> None:
        for name, value in (
            ("max_bulk_len", max_bulk_len),
            ("max_multibulk_len", max_multibulk_len),
            ("max_inline_len", max_inline_len),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.max_bulk_len = max_bulk_len
        self.max_multibulk_len = max_multibulk_len
        self.max_inline_len = max_inline_len
        self._chunks: list[bytes] = []  # unparsed bytes, joined only when they can complete a frame
        self._buffered = 0  # total length of _chunks
        self._need = 0  # don't join _chunks before they hold this many bytes
        self._line_limit: str | None = None  # waiting for a line end: the error if it never comes
        self._args: list[bytes] = []  # arguments of the multibulk frame being read
        self._remaining = 0  # bulk strings still to read in that frame
        self._bulk_len = -1  # length of the next bulk string; -1 until its header is read
        self._error: ProtocolError | None = None
        # Small headers are looked up, not parsed (shared tables unless a limit is lower).
        self._counts = _COUNTS if max_multibulk_len >= _TABLED else _table(b"*", max_multibulk_len)
        self._bulk_lens = _BULK_LENS if max_bulk_len >= _TABLED else _table(b"$", max_bulk_len)

    @property
    def buffered(self) -> int:
        """How many received bytes are held, not yet part of a complete command."""
        return self._buffered + sum(map(len, self._args))

    def feed(self, data: bytes) -> list[list[bytes]]:
        """Add received bytes; return the commands they complete, in order."""
        if self._error is not None:
            raise self._error
        chunks = self._chunks
        if chunks:
            chunks.append(data)
            self._buffered += len(data)
            if self._buffered < self._need:
                return []  # a bulk string still arriving: don't join yet
            if self._line_limit is not None and b"\n" not in data:
                if self._waiting_line_too_long():
                    self._fail(self._line_limit, [])
                return []  # a header or inline line still arriving
            buf = b"".join(chunks)
            chunks.clear()
        else:
            buf = data
        self._buffered = self._need = 0
        self._line_limit = None

        commands: list[list[bytes]] = []
        find = buf.find
        counts, bulk_lens = self._counts, self._bulk_lens
        end = len(buf)
        args, remaining, size = self._args, self._remaining, self._bulk_len
        pos = 0
        if size >= 0:  # the last read stopped inside a payload; _need saw that all of it is here
            if buf[size] != 13 or buf[size + 1] != 10:
                self._fail("Protocol error: expected '\\r\\n' after bulk data", commands)
            args.append(buf[:size])
            pos = size + 2
            remaining -= 1
            if not remaining:
                commands.append(args)
        elif not remaining and end <= _SPLIT_MAX and buf[:1] == b"*":
            pos = _simple_frames(buf, commands, counts, bulk_lens)  # the fast path, see below
        while True:
            if not remaining:  # at a frame boundary
                if pos >= end:
                    break
                if buf[pos] == 42:  # b"*": a multibulk frame
                    nl = find(b"\r\n", pos)
                    if nl < 0:
                        self._line_limit = "Protocol error: too big mbulk count string"
                        break
                    count = counts.get(buf[pos:nl])  # b"*3" -> 3: checked and converted at once
                    if count is None:
                        count = self._multibulk_len(buf[pos + 1 : nl], commands)
                    pos = nl + 2
                    if count <= 0:
                        continue  # "*0" and "*-1" carry no command: Redis skips them too
                    args = []
                    remaining = count
                else:  # an inline command, as telnet sends
                    nl = find(b"\n", pos)
                    if nl < 0:
                        self._line_limit = "Protocol error: too big inline request"
                        break
                    line = buf[pos:nl].removesuffix(b"\r")
                    if len(line) > self.max_inline_len:
                        self._fail("Protocol error: too big inline request", commands)
                    words = split_inline(line)
                    if words is None:
                        self._fail("Protocol error: unbalanced quotes in request", commands)
                    if words:  # an empty line is skipped, as Redis does
                        commands.append(words)
                    pos = nl + 1
                    continue
            # The frame's bulk strings, "$<len>\r\n<bytes>\r\n"; after a break, `done` counts
            # those read.
            for done in range(remaining):  # noqa: B007
                nl = find(b"\r\n", pos)
                if nl < 0:
                    if pos < end and buf[pos] != 36:  # not a "$": no need to wait for the line end
                        self._bulk_len_slow(buf[pos:], commands)
                    self._line_limit = "Protocol error: too big bulk count string"
                    break
                size = bulk_lens.get(buf[pos:nl])  # b"$3" -> 3: checked and converted at once
                if size is None:
                    size = self._bulk_len_slow(buf[pos:nl], commands)  # refused here if too big
                pos = nl + 2
                stop = pos + size
                if stop + 2 > end:
                    self._need = size + 2  # the payload and its CRLF
                    break
                if buf[stop] != 13 or buf[stop + 1] != 10:
                    self._fail("Protocol error: expected '\\r\\n' after bulk data", commands)
                args.append(buf[pos:stop])
                pos = stop + 2
            else:
                commands.append(args)
                remaining = 0
                continue
            remaining -= done  # the frame goes on in a later read
            break

        self._args = args if remaining else []  # a finished frame belongs to the caller now
        self._remaining = remaining
        self._bulk_len = size if self._need else -1
        if pos < end or self._need:
            rest = buf[pos:] if pos else buf  # the one compaction of this feed
            chunks.append(rest)  # even if empty: a payload wait always goes through _need
            self._buffered = len(rest)
            if self._line_limit is not None and self._waiting_line_too_long():
                self._fail(self._line_limit, commands)
        return commands

    def _waiting_line_too_long(self) -> bool:
        """A line without its end yet is too long -- allowing for the "\r" that a line
        of the longest allowed length may already have when a read ends before its "\n"."""
        over = self._buffered - self.max_inline_len
        return over > 1 or (over == 1 and not self._chunks[-1].endswith(b"\r"))

    def _multibulk_len(self, digits: bytes, commands: list[list[bytes]]) -> int:
        """A ``*<count>`` header not in the table: valid but large, negative, or invalid."""
        count = _length(digits)
        if count is None or count > self.max_multibulk_len:
            self._fail("Protocol error: invalid multibulk length", commands)
        return count

    def _bulk_len_slow(self, header: bytes, commands: list[list[bytes]]) -> int:
        """A ``$<length>`` header not in the table: a large length, or an error."""
        if header[:1] != b"$":  # a slice, not header[0]: the header may be an empty line
            got = chr(header[0]) if header else "\r"  # Redis names the "\r" of an empty line
            self._fail(f"Protocol error: expected '$', got '{got}'", commands)
        size = _length(header[1:])
        if size is None or not 0 <= size <= self.max_bulk_len:  # before a byte is kept
            self._fail("Protocol error: invalid bulk length", commands)
        return size

    def _fail(self, message: str, commands: list[list[bytes]]) -> NoReturn:
        self._chunks.clear()
        self._args = []
        self._buffered = self._remaining = 0
        self._error = ProtocolError(message)  # what later feeds raise: no commands attached
        raise ProtocolError(message, commands)

    def __repr__(self) -> str:
        state = "failed" if self._error else f"buffered={self.buffered}"
        return (
            f"RequestParser({state}, in_frame={self._remaining} bulks left, "
            f"max_bulk_len={self.max_bulk_len})"
        )


def _simple_frames(
    buf: bytes, commands: list[list[bytes]], counts: dict[bytes, int], bulk_lens: dict[bytes, int]
) -> int:
    """The fast path: take the complete, simple frames at the start of ``buf``.

    One ``buf.split(b"\r\n")`` cuts every line in C; a frame ``*N`` is then
    N pairs of parts, a header ``$n`` and a payload. A frame is taken only if
    every header is in the tables (so within the limits) and each payload is
    exactly ``n`` bytes long. That check is enough: a payload that holds a
    CRLF is cut short by the split, so it comes out shorter than its header
    says and the frame is refused. At the first frame that is not simple --
    incomplete, inline, a large or malformed header, a CRLF in a payload --
    this stops; the general loop in ``feed`` takes over from there, so every
    error and every limit is still checked in one place. Returns the offset
    where the taken frames end. Only used on buffers up to ``_SPLIT_MAX``
    bytes: a big buffer is mostly payload, and a payload made of CRLFs would
    otherwise split into millions of parts.
    """
    parts = buf.split(b"\r\n")
    last = len(parts) - 2  # the last part was not followed by a CRLF: never a whole line
    taken = 0  # parts taken so far
    while taken <= last:
        count = counts.get(parts[taken])
        if not count or taken + 2 * count > last:
            break  # not a small "*N", or not complete in this buffer
        args = []
        header = taken + 1
        for _ in range(count):
            payload = parts[header + 1]
            if bulk_lens.get(parts[header]) != len(payload):
                break  # a big or malformed header, or a CRLF inside the payload
            args.append(payload)
            header += 2
        else:
            commands.append(args)
            taken = header
            continue
        break
    return sum(map(len, parts[:taken])) + 2 * taken  # the bytes of the parts taken, CRLFs included


def _table(prefix: bytes, limit: int) -> dict[bytes, int]:
    """Every header ``prefix + n`` for n < _TABLED and <= limit, mapped to n."""
    return {prefix + b"%d" % n: n for n in range(min(limit, _TABLED - 1) + 1)}


# A header like b"$3" is looked up in a dict instead of being parsed: one hash
# lookup both checks it (only canonical headers are keys) and converts it.
# Larger or malformed headers miss, and take the strict slow path.
_TABLED = 1024
_SPLIT_MAX = 256 * 1024  # the largest buffer _simple_frames splits: one read of uvloop's
_COUNTS = _table(b"*", _TABLED)
_BULK_LENS = _table(b"$", _TABLED)


def _length(digits: bytes) -> int | None:
    """The number in a ``*<count>`` or ``$<length>`` header; None if it is not one.

    As strict as Redis's ``string2ll``: decimal digits, an optional '-', no '+',
    no spaces, no leading zeros, at most 19 digits (64 bits).
    """
    if digits.isdigit():  # the common case: a plain non-negative number
        if (digits[0] != 48 or len(digits) == 1) and len(digits) <= _DIGITS_MAX:
            return int(digits)
        return None
    body = digits[1:]
    if digits[:1] == b"-" and body.isdigit() and body[0] != 48 and len(body) <= _DIGITS_MAX:
        return -int(body)  # a negative count: "*-1" is RESP's null array, skipped
    return None


def split_inline(line: bytes) -> list[bytes] | None:
    """Split an inline command into words like Redis's ``sdssplitargs``; None if quotes are open.

    ``SET k "hello world"`` gives three words; inside double quotes ``\\n``,
    ``\\r``, ``\\t``, ``\\b``, ``\\a`` and ``\\xHH`` are escapes; inside single quotes
    only ``\\'`` is. A closing quote must be followed by a space or the end.
    """
    if b'"' not in line and b"'" not in line:
        return line.split()  # the common case: no quotes, split on ASCII whitespace
    words: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in b" \t\r\n\v\f":
            i += 1
        if i >= n:
            return words
        word = bytearray()
        quote = 0
        while True:
            if i >= n:
                if quote:
                    return None  # the line ended inside quotes
                break
            c = line[i]
            if quote == 34:  # inside "double quotes"
                if c == 92 and i + 3 < n and line[i + 1] == 120 and _is_hex(line[i + 2 : i + 4]):
                    word.append(int(line[i + 2 : i + 4], 16))  # \xHH
                    i += 3
                elif c == 92 and i + 1 < n:
                    word.append(_ESCAPES.get(line[i + 1], line[i + 1]))
                    i += 1
                elif c == 34:
                    if i + 1 < n and line[i + 1] not in b" \t\r\n\v\f":
                        return None  # "closing quote must be followed by a space"
                    i += 1
                    break
                else:
                    word.append(c)
            elif quote == 39:  # inside 'single quotes'
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    word.append(39)
                    i += 1
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in b" \t\r\n\v\f":
                        return None
                    i += 1
                    break
                else:
                    word.append(c)
            elif c in b" \t\r\n":
                break
            elif c in (34, 39):
                quote = c
            else:
                word.append(c)
            i += 1
        words.append(bytes(word))


_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)

"""The framer's receive buffer: bytes in, lines and body pieces out, every read bounded.

Design. One ``bytearray`` and a read position. Reading a line or a piece of
body only moves the position; ``compact()`` drops the bytes read, once per
``feed``, so many small messages in one read cost one copy, not one each.
A head that is here whole is cut into lines in one go (``head_lines``): most
heads arrive in one read, and a call per line was the framer's main cost.

Lines end with CRLF, and only CRLF. RFC 9112 section 2.2 lets a recipient
accept a bare LF, and NGINX and h11 do; this buffer refuses one (400). One
line-ending rule is simpler to read and to test, a proxy that re-reads what
it forwards should accept only what every parser behind it reads the same way,
and every client the lab uses (curl, wrk, aiohttp) sends CRLF.

Invariant: ``line(limit)`` refuses a line as soon as it *must* be longer than
``limit``, before its end arrives, so a peer that never sends the CRLF cannot
make the buffer grow past the limit; it checks the length before the line
ending, so the verdict is the same however the reads were split.
"""

from __future__ import annotations

from lab.lb.messages import ProtocolError


class ReceiveBuffer:
    __slots__ = ("_data", "_pos")

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0  # bytes before this position have been read

    def __len__(self) -> int:
        """Bytes received and not read yet."""
        return len(self._data) - self._pos

    def append(self, data: bytes) -> None:
        self._data += data

    def compact(self) -> None:
        """Forget the bytes already read."""
        del self._data[: self._pos]
        self._pos = 0

    def clear(self) -> None:
        self._data.clear()
        self._pos = 0

    def line(self, limit: int, status: int, too_long: str) -> bytes | None:
        """The next line without its CRLF, read; None until its LF is in.

        A line longer than ``limit`` bytes (CRLF not counted; a negative limit
        refuses any line) raises ``ProtocolError(status, too_long)``.
        """
        data, pos = self._data, self._pos
        lf = data.find(b"\n", pos, max(pos, pos + limit + 2))  # no LF past a line too long
        if lf < 0:
            partial = len(data) - pos
            if partial and partial - (data[-1] == 13) > limit:  # a final CR may be the CRLF's
                raise ProtocolError(status, too_long)
            return None
        cr = lf > pos and data[lf - 1] == 13
        if lf - pos - cr > limit:
            raise ProtocolError(status, too_long)
        if not cr:
            raise ProtocolError(400, "line ends with a bare LF; CRLF is required")
        self._pos = lf + 1
        return bytes(data[pos : lf - 1])

    def head_lines(self, limit: int, line_limit: int) -> list[bytes] | None:
        """Every line up to the next empty line, read, when all of them are here: the head
        within ``limit`` bytes (every CRLF counted), each line within ``line_limit``, the
        first not empty, no bare LF. Otherwise None, and nothing is read.

        The fast path for a head that came in one read: one search and one split instead
        of a ``line()`` call per line. It refuses nothing itself; whatever it declines,
        ``line()`` then reads line by line and refuses where it must.
        """
        data, pos = self._data, self._pos
        end = data.find(b"\r\n\r\n", pos, pos + limit)  # the empty line, within the limit
        if end < 0:
            return None
        head = bytes(data[pos:end])
        lines = head.split(b"\r\n")
        if not lines[0] or head.count(b"\n") != len(lines) - 1 or \
                max(map(len, lines)) > line_limit:
            return None  # a stray CRLF first, a bare LF, or a line too long
        self._pos = end + 4
        return lines

    def take(self, most: int) -> bytes:
        """Up to ``most`` bytes, read; fewer (or none) if fewer are here."""
        piece = bytes(self._data[self._pos : self._pos + most])
        self._pos += len(piece)
        return piece

    def take_crlf(self) -> bool:
        """Read a CRLF: True once done, False while it is still to come; raises if the
        next bytes are something else."""
        got = bytes(self._data[self._pos : self._pos + 2])
        if got == b"\r\n":
            self._pos += 2
            return True
        if b"\r\n".startswith(got):
            return False  # b"" or b"\r": the rest is still to come
        raise ProtocolError(400, "chunk data not followed by CRLF")

    def __repr__(self) -> str:
        return f"ReceiveBuffer(unread={len(self)}, read={self._pos})"

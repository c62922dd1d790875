"""RESP2 replies: every reply built as bytes, ready for ``transport.write``.

The other half of the wire protocol (``resp.py`` parses requests). The common
replies are constants and small integers come from a table, so the hot path
concatenates nothing. A reply is never re-encoded: ``array`` takes replies that
are already bytes, so nested arrays cost one join.
"""

from __future__ import annotations

from collections.abc import Iterable

OK = b"+OK\r\n"
PONG = b"+PONG\r\n"
NULL_BULK = b"$-1\r\n"  # RESP2's "nil": GET of a missing key
NULL_ARRAY = b"*-1\r\n"
EMPTY_ARRAY = b"*0\r\n"
EMPTY_BULK = b"$0\r\n\r\n"
ZERO = b":0\r\n"
ONE = b":1\r\n"
MINUS_ONE = b":-1\r\n"
MINUS_TWO = b":-2\r\n"

_SMALL_INTEGERS = [b":%d\r\n" % n for n in range(256)]  # counts and TTLs are mostly small


def simple_string(text: bytes) -> bytes:
    """``+text``: a short status reply; must not contain CR or LF."""
    if b"\r" in text or b"\n" in text:
        raise ValueError("a simple string cannot contain CR or LF")
    return b"+" + text + b"\r\n"


def error(message: bytes) -> bytes:
    """``-message``: an error reply, e.g. ``error(b"ERR syntax error")``.

    CR and LF become spaces, as Redis's addReplyErrorLength does, so text that
    came from the client can never break the framing.
    """
    return b"-" + message.replace(b"\r", b" ").replace(b"\n", b" ") + b"\r\n"


def integer(n: int) -> bytes:
    """``:n``: a signed 64-bit integer."""
    if 0 <= n < 256:
        return _SMALL_INTEGERS[n]
    return b":%d\r\n" % n


def bulk(value: bytes | None) -> bytes:
    """``$len`` + the bytes: a binary-safe string; None gives the null bulk string."""
    if value is None:
        return NULL_BULK
    return b"$%d\r\n%b\r\n" % (len(value), value)


def array(replies: Iterable[bytes]) -> bytes:
    """``*count`` + already encoded replies, e.g. ``array([bulk(b"a"), NULL_BULK])``."""
    items = list(replies)
    return b"*%d\r\n" % len(items) + b"".join(items)

"""HTTP/1.1 messages as the framer emits them, and the encoders that write them back.

A message on the wire is a *head* (start line and header fields) followed by a
body. ``framer.py`` turns bytes into a stream of *events*, and every message
comes out the same way, whatever its framing::

    Request | Response       the head, once
    Data                     zero or more pieces of the decoded body
    EndOfMessage             once

so the proxy never sees chunk sizes, only body bytes. Going the other way,
``encode_head``, ``encode_chunk`` and ``LAST_CHUNK`` write a message out.

Design choices. Header fields are kept as raw ``(name, value)`` byte pairs in
their original order and case: a proxy should pass on what it received, and
order matters for fields that may repeat (``Set-Cookie``). Names are compared
case-insensitively by every helper here. A head records the ``framing`` the
framer found (``Framing``) because the proxy strips ``Transfer-Encoding``
(hop-by-hop) and must still know how the body it relays was delimited.

The exception tree is one class, ``ProtocolError``; its ``status`` is the
answer the proxy should give: 400, 413, 414, 431, 501 or 505 for a bad request,
502 for a bad response from a backend.

Not handled: header values are bytes, never decoded; trailers are dropped by
the framer, so ``EndOfMessage`` carries none; no ``reason`` is invented by
``encode_head`` (give one, as NGINX always writes the standard phrase).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

Headers = tuple[tuple[bytes, bytes], ...]  # (name, value) pairs, wire order and case

# RFC 9110 5.6.2: the characters of a token (a method, a field name, a transfer coding).
TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 9110 5.5: a field value is visible characters, obs-text, spaces and tabs -- no CR, LF, NUL.
FIELD_VALUE = re.compile(rb"[\t \x21-\x7e\x80-\xff]*")
_TARGET = re.compile(rb"[\x21-\x7e]+")  # a request target: visible ASCII, no space


class ProtocolError(Exception):
    """Bytes that are not an acceptable HTTP/1.1 message.

    ``status`` is the HTTP status to answer with, ``message`` a short reason
    that is safe to show a client. ``events`` holds the complete events that
    came before the bad bytes in the same ``feed`` (a pipelined request before
    a malformed one still deserves its answer).
    """

    def __init__(self, status: int, message: str, events: list[Event] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.events = events if events is not None else []

    def __repr__(self) -> str:
        return f"ProtocolError({self.status}, {self.message!r})"


class Framing(Enum):
    """How a message's body is delimited (RFC 9112 section 6.3), as the framer found it."""

    EMPTY = "empty"  # no body: a request without framing headers; HEAD, 1xx, 204, 304 answers
    LENGTH = "content-length"  # exactly Content-Length bytes
    CHUNKED = "chunked"  # Transfer-Encoding: chunked
    UNTIL_CLOSE = "until-close"  # a response with neither: the body ends when the server closes


@dataclass(frozen=True, slots=True)
class Request:
    """A request head. ``framing`` is set by the framer; ``encode_head`` ignores it."""

    method: bytes
    target: bytes
    headers: Headers = ()
    version: bytes = b"1.1"
    framing: Framing = Framing.EMPTY

    @property
    def keep_alive(self) -> bool:
        """May the connection carry another request after this one?"""
        return wants_keep_alive(self.version, self.headers)


@dataclass(frozen=True, slots=True)
class Response:
    """A response head (1xx ones included). ``framing`` as for ``Request``."""

    status: int
    headers: Headers = ()
    reason: bytes = b""
    version: bytes = b"1.1"
    framing: Framing = Framing.EMPTY

    @property
    def keep_alive(self) -> bool:
        """May the connection carry another response after this one?"""
        if self.status < 200:
            return True  # an interim response is always followed by the final one
        if self.framing is Framing.UNTIL_CLOSE:
            return False  # the close is what ends the body
        return wants_keep_alive(self.version, self.headers)


@dataclass(frozen=True, slots=True)
class Data:
    """A piece of a message body, already de-chunked. Never empty."""

    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfMessage:
    """The body (possibly empty) is complete."""


Event = Request | Response | Data | EndOfMessage


def header_values(headers: Headers, name: bytes) -> list[bytes]:
    """Every value of the field ``name`` (any case), in order."""
    name = name.lower()
    return [value for field, value in headers if field.lower() == name]


def header_tokens(headers: Headers, name: bytes) -> list[bytes]:
    """The elements of a comma-separated list field, lowercased; empty elements are
    dropped, as RFC 9110 section 5.6.1 asks (``Connection: , close,`` is ``[b"close"]``)."""
    tokens = []
    for value in header_values(headers, name):
        for element in value.split(b","):
            element = element.strip(b" \t").lower()
            if element:
                tokens.append(element)
    return tokens


def wants_keep_alive(version: bytes, headers: Headers) -> bool:
    """RFC 9112 section 9.3: HTTP/1.1 is persistent unless ``Connection: close``;
    HTTP/1.0 only with ``Connection: keep-alive``."""
    options = header_tokens(headers, b"connection")
    if b"close" in options:
        return False
    return version == b"1.1" or b"keep-alive" in options


def encode_head(head: Request | Response) -> bytes:
    """The start line and header fields of ``head``, ending with the empty line.

    Raises ``ValueError`` for anything that would not parse back as the same head
    -- above all a CR or LF in a value, which would let a caller inject a header.
    """
    if head.version not in (b"1.0", b"1.1"):
        raise ValueError(f"HTTP version must be b'1.0' or b'1.1', got {head.version!r}")
    if isinstance(head, Request):
        if not TOKEN.fullmatch(head.method):
            raise ValueError(f"bad method {head.method!r}")
        if not _TARGET.fullmatch(head.target):
            raise ValueError(f"bad request target {head.target!r}")
        lines = [b"%s %s HTTP/%s\r\n" % (head.method, head.target, head.version)]
    else:
        if not 100 <= head.status <= 999:
            raise ValueError(f"status must have three digits, got {head.status!r}")
        if not FIELD_VALUE.fullmatch(head.reason):
            raise ValueError(f"bad reason phrase {head.reason!r}")
        lines = [b"HTTP/%s %d %s\r\n" % (head.version, head.status, head.reason)]
    for name, value in head.headers:
        if not TOKEN.fullmatch(name):
            raise ValueError(f"bad header name {name!r}")
        if not FIELD_VALUE.fullmatch(value) or value != value.strip(b" \t"):
            raise ValueError(f"bad value for header {name!r}: {value!r}")
        lines.append(b"%s: %s\r\n" % (name, value))
    lines.append(b"\r\n")
    return b"".join(lines)


def encode_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body. ``data`` must not be empty: that is the last chunk."""
    if not data:
        raise ValueError("an empty chunk would end the body; send LAST_CHUNK for that")
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"  # the zero-size chunk and an empty trailer section

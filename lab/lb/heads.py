"""What a head says: its start line and fields, checked, and how its body is framed.

The framer cuts a head into lines (``buffer.py``); these pure functions read
those lines and apply RFC 9112 section 6.3 to decide where the body ends.
Every refusal is a ``ProtocolError`` carrying the status a server answers with.

Most of the strictness here is a defence against **request smuggling**: when
the proxy and a backend disagree on where a message ends, a client can hide a
second request inside the first one's body, and the backend runs it as if the
proxy had checked it. So every head whose framing two parsers might read
differently is refused instead of guessed:

* both ``Content-Length`` and ``Transfer-Encoding`` -> 400 (RFC 9112 also
  allows obeying ``Transfer-Encoding`` alone; refusing is the safer reading);
* ``Content-Length`` repeated with differing values, or not a plain number
  -> 400 (identical repeats, ``5, 5``, are one length, as the RFC allows);
* ``Transfer-Encoding`` whose last coding is not ``chunked``, or with
  ``chunked`` twice -> 400; another coding before ``chunked`` (``gzip,
  chunked``) -> 501, as the RFC asks of a server that does not know it;
* ``Transfer-Encoding`` in an HTTP/1.0 message -> 400;
* whitespace between a field name and its colon (``Host : x``), and obs-fold
  (a line that continues the previous field) -> 400.

Also refused: an HTTP/1.1 request without exactly one ``Host`` (400), a
version other than 1.0 and 1.1 (505), CONNECT (501: this proxy builds no
tunnels). For responses, a 101 (the proxy never asks for an upgrade, so it
cannot relay one). NGINX refuses the same requests, with two differences in
the status: it accepts ``Transfer-Encoding`` only when it is exactly
``chunked`` and answers 501 to anything else (``gzip`` alone is a 400 here,
as RFC 9112 asks), and it refuses any repeated ``Content-Length``, even
with equal values.
"""

from __future__ import annotations

import re

from lab.lb.messages import (
    FIELD_VALUE,
    TOKEN,
    Framing,
    Headers,
    ProtocolError,
    header_tokens,
    header_values,
)

_REQUEST_LINE = re.compile(rb"(%s) ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])" % TOKEN.pattern)
_STATUS_LINE = re.compile(rb"HTTP/([0-9])\.([0-9]) ([1-9][0-9][0-9])(?: (.*))?")
_MAX_LENGTH_DIGITS = 18  # a Content-Length that fits in 63 bits


def parse_request_line(line: bytes) -> tuple[bytes, bytes, bytes]:
    """``GET /tasks HTTP/1.1`` -> ``(b"GET", b"/tasks", b"1.1")``; one space between parts."""
    match = _REQUEST_LINE.fullmatch(line)
    if not match:
        raise ProtocolError(400, "malformed request line")
    method, target, major, minor = match.groups()
    return method, target, _version(major, minor)


def parse_status_line(line: bytes) -> tuple[int, bytes, bytes]:
    """``HTTP/1.1 200 OK`` -> ``(200, b"OK", b"1.1")``; the reason may be empty or absent."""
    match = _STATUS_LINE.fullmatch(line)
    if not match or not FIELD_VALUE.fullmatch(match[4] or b""):
        raise ProtocolError(400, "malformed status line")
    major, minor, status, reason = match.groups()
    return int(status), reason or b"", _version(major, minor)


def parse_field(line: bytes) -> tuple[bytes, bytes]:
    """``Host: example.com`` -> ``(b"Host", b"example.com")``: name as sent, value trimmed."""
    if line[:1] in (b" ", b"\t"):
        raise ProtocolError(400, "obs-fold (a continuation line) is not accepted")
    name, colon, value = line.partition(b":")
    if not colon or not TOKEN.fullmatch(name):  # "Host : x" falls here: a smuggling classic
        raise ProtocolError(400, "malformed header field")
    value = value.strip(b" \t")
    if not FIELD_VALUE.fullmatch(value):
        raise ProtocolError(400, "invalid character in a header value")
    return name, value


def request_framing(method: bytes, version: bytes, headers: Headers) -> tuple[Framing, int]:
    """How a request's body is framed, and its length when ``Framing.LENGTH``."""
    hosts = header_values(headers, b"host")
    if len(hosts) > 1 or (version == b"1.1" and not hosts):
        raise ProtocolError(400, "an HTTP/1.1 request needs exactly one Host header")
    if method == b"CONNECT":
        raise ProtocolError(501, "CONNECT is not supported")
    return _framing(version, headers, Framing.EMPTY)  # no framing header: no body


def response_framing(request_method: bytes, status: int, version: bytes,
                     headers: Headers) -> tuple[Framing, int]:
    """How a response's body is framed; ``request_method`` is that of the request it answers."""
    if status == 101:
        raise ProtocolError(502, "protocol upgrades are not supported")
    if request_method == b"HEAD" or status < 200 or status in (204, 304):
        return Framing.EMPTY, 0  # RFC 9112 6.3 rule 1: no body, whatever the headers say
    return _framing(version, headers, Framing.UNTIL_CLOSE)  # no framing header: until close


def _framing(version: bytes, headers: Headers, default: Framing) -> tuple[Framing, int]:
    lengths = header_values(headers, b"content-length")
    if not any(name.lower() == b"transfer-encoding" for name, _ in headers):
        return (Framing.LENGTH, content_length(lengths)) if lengths else (default, 0)
    if lengths:
        raise ProtocolError(400, "both Content-Length and Transfer-Encoding")
    if version == b"1.0":
        raise ProtocolError(400, "Transfer-Encoding in an HTTP/1.0 message")
    codings = header_tokens(headers, b"transfer-encoding")
    if not codings or codings[-1] != b"chunked" or b"chunked" in codings[:-1]:
        raise ProtocolError(400, "Transfer-Encoding must end with a single chunked")
    if len(codings) > 1:
        raise ProtocolError(501, "transfer coding not supported")
    return Framing.CHUNKED, 0


def content_length(values: list[bytes]) -> int:
    """One length from every Content-Length value: ``5, 5`` is 5, ``5, 6`` is refused."""
    lengths = set()
    for value in values:
        for element in value.split(b","):
            element = element.strip(b" \t")
            if not element.isdigit() or len(element) > _MAX_LENGTH_DIGITS:  # ASCII digits only
                raise ProtocolError(400, "malformed Content-Length")
            lengths.add(int(element))
    if len(lengths) > 1:
        raise ProtocolError(400, "differing Content-Length values")
    return lengths.pop()


def _version(major: bytes, minor: bytes) -> bytes:
    version = major + b"." + minor
    if version not in (b"1.0", b"1.1"):
        raise ProtocolError(505, "HTTP version not supported")
    return version

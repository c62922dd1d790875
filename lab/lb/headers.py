"""The header rewriting a reverse proxy does on the way through: pure functions on ``Headers``.

A proxy is two HTTP connections, not one: a header that describes a
connection (RFC 9110 section 7.6.1, *hop-by-hop*) must not be passed on to
the next one, and the backend must be told what the proxy hid from it -- who
the client is and how it connected. So, for a request going to a backend:

1. ``strip_hop_by_hop``: drop ``Connection``, ``Keep-Alive``,
   ``Proxy-Authenticate``, ``Proxy-Authorization``, ``TE``, ``Trailer``,
   ``Transfer-Encoding``, ``Upgrade`` and every field that ``Connection``
   names (``Connection: close, X-Debug`` drops ``X-Debug`` too);
2. ``add_forwarded_for``: append the client's address to ``X-Forwarded-For``;
3. ``set_header(..., b"X-Forwarded-Proto", ...)``: the scheme the client used;
4. ``ensure_request_id``: an ``X-Request-Id`` to follow the request through logs.

``forward_request`` does the four in that order; a response only needs step 1.
Every function returns a new tuple and keeps the order and case of the fields
it does not touch. Because ``Transfer-Encoding`` goes, the proxy frames the
body it forwards itself (from the head's ``framing``, see ``messages.py``).

A client can abuse step 1: ``Connection: Content-Length`` would make a naive
proxy forward a body without its length, and the backend would read the body
as the next request (smuggling). ``Connection`` may therefore never remove
``Content-Length`` or ``Host``; such a name is ignored.

``X-Forwarded-For`` is the client's claim plus what the proxy saw: a backend
may trust only the last address (the one this proxy appended). How NGINX
differs: ``proxy_pass`` replaces ``Connection`` (``close`` unless
``proxy_set_header`` says otherwise), removes ``Keep-Alive``, ``TE``,
``Upgrade`` and ``Expect``, and rewrites the framing headers of the body it
sends, but leaves the fields that ``Connection`` names; it also sets ``Host``
to the upstream's name, where this proxy keeps the client's (NGINX's
``proxy_set_header Host $host``). The ``X-Forwarded-*`` fields are the
operator's ``proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for``
(the same append), and ``$request_id`` is 32 random hex digits, as here.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from lab.lb.messages import FIELD_VALUE, TOKEN, Headers, header_tokens, header_values

HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization",
    b"te", b"trailer", b"transfer-encoding", b"upgrade",
})
NEVER_CONNECTION_OPTION = frozenset({b"content-length", b"host"})  # see the module docstring


def new_request_id() -> bytes:
    """32 random hex digits, like NGINX's ``$request_id``."""
    return secrets.token_hex(16).encode("ascii")


def strip_hop_by_hop(headers: Headers) -> Headers:
    """``headers`` without the hop-by-hop fields and the fields ``Connection`` names."""
    named = set(header_tokens(headers, b"connection")) - NEVER_CONNECTION_OPTION
    drop = HOP_BY_HOP | named
    return tuple((name, value) for name, value in headers if name.lower() not in drop)


def set_header(headers: Headers, name: bytes, value: bytes) -> Headers:
    """``name: value`` in place of the first field ``name`` (any case); others of that name go.
    Appended at the end if there was none."""
    _check(name, value)
    key = name.lower()
    result: list[tuple[bytes, bytes]] = []
    placed = False
    for field, old in headers:
        if field.lower() != key:
            result.append((field, old))
        elif not placed:
            result.append((field, value))  # where the client put it, in its case
            placed = True
    if not placed:
        result.append((name, value))
    return tuple(result)


def add_forwarded_for(headers: Headers, client: str) -> Headers:
    """Append ``client`` (an IP address) to ``X-Forwarded-For``; several such fields
    are first joined into one, as ``$proxy_add_x_forwarded_for`` does."""
    hops = [*header_values(headers, b"x-forwarded-for"), client.encode("ascii")]
    return set_header(headers, b"X-Forwarded-For", b", ".join(hop for hop in hops if hop))


def ensure_request_id(headers: Headers,
                      new_id: Callable[[], bytes] = new_request_id) -> tuple[Headers, bytes]:
    """Keep an incoming ``X-Request-Id``, else add one from ``new_id()``; return both."""
    ids = header_values(headers, b"x-request-id")
    if ids and ids[0]:
        return headers, ids[0]
    request_id = new_id()
    return set_header(headers, b"X-Request-Id", request_id), request_id


def forward_request(headers: Headers, *, client: str, scheme: str = "http",
                    new_id: Callable[[], bytes] = new_request_id) -> tuple[Headers, bytes]:
    """A request's headers as the backend should see them, and its request id."""
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme must be 'http' or 'https', got {scheme!r}")
    headers = add_forwarded_for(strip_hop_by_hop(headers), client)
    headers = set_header(headers, b"X-Forwarded-Proto", scheme.encode("ascii"))
    return ensure_request_id(headers, new_id)


def _check(name: bytes, value: bytes) -> None:
    if not TOKEN.fullmatch(name):
        raise ValueError(f"bad header name {name!r}")
    if not FIELD_VALUE.fullmatch(value) or value != value.strip(b" \t"):
        raise ValueError(f"bad value for header {name!r}: {value!r}")

"""A message's head as the next hop must see it: the request for a backend, the answer for
the client. Pure functions, no I/O.

A proxy holds two connections per request, and each has its own framing.
The framer hands over *decoded* bodies (``messages.py``), so the proxy must
decide afresh how to delimit each body it sends on:

* **to a backend**, always HTTP/1.1 so that the connection can go back to
  the keep-alive pool. A body the client sent with ``Content-Length`` keeps
  it; a chunked one is re-chunked (``Transfer-Encoding: chunked``, added
  back after ``headers.strip_hop_by_hop`` removed the client's). An HTTP/1.0
  client may omit ``Host``; the backend then gets the backend's own address.
* **to the client**, an answer with a length keeps it; one that is chunked or
  runs until the backend closes is chunked for an HTTP/1.1 client (so the
  client connection survives it), and for an HTTP/1.0 client (which knows no
  chunks) sent as it comes, ending with the close of the connection.
  ``Connection: close`` says so when the client connection will not carry
  another request; an HTTP/1.0 client that asked for keep-alive is told
  ``Connection: keep-alive``. Interim (1xx) answers are dropped for an
  HTTP/1.0 client, which cannot read them (RFC 9110 section 15.2).

NGINX does the same with ``proxy_http_version 1.1`` and its default
``chunked_transfer_encoding on``, with one difference: with buffering on (its
default) it reads a whole small answer before it writes the head, and then
sends it with a ``Content-Length`` even if the backend chunked it.
"""

from __future__ import annotations

from collections.abc import Callable

from lab.lb.headers import forward_request, new_request_id, set_header, strip_hop_by_hop
from lab.lb.messages import Framing, Request, Response, header_values


def request_for_backend(request: Request, *, client: str, backend: str, scheme: str = "http",
                        new_id: Callable[[], bytes] = new_request_id) -> tuple[Request, bytes]:
    """The head to send a backend for ``request`` from ``client`` (an IP address), and its
    request id. The body that follows is chunked if and only if ``request``'s was."""
    headers, request_id = forward_request(request.headers, client=client, scheme=scheme,
                                          new_id=new_id)
    if not header_values(headers, b"host"):
        headers = set_header(headers, b"Host", backend.encode("ascii"))  # an HTTP/1.0 client's
    if request.framing is Framing.CHUNKED:
        headers = (*headers, (b"Transfer-Encoding", b"chunked"))
    return Request(request.method, request.target, headers, b"1.1", request.framing), request_id


def answer_for_client(response: Response, request: Request,
                      keep_alive: bool) -> tuple[Response | None, bool, bool]:
    """The head to send the client for a backend's ``response`` to ``request``.

    ``keep_alive`` says whether the proxy would keep the client connection
    (the client asked for it, and nothing else forbids it). Returns the head
    (None: send nothing, a 1xx to an HTTP/1.0 client), whether the body goes
    out chunked, and whether the client connection carries another request.
    """
    client_11 = request.version == b"1.1"
    headers = strip_hop_by_hop(response.headers)
    if response.status < 200:
        head = Response(response.status, headers, response.reason, b"1.1", Framing.EMPTY)
        return (head if client_11 else None), False, True
    chunked = False
    framing = response.framing
    if framing in (Framing.CHUNKED, Framing.UNTIL_CLOSE):
        if client_11:
            chunked = True
            headers = (*headers, (b"Transfer-Encoding", b"chunked"))
        else:
            keep_alive = False  # no chunks in HTTP/1.0: the close ends the body
    if not keep_alive:
        headers = (*headers, (b"Connection", b"close"))
    elif not client_11:
        headers = (*headers, (b"Connection", b"keep-alive"))  # HTTP/1.0 closes unless told
    framing = Framing.CHUNKED if chunked else framing
    return Response(response.status, headers, response.reason, b"1.1", framing), chunked, \
        keep_alive

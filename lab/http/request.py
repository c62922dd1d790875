"""What a handler receives: the request, its route parameters and its validated input.

``Request`` wraps aiohttp's ``BaseRequest`` (the low-level server's request:
method, path, headers, a stream for the body) and adds what the lab's layer
found out: the route, its converted path ``params``, the validated ``query``
and ``body`` dicts, and the request ``id``.

Reading a JSON body, in the order that wastes least work on a bad request:

1. the Content-Type must be JSON (``application/json`` or ``application/*+json``),
   else 415 -- checked before a byte of the body is read;
2. a declared Content-Length over the limit is refused at once (413), without
   reading the body, and the connection is closed rather than drained;
3. a client that sent ``Expect: 100-continue`` is told to go on only now, so
   a refused upload is never sent at all (any other ``Expect`` is a 417);
4. the body is read chunk by chunk and refused as soon as it passes the limit
   (413) -- this is what stops a chunked upload, which declares no length. A
   body aiohttp cannot decode (a broken gzip, bad chunk framing) or one cut
   short by a client that went away is a 400, not our bug;
5. orjson parses it (invalid JSON → 400), and the schema validates it.

aiohttp.web does the same with ``client_max_size`` inside ``request.json()``;
FastAPI reads the whole body first.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import HttpVersion11
from aiohttp.web import BaseRequest
from aiohttp.web_protocol import RequestPayloadError

from lab.http.errors import BadRequest, ExpectationFailed, PayloadTooLarge, UnsupportedMediaType

DEFAULT_MAX_BODY_SIZE = 1024 * 1024  # 1 MiB, as aiohttp's client_max_size


class Request:
    __slots__ = ("body", "id", "params", "query", "raw", "route", "started")

    def __init__(self, raw: BaseRequest, request_id: str = "", started: float = 0.0):
        self.raw = raw  # aiohttp's request: headers, remote address, the body stream
        self.id = request_id
        self.started = started  # time.perf_counter() when the request reached the app
        self.route = None  # the lab.http.router.Route, once matched
        self.params: dict[str, Any] = {}
        self.query: dict[str, Any] = {}
        self.body: dict[str, Any] | None = None

    @property
    def method(self) -> str:
        return self.raw.method

    @property
    def path(self) -> str:
        return self.raw.path

    @property
    def headers(self):
        return self.raw.headers

    def __repr__(self) -> str:
        return f"<Request {self.id} {self.raw.method} {self.raw.path_qs}>"


def is_json(content_type: str) -> bool:
    return content_type == "application/json" or (
        content_type.startswith("application/") and content_type.endswith("+json"))


async def read_json(raw: BaseRequest, max_body_size: int) -> Any:
    """The request's body parsed as JSON, with the checks above; raises HTTPError."""
    if not is_json(raw.content_type):
        raise UnsupportedMediaType()
    declared = raw.content_length
    if declared is not None and declared > max_body_size:
        raise PayloadTooLarge(f"Request body is larger than {max_body_size} bytes")
    expect = raw.headers.get("Expect")
    if expect is not None and raw.version >= HttpVersion11:
        if expect.lower() != "100-continue":
            raise ExpectationFailed()
        await raw.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await read_limited(raw, max_body_size)
    if not body.strip():
        raise BadRequest("Request body is empty; send a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("Request body is not valid JSON") from None


async def read_limited(raw: BaseRequest, max_body_size: int) -> bytes:
    """The whole body, refused (413) as soon as more than ``max_body_size`` bytes arrive."""
    chunks: list[bytes] = []
    size = 0
    while True:
        try:
            chunk = await raw.content.readany()
        except RequestPayloadError:  # aiohttp could not decode it: bad gzip, bad chunk framing
            raise BadRequest("Request body could not be decoded", close_connection=True) from None
        except ConnectionResetError:  # the client left mid-body: nobody hears this answer
            raise BadRequest("Request body incomplete", close_connection=True) from None
        if not chunk:
            break
        size += len(chunk)
        if size > max_body_size:
            raise PayloadTooLarge(f"Request body is larger than {max_body_size} bytes")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)

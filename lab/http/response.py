"""Building responses: JSON with orjson, the ``{"data": ...}`` envelope, errors.

Every answer of the lab's APIs is JSON, so there is one way to make one:
``json_response(payload, status)``. orjson serialises ``datetime`` (RFC 3339)
and is several times faster than the standard ``json`` module, which is what
aiohttp's ``json_response`` uses unless told otherwise.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from lab.http.errors import HTTPError

JSON = "application/json"


def json_response(payload: Any, status: int = 200,
                  headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type=JSON,
                        headers=headers)


def ok(data: Any) -> web.Response:
    """200 with ``{"data": data}``."""
    return web.Response(body=orjson.dumps({"data": data}), content_type=JSON)


def created(data: Any) -> web.Response:
    """201 with ``{"data": data}``: what a POST that made a resource answers."""
    return web.Response(body=orjson.dumps({"data": data}), status=201, content_type=JSON)


def no_content() -> web.Response:
    """204: done, nothing to say (a DELETE)."""
    return web.Response(status=204)


def error_response(error: HTTPError) -> web.Response:
    response = json_response(error.body(), error.status, error.headers or None)
    if error.close_connection:
        response.force_close()  # aiohttp sends "Connection: close" and closes after this answer
    return response

"""Middlewares: functions wrapped around every request, outermost first.

A middleware is ``async def mw(request, call_next) -> response``: it may act
before (``request.id = ...``), call the rest of the chain, and act after
(``response.headers[...] = ...``). The app composes the chain once at start-up,
so a request pays one await per middleware and nothing to build the chain.

The default chain, and why in this order::

    request_id → access_log → timing → errors → route handler

* ``request_id`` first, so every later step (a log line, an error) can name
  the request, and the id reaches the response even when the request failed.
* ``access_log`` outside ``errors``, so it logs the status the client really got.
* ``errors`` last before the handler: any exception becomes a JSON answer,
  and an unexpected one is logged once, with the request id and the
  traceback, while the client gets a generic 500 without internals. An app
  may add middlewares after it that turn its own exceptions into HTTPErrors
  (the Task API maps its store's errors that way).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from lab.http.errors import HTTPError
from lab.http.request import Request
from lab.http.response import error_response

Handler = Callable[[Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[Request, Handler], Awaitable[web.StreamResponse]]

access_logger = logging.getLogger("lab.http.access")
error_logger = logging.getLogger("lab.http.error")

# A client-sent id is kept if it is short and plain, so it can be logged safely.
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Our own ids: a random prefix per process and a counter. Unique enough to
# find a request in the logs of several instances, and ~10x cheaper than uuid4.
_PREFIX = os.urandom(4).hex()
_counter = itertools.count(1)


def new_request_id() -> str:
    return f"{_PREFIX}-{next(_counter):x}"


async def request_id(request: Request, call_next: Handler) -> web.StreamResponse:
    """Take the client's ``X-Request-Id`` if acceptable, else make one; echo it back."""
    given = request.raw.headers.get("X-Request-Id")
    request.id = given if given and _ACCEPTABLE_ID.fullmatch(given) else new_request_id()
    response = await call_next(request)
    response.headers["X-Request-Id"] = request.id
    return response


async def access_log(request: Request, call_next: Handler) -> web.StreamResponse:
    """One line per request: id, method, path, status, milliseconds."""
    response = await call_next(request)
    if access_logger.isEnabledFor(logging.INFO):  # off in benchmarks: skip the formatting too
        ms = (time.perf_counter() - request.started) * 1000
        access_logger.info("%s %s %s %d %.2fms", request.id, request.raw.method,
                           request.raw.path_qs, response.status, ms)
    return response


async def timing(request: Request, call_next: Handler) -> web.StreamResponse:
    """A ``Server-Timing: app;dur=<ms>`` header, which browsers' dev tools display."""
    response = await call_next(request)
    ms = (time.perf_counter() - request.started) * 1000
    response.headers["Server-Timing"] = f"app;dur={ms:.3f}"
    return response


async def errors(request: Request, call_next: Handler) -> web.StreamResponse:
    """Exceptions to JSON answers: an HTTPError as it says, anything else as a 500."""
    try:
        return await call_next(request)
    except HTTPError as error:
        return error_response(error)
    except Exception:
        # A bug, or a dependency failing in a way nobody mapped: log everything
        # once, here, and tell the client nothing it could use against us.
        error_logger.exception("unhandled error in %s %s (request id %s)",
                               request.raw.method, request.raw.path, request.id)
        return error_response(HTTPError())


DEFAULT_CHAIN: tuple[Middleware, ...] = (request_id, access_log, timing, errors)

"""The app: routes declared with their schemas, one request's path through them.

aiohttp's low-level server (``aiohttp.web.Server``) parses HTTP and calls one
function per request with a ``BaseRequest``; that function is ``App.__call__``.
Everything above the socket is the lab's::

    App.__call__(raw)                         wrap it in a lab Request
      → request_id → access_log → timing      the middleware chain (middleware.py)
      → errors                                exceptions become JSON answers
      → App._dispatch                         router.match → params (400/404/405)
            query schema → request.query      400 with every problem listed
            body: 415/413/400, body schema    request.read_json + schema.validate
            route handler(request)            returns a response

A route is declared with what it takes and what it answers, and the same
declaration serves both the request path and the OpenAPI document::

    @app.route("POST", "/tasks", body=CreateTask, responses={201: TaskEnvelope},
               summary="Create a task", tags=["tasks"])
    async def create_task(request): ...

What aiohttp.web.Application adds over this (and costs per request): a
``web.Request`` with ``match_info``, an ordered list of resources tried in
turn for dynamic paths, middlewares built per request, signals, sub-apps.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web import BaseRequest
from aiohttp.web_protocol import RequestHandler

from lab.http import middleware
from lab.http.middleware import Handler, Middleware
from lab.http.request import DEFAULT_MAX_BODY_SIZE, Request, read_json
from lab.http.response import json_response
from lab.http.router import Route, Router
from lab.http.schema import Schema


class App:
    def __init__(self, title: str, version: str, *, description: str = "",
                 max_body_size: int = DEFAULT_MAX_BODY_SIZE,
                 middlewares: Sequence[Middleware] = middleware.DEFAULT_CHAIN):
        if max_body_size < 1:
            raise ValueError(f"max_body_size must be at least 1 byte, got {max_body_size}")
        self.title = title
        self.version = version
        self.description = description
        self.max_body_size = max_body_size
        if middleware.errors not in middlewares:
            raise ValueError("the middleware chain needs lab.http.middleware.errors")
        self.router = Router()
        self._handle = compose(middlewares, self._dispatch)

    def route(self, method: str, path: str, *, query: Schema | None = None,
              body: Schema | None = None, responses: dict[int, Any] | None = None,
              summary: str = "", tags: Sequence[str] = (), docs: bool = True) -> Callable:
        """Declare a route; ``responses`` maps status → response Schema (or None for no body)."""
        def register(handler: Handler) -> Handler:
            self.router.add(method, path, handler, query=query, body=body,
                            responses=responses or {200: None}, summary=summary,
                            tags=list(tags), docs=docs, name=handler.__name__)
            return handler
        return register

    def routes(self) -> list[Route]:
        return self.router.routes()

    async def __call__(self, raw: BaseRequest) -> web.StreamResponse:
        """The handler aiohttp's low-level server calls for each request."""
        response = await self._handle(Request(raw, started=time.perf_counter()))
        if raw.method == "HEAD" and isinstance(response, web.Response) and response.body:
            # HEAD answers GET's headers without its body; Content-Length still
            # tells the size the GET would send (RFC 9110, section 9.3.2).
            size = len(response.body)
            response.body = None
            response.headers["Content-Length"] = str(size)
        return response

    async def _dispatch(self, request: Request) -> web.StreamResponse:
        raw = request.raw
        route, request.params = self.router.match(raw.method, raw.path)
        request.route = route
        meta = route.meta
        if meta["query"] is not None:
            request.query = meta["query"].validate_query(raw.query)
        if meta["body"] is not None:
            request.body = meta["body"].validate(await read_json(raw, self.max_body_size))
        return await route.handler(request)

    def __repr__(self) -> str:
        return f"<App {self.title!r} {self.version} routes={len(self.routes())}>"


def compose(middlewares: Sequence[Middleware], handler: Handler) -> Handler:
    """One callable for the whole chain, built once: ``mw1(req, mw2(req, ... handler))``."""
    for mw in reversed(middlewares):
        handler = functools.partial(mw, call_next=handler)
    return handler


class _JSONErrors(RequestHandler):
    """aiohttp's connection handler, with JSON answers for what its parser refuses.

    A header line without a colon, a header over 8190 bytes, a negative
    Content-Length: aiohttp answers these before the app ever runs, by default
    with a text/plain body that echoes the client's bytes and a logged
    traceback. Here the answer is JSON like every other, and the log gets one
    line (the client's mistake is not our bug).
    """

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            self.log_exception("error handling request from %s", request.remote, exc_info=exc)
        else:
            _protocol_log.info("refused a malformed request from %s: %s", request.remote,
                               type(exc).__name__ if exc else status)
        if request.writer.output_size > 0:  # the answer has begun: only closing is left
            raise ConnectionError("response already started; closing the connection")
        phrase = HTTPStatus(status).phrase
        answer = json_response({"message": f"{phrase}: malformed HTTP request"
                                if status < 500 else phrase}, status)
        answer.force_close()  # the connection's framing can no longer be trusted
        return answer


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _JSONErrors(self, loop=self._loop, **self._kwargs)


_protocol_log = logging.getLogger("lab.http.protocol")


@contextlib.asynccontextmanager
async def serve(app: App, host: str = "127.0.0.1", port: int = 0,
                shutdown_timeout: float = 10.0) -> AsyncIterator[tuple[str, int]]:
    """Serve ``app`` on ``host:port`` while the ``async with`` body runs; yields (host, port).

    Port 0 picks a free port. On leaving, it stops accepting, lets requests in
    flight finish (up to ``shutdown_timeout`` seconds) and closes every connection.
    """
    # access_log=None: the lab logs requests itself (middleware.access_log).
    # lingering_time=0: when an answer leaves part of a body unread (a 413, a 400 for a
    # broken body), close the connection instead of reading and dropping the rest --
    # aiohttp would otherwise drain up to 10 s of it to find the next request.
    server = _Server(app, access_log=None, lingering_time=0)
    loop = asyncio.get_running_loop()
    listener = await loop.create_server(server, host, port, reuse_address=True)
    bound = listener.sockets[0].getsockname()
    try:
        yield bound[0], bound[1]
    finally:
        listener.close()  # no new connections from here on
        await server.shutdown(shutdown_timeout)  # in-flight requests finish, then close
        await listener.wait_closed()

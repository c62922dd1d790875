"""``python -m bench.http.serve --impl lab|aiohttp|fastapi|bare --port N``: one server to measure.

The HTTP load benchmark (``test_http_servers.py``) and the twins' contract test
(``tests/http/test_twins.py``) start each server in its own process with this
command. Every one seeds a fresh store with the same data (``dataset.py``),
listens on 127.0.0.1, writes no access log, runs on uvloop -- as each stack's
users run it in production -- prints one line once it listens, and stops
cleanly on SIGTERM or SIGINT.

``lab``      the Task API (``lab.api.app.build_app``) on the lab's REST layer.
``aiohttp``  the same three task endpoints on ``aiohttp.web.Application``.
``fastapi``  the same three on FastAPI and pydantic 2, served by uvicorn (httptools).
``bare``     ``aiohttp.web.Server`` answering one constant task-sized JSON body: no
             routing, no validation, no store -- the ceiling of the lab's own stack.

The endpoints: ``GET /tasks/{id}``, ``GET /tasks`` (status, userId, categoryId,
search, sort, page, limit, after) and ``POST /tasks``, each twin answering with
the lab's status codes (400, 404, 413, 415; ``tests/http/test_twins.py`` checks).
The twins are ``twin_aiohttp.py`` and ``twin_fastapi.py``; the in-process
benchmark (``test_http_inproc.py``) times the very same apps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator

import orjson
import uvicorn
from aiohttp import web

from bench.http.dataset import seeded_store
from bench.http.twin_aiohttp import aiohttp_app
from bench.http.twin_fastapi import fastapi_app
from lab.api.app import build_app
from lab.api.store import Store
from lab.cli import OneLineParser, port, run_server
from lab.http.app import serve

PROG = "python -m bench.http.serve"
HOST = "127.0.0.1"
BARE_TASK_ID = 1234  # the bare server answers this task's JSON, sized like a real answer
log = logging.getLogger("bench.http.serve")


# serving ------------------------------------------------------------------------
Ready = Callable[[int], None]


async def serve_lab(store: Store, port: int, ready: Ready, stop: asyncio.Event) -> None:
    logging.getLogger("lab.http.access").setLevel(logging.WARNING)  # access log off
    async with serve(build_app(store), HOST, port) as (_, bound):
        ready(bound)
        await stop.wait()


async def serve_aiohttp(store: Store, port: int, ready: Ready, stop: asyncio.Event) -> None:
    runner = web.AppRunner(aiohttp_app(store), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, HOST, port, reuse_address=True)
        await site.start()
        ready(runner.addresses[0][1])
        await stop.wait()
    finally:
        await runner.cleanup()  # stops accepting, lets requests in flight finish


class EmbeddedUvicorn(uvicorn.Server):
    """uvicorn leaving SIGTERM and SIGINT to this process, whose handler asks it to stop.

    Left to itself, uvicorn sets its own handlers while it serves and raises the
    signal again once it has stopped; one owner of the signals is simpler.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_fastapi(store: Store, port: int, ready: Ready, stop: asyncio.Event) -> None:
    config = uvicorn.Config(fastapi_app(store), host=HOST, port=port, loop="uvloop",
                            http="httptools", access_log=False, log_level="warning")
    server = EmbeddedUvicorn(config)
    # Bound here, so a port in use is an OSError like the other servers' (uvicorn
    # would log it and raise SystemExit from inside its task).
    listening = socket.create_server((HOST, port))  # SO_REUSEADDR, as the others
    serving = asyncio.create_task(server.serve(sockets=[listening]))
    while not server.started:
        if serving.done():
            await serving  # it could not start: let its error out
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    ready(listening.getsockname()[1])
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True  # uvicorn stops accepting, finishes requests in flight
    stopped.cancel()
    try:
        await serving
    finally:
        listening.close()  # uvicorn closed its server; the socket object is still ours


async def serve_bare(store: Store, port: int, ready: Ready, stop: asyncio.Event) -> None:
    body = orjson.dumps({"data": await store.get_task(BARE_TASK_ID)})

    async def answer(request: web.BaseRequest) -> web.Response:
        if request.body_exists:
            await request.read()  # a POST's body is still read, as any real handler would
        return web.Response(body=body, content_type="application/json")

    server = web.Server(answer, access_log=None)
    listener = await asyncio.get_running_loop().create_server(server, HOST, port,
                                                              reuse_address=True)
    try:
        ready(listener.sockets[0].getsockname()[1])
        await stop.wait()
    finally:
        listener.close()
        await server.shutdown(5.0)
        await listener.wait_closed()


IMPLS = {"lab": serve_lab, "aiohttp": serve_aiohttp, "fastapi": serve_fastapi,
         "bare": serve_bare}


async def run(impl: str, port: int) -> None:
    store = await seeded_store()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    def ready(bound: int) -> None:
        print(f"{PROG}: {impl} listening on http://{HOST}:{bound} ({store!r}, loop=uvloop)",
              flush=True)

    await IMPLS[impl](store, port, ready, stop)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog=PROG, description=(
        "Serve the Task API's task endpoints with one implementation, for the HTTP benchmark."))
    parser.add_argument("--impl", choices=IMPLS, required=True,
                        help="lab, aiohttp (aiohttp.web twin), fastapi (FastAPI on uvicorn "
                             "twin) or bare (aiohttp's low-level server, a constant answer)")
    parser.add_argument("--port", type=port, default=0,
                        help="TCP port on 127.0.0.1; 0 picks a free one (default: 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(message)s")
    # uvloop for every side, as each stack's users run it in production
    return run_server(PROG, f"{HOST}:{args.port}", "uvloop",
                      lambda loop_name: run(args.impl, args.port))

if __name__ == "__main__":
    sys.exit(main())

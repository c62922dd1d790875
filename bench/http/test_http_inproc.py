"""What one request costs inside the process, with no socket: the lab beside production.

Three steps of a request, each timed on both sides with the same input:

* **routing** ``GET /tasks/1234`` among every route of the Task API: the lab's
  ``Router.match`` (a dict for static paths, a segment tree for the rest)
  against aiohttp's ``UrlDispatcher.resolve`` with the same templates
  registered. ``resolve`` is a coroutine that never suspends, so it is run by
  hand (``send(None)``), which costs about what the ``await`` inside aiohttp
  costs; both sides get the path already parsed, as they do in a server.
* **validation** of a ``POST /tasks`` body: the lab's ``CreateTask.validate``
  (pure Python) against pydantic 2's ``model_validate`` of the FastAPI twin's
  model (compiled pydantic-core), same dict in, same rules.
* **a whole request**, ``GET /tasks/1234`` from request object to response
  object, middlewares and store included: the lab's ``App.__call__`` against
  the aiohttp.web twin's ``Application._handle``. Requests are made with
  aiohttp's ``make_mocked_request`` (then ``clone()``, a fresh request for
  each call, since a request caches what it has parsed); the lab's layer takes
  the same ``BaseRequest`` the low-level server would hand it.

One benchmark round is a loop over many operations; the harness divides the
median round by their number (ns/op, lower is better). No targets: these rows
explain the load benchmark's ratios, they are not goals of their own.
"""

from __future__ import annotations

import asyncio

import pytest
import uvloop
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_urldispatcher import UrlDispatcher

from bench.http.dataset import seeded_store
from bench.http.twin_aiohttp import aiohttp_app
from bench.http.twin_fastapi import NewTask
from bench.registry import Comparison
from lab.api.app import build_app
from lab.api.memory import MemoryStore
from lab.api.schemas import CreateTask

PATH = "/tasks/1234"
BODY = {"title": "Write the report", "description": "by Friday", "status": "in-progress",
        "userId": 42, "categoryId": 3}
LOOPS = 10_000  # routing and validation: operations per round
REQUESTS = 300  # whole requests per round
REQUEST_ROUNDS = 30


def _row(operation: str, slug: str, production: str, production_name: str) -> Comparison:
    return Comparison("http", operation, f"http/{slug}/lab", f"http/{slug}/{production}",
                      production_name)


COMPARISONS = [
    _row(f"route GET {PATH} (in process)", "route", "aiohttp", "aiohttp UrlDispatcher"),
    _row("validate a POST /tasks body (in process)", "validate", "pydantic",
         "pydantic 2 model_validate"),
    _row(f"whole request GET {PATH} (in process)", "request", "aiohttp",
         "aiohttp.web.Application"),
]


def run(benchmark, operation: str, slug: str, side: str, ops: int) -> None:
    benchmark.group = f"http: {operation}"
    benchmark.extra_info.update(id=f"http/{slug}/{side}", ops=ops)


async def _ignore(request):  # a handler for aiohttp's router; never called
    raise AssertionError("routing only")


@pytest.mark.parametrize("side", ["lab", "aiohttp"])
def test_route(benchmark, side):
    app = build_app(MemoryStore())
    run(benchmark, f"route GET {PATH}", "route", side, LOOPS)
    if side == "lab":
        match = app.router.match
        assert match("GET", PATH)[1] == {"id": 1234}

        def loop():
            for _ in range(LOOPS):
                match("GET", PATH)
    else:
        router = UrlDispatcher()
        for route in app.routes():  # the same templates: "/tasks/{id:int}" as "/tasks/{id}"
            router.add_route(route.method, route.openapi_path, _ignore)
        request = make_mocked_request("GET", PATH)
        resolve = router.resolve
        try:
            resolve(request).send(None)
        except StopIteration as done:
            assert done.value == {"id": "1234"}, done.value

        def loop():
            for _ in range(LOOPS):
                # not contextlib.suppress: its enter and exit would be timed with the routing
                try:  # noqa: SIM105
                    resolve(request).send(None)
                except StopIteration:  # how a coroutine that never suspends returns
                    pass

    benchmark(loop)


@pytest.mark.parametrize("side", ["lab", "pydantic"])
def test_validate(benchmark, side):
    run(benchmark, "validate a POST /tasks body", "validate", side, LOOPS)
    validate = CreateTask.validate if side == "lab" else NewTask.model_validate
    got = validate(BODY)
    assert (got if side == "lab" else got.model_dump(by_alias=True)) == BODY

    def loop():
        for _ in range(LOOPS):
            validate(BODY)

    benchmark(loop)


@pytest.fixture(scope="module")
def store():
    return asyncio.run(seeded_store())


@pytest.mark.parametrize("side", ["lab", "aiohttp"])
def test_whole_request(benchmark, side, store):
    run(benchmark, f"whole request GET {PATH}", "request", side, REQUESTS)
    if side == "lab":
        handle = build_app(store)
        template = make_mocked_request("GET", PATH)
    else:
        app = aiohttp_app(store)
        app.freeze()  # what starting a server does: the middleware chain is fixed
        handle = app._handle
        template = make_mocked_request("GET", PATH, app=app)

    async def handle_all(requests):
        for request in requests:
            response = await handle(request)
        return response

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        first = runner.run(handle_all([template.clone()]))
        assert first.status == 200 and b'"id":1234' in first.body, first.body

        def fresh_requests():
            return ([template.clone() for _ in range(REQUESTS)],), {}

        benchmark.pedantic(lambda requests: runner.run(handle_all(requests)),
                           setup=fresh_requests, rounds=REQUEST_ROUNDS, iterations=1)

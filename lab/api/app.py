"""The Task API assembled: the REST layer, the routes, the store, and how store errors answer.

``build_app(store)`` is all a server, a test or a benchmark needs::

    app = build_app(MemoryStore())
    async with serve(app, "127.0.0.1", 8001): ...

The middleware chain is the layer's default plus ``store_errors``, which sits
inside ``errors`` and turns the store's exceptions into HTTP answers, so no
handler has to: a duplicate email is a 409, a task naming a user that does not
exist is a 400 on that field, a store that cannot be reached is a 503.
"""

from __future__ import annotations

from aiohttp import web

from lab.api import categories, schemas, tasks, users
from lab.api.passwords import PasswordHasher
from lab.api.readcache import ReadCache
from lab.api.store import DuplicateEmail, Store, StoreUnavailable, UnknownReference
from lab.http.app import App
from lab.http.docs import add_docs
from lab.http.errors import Conflict, ServiceUnavailable, ValidationFailed
from lab.http.middleware import DEFAULT_CHAIN, Handler
from lab.http.request import DEFAULT_MAX_BODY_SIZE, Request
from lab.http.response import json_response

TITLE = "Task Management API"
VERSION = "2.0.0"  # challenge 2
_REFERENCED = {"userId": "user", "categoryId": "category"}
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def store_errors(request: Request, call_next: Handler) -> web.StreamResponse:
    """The store's exceptions as HTTP errors, for the ``errors`` middleware to answer."""
    try:
        return await call_next(request)
    except DuplicateEmail:
        raise Conflict("Email already in use") from None
    except UnknownReference as error:
        raise ValidationFailed([{
            "path": error.field,
            "message": f"no {_REFERENCED.get(error.field, 'record')} with id {error.value}",
        }]) from None
    except StoreUnavailable:
        raise ServiceUnavailable("The database is unavailable; try again shortly") from None


def build_app(store: Store, *, hasher: PasswordHasher | None = None,
              max_body_size: int = DEFAULT_MAX_BODY_SIZE, read_cache: ReadCache | None = None,
              instance: str | None = None) -> App:
    async def name_instance(request: Request, call_next: Handler) -> web.StreamResponse:
        response = await call_next(request)
        response.headers["X-Instance"] = app.instance  # read per request: a server may rename it
        return response

    async def bump_generation(request: Request, call_next: Handler) -> web.StreamResponse:
        response = await call_next(request)  # an exception (a 4xx, a 5xx) skips the bump
        if request.raw.method in WRITES and response.status < 300:
            # After the store's write, before the client hears of it: any read that starts
            # once this write is answered, on any instance, looks under the new generation.
            await read_cache.bump()  # type: ignore[union-attr] -- only chained with a cache
        return response

    # name_instance outermost, so errors carry the header too; bump_generation inside
    # `errors`, so only a handler that returned normally has written anything. Each is
    # chained only when asked for: an app that is one of several names itself (the
    # command line always does); one alone, as the HTTP benchmarks run it, pays nothing.
    names = () if instance is None else (name_instance,)
    bumps = () if read_cache is None else (bump_generation,)
    app = App(TITLE, VERSION, max_body_size=max_body_size,
              middlewares=(*names, *DEFAULT_CHAIN, *bumps, store_errors),
              description="Users, categories and tasks, on the lab's hand-built REST layer.")
    app.instance = instance

    @app.route("GET", "/health", responses={200: schemas.Health, 503: schemas.Error},
               summary="Is the API up, and can it reach its store?", tags=["health"])
    async def health(request: Request) -> web.Response:
        await store.check()
        return json_response({"status": "ok", "store": store.name})

    @app.route("GET", "/cache", docs=False, summary="This instance's read cache: state, counters")
    async def cache_status(request: Request) -> web.Response:
        status = {"enabled": False} if read_cache is None else read_cache.status()
        return json_response({"instance": app.instance, **status})

    users.add_routes(app, store, hasher or PasswordHasher())
    categories.add_routes(app, store)
    tasks.add_routes(app, store, read_cache)
    add_docs(app)
    return app

"""``/tasks``: list with filters and two kinds of paging, create, get, update, delete.

``GET /tasks`` turns its validated query into a ``TaskQuery`` for the store.
Page/limit answers carry ``total`` and ``totalPages``; every answer carries
``nextCursor`` when more tasks follow, and ``?after=<cursor>`` continues from
there by keyset, the cheap way to walk deep (``lab/http/pagination.py``).

With a ``ReadCache`` (challenge 4), the two reads answer through it: the body
is built by the same code either way, and the cache keeps those exact bytes
under the request's canonical key (``readcache.py`` says how and why). An
``X-Cache`` header tells where the answer came from: ``HIT`` (Redis), ``L1``,
``MISS`` (the store, then cached) or ``DEGRADED`` (the store; Redis did not answer).
"""

from __future__ import annotations

import orjson
from aiohttp import web

from lab.api import schemas
from lab.api.readcache import NOT_FOUND, Loader, ReadCache, list_key, task_key
from lab.api.store import Page, Store, TaskQuery
from lab.http.app import App
from lab.http.errors import BadRequest, NotFound, found
from lab.http.pagination import decode_cursor, encode_cursor, keyset_envelope, page_envelope
from lab.http.request import Request
from lab.http.response import JSON, created, no_content, ok

_ONE = {"responses": {200: schemas.envelope(schemas.Task)}, "tags": ["tasks"]}


def add_routes(app: App, store: Store, reads: ReadCache | None = None) -> None:
    @app.route("GET", "/tasks", query=schemas.TaskListQuery, tags=["tasks"],
               responses={200: schemas.cursor_page_of(schemas.Task)},
               summary="List tasks: filter, search, sort, page")
    async def list_tasks(request: Request) -> web.Response:
        query = task_query(request.query)  # a bad query is refused before any cache is asked

        async def load() -> bytes:
            return orjson.dumps(list_answer(query, await store.list_tasks(query)))

        return await _answer(reads, list_key(request.query), load)

    @app.route("POST", "/tasks", body=schemas.CreateTask, tags=["tasks"],
               responses={201: schemas.envelope(schemas.Task)}, summary="Create a task")
    async def create_task(request: Request) -> web.Response:
        return created(await store.create_task(request.body))

    @app.route("GET", "/tasks/{id:int}", summary="Get a task with its user and category", **_ONE)
    async def get_task(request: Request) -> web.Response:
        task_id = request.params["id"]

        async def load() -> bytes:
            task = await store.get_task(task_id)
            return NOT_FOUND if task is None else orjson.dumps({"data": task})

        return await _answer(reads, task_key(task_id), load, f"Task {task_id} not found")

    @app.route("PUT", "/tasks/{id:int}", body=schemas.UpdateTask,
               summary="Change a task's fields", **_ONE)
    async def update_task(request: Request) -> web.Response:
        task_id = request.params["id"]
        changed = await store.update_task(task_id, request.body)
        return ok(found(changed, f"Task {task_id} not found"))

    @app.route("DELETE", "/tasks/{id:int}", responses={204: None}, tags=["tasks"],
               summary="Delete a task")
    async def delete_task(request: Request) -> web.Response:
        task_id = request.params["id"]
        found(await store.delete_task(task_id), f"Task {task_id} not found")
        return no_content()


async def _answer(reads: ReadCache | None, what: str, load: Loader,
                  not_found: str = "") -> web.Response:
    """200 with the body ``load`` makes, through the read cache if there is one.

    ``load`` answers ``NOT_FOUND`` for a missing task, and that is a 404 with ``not_found``.
    """
    if reads is None:
        body, source = await load(), None
    else:
        answer = await reads.get(what, load)
        body, source = answer.body, answer.source
    if body == NOT_FOUND:
        raise NotFound(not_found)
    response = web.Response(body=body, content_type=JSON)  # as ok() and json_response() make it
    if source is not None:
        response.headers["X-Cache"] = source.upper()
    return response


def list_answer(query: TaskQuery, page: Page) -> dict:
    """The ``GET /tasks`` body: a page envelope, or a keyset one when ``after`` was given."""
    last = page.items[-1] if page.has_more and page.items else None
    cursor = None if last is None else encode_cursor(last["createdAt"], last["id"])
    if query.after is not None:
        return keyset_envelope(page.items, query.limit, cursor)
    # A page answer carries a cursor too, so a client can start by page and walk on by keyset.
    return {**page_envelope(page.items, page.total, query.page, query.limit),
            "nextCursor": cursor}


def task_query(query: dict) -> TaskQuery:
    """The validated query string as the store's ``TaskQuery``."""
    after = None
    if "after" in query:
        if query["page"] != 1:
            raise BadRequest("Use either 'page' or 'after', not both")
        after = decode_cursor(query["after"])
    return TaskQuery(status=query.get("status"), user_id=query.get("userId"),
                     category_id=query.get("categoryId"), search=query.get("search"),
                     newest_first=query["sort"] == "desc", page=query["page"],
                     limit=query["limit"], after=after)


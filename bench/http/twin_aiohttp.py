"""The aiohttp.web twin of the Task API's three benchmarked endpoints.

``GET /tasks/{id}``, ``GET /tasks`` and ``POST /tasks`` as an aiohttp.web user
writes them: a ``RouteTableDef``, one ``@web.middleware`` that answers errors
as JSON and sets ``X-Request-Id`` and ``Server-Timing`` (the lab's answers
carry both), ``web.json_bytes_response`` with orjson, ``request.json`` with
``client_max_size`` for the 413.

Validation is shared with the lab -- ``CreateTask.validate``,
``TaskListQuery.validate_query``, ``task_query`` and ``list_answer`` -- so the
comparison isolates the framework: aiohttp's ``UrlDispatcher``,
``web.Request``, its middleware machinery and body reading, against the lab's
router, request and middleware chain. ``tests/http/test_twins.py`` checks it
answers every request with the lab's status code.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import orjson
from aiohttp import web

from lab.api.schemas import CreateTask, TaskListQuery
from lab.api.store import Store, UnknownReference
from lab.api.tasks import list_answer, task_query
from lab.http.errors import HTTPError, ValidationFailed
from lab.http.middleware import new_request_id
from lab.http.request import DEFAULT_MAX_BODY_SIZE, is_json

log = logging.getLogger("bench.http.twin_aiohttp")


def unknown_reference(error: UnknownReference) -> dict[str, Any]:
    """The lab's 400 body for a task naming a user or category that does not exist."""
    what = {"userId": "user", "categoryId": "category"}.get(error.field, "record")
    return {"message": "Validation error",
            "errors": [{"path": error.field, "message": f"no {what} with id {error.value}"}]}


_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.json_bytes_response(payload, status=status, dumps=orjson.dumps)


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """Errors as JSON; ``X-Request-Id`` and ``Server-Timing`` on every answer."""
    started = time.perf_counter()
    given = request.headers.get("X-Request-Id")
    request_id = given if given and _CLIENT_ID.fullmatch(given) else new_request_id()
    try:
        response = await handler(request)
    except web.HTTPException as error:  # aiohttp's own: unknown route, 405, 413, 415 ...
        response = _json({"message": error.text}, error.status)
        if "Allow" in error.headers:
            response.headers["Allow"] = error.headers["Allow"]
    except HTTPError as error:  # the lab's validation, shared by this twin
        response = _json(error.body(), error.status)
    except UnknownReference as error:
        response = _json(unknown_reference(error), 400)
    except Exception:
        log.exception("unhandled error in %s %s (request id %s)",
                      request.method, request.path, request_id)
        response = _json({"message": "Internal server error"}, 500)
    response.headers["X-Request-Id"] = request_id
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.3f}"
    return response


def aiohttp_app(store: Store) -> web.Application:
    """The three task endpoints as an aiohttp.web user writes them.

    Validation is shared with the lab -- ``CreateTask.validate``,
    ``TaskListQuery.validate_query`` and ``task_query`` -- so that the comparison
    isolates the framework: aiohttp's ``UrlDispatcher``, ``web.Request``, its
    middleware machinery, its body reading (``client_max_size`` → 413) and its
    HTTP exceptions, against the lab's router, request and middleware chain.
    """
    routes = web.RouteTableDef()

    @routes.get("/tasks/{id}")
    async def get_task(request: web.Request) -> web.Response:
        text = request.match_info["id"]
        if not (text.isascii() and text.isdigit() and len(text) <= 18):
            raise ValidationFailed([{"path": "id", "message": "must be an integer"}])
        task_id = int(text)
        task = await store.get_task(task_id)
        if task is None:
            raise web.HTTPNotFound(text=f"Task {task_id} not found")
        return _json({"data": task})

    @routes.get("/tasks")
    async def list_tasks(request: web.Request) -> web.Response:
        query = task_query(TaskListQuery.validate_query(request.query))
        return _json(list_answer(query, await store.list_tasks(query)))

    @routes.post("/tasks")
    async def create_task(request: web.Request) -> web.Response:
        if not is_json(request.content_type):  # before reading a byte of the body
            raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/json")
        try:
            body = await request.json(loads=orjson.loads)  # 413 past client_max_size
        except ValueError:  # orjson.JSONDecodeError, or UnicodeDecodeError
            raise web.HTTPBadRequest(text="Request body is not valid JSON") from None
        return _json({"data": await store.create_task(CreateTask.validate(body))}, 201)

    app = web.Application(middlewares=[json_errors], client_max_size=DEFAULT_MAX_BODY_SIZE)
    app.add_routes(routes)
    return app

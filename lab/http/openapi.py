"""The OpenAPI 3 document, generated from the routes and schemas the app declares.

Nothing is written twice: the schema that validates ``POST /tasks`` is the one
the document shows, so the two cannot drift apart. Per route the document
lists its path parameters (from the template: ``{id:int}`` is an integer),
its query parameters (from the query schema), its JSON body, the responses it
declares, and the errors the layer itself may answer with:

* 400 when the route takes any input (a path parameter, a query, a body);
* 404 when it has a path parameter (the resource may not exist);
* 413 and 415 when it takes a body;
* 500 and 503 always: a bug is possible anywhere, and so is a dependency that is down.

Routes declared with ``docs=False`` (the document itself, the docs page) are left out.
FastAPI builds the same document from type hints and pydantic models.
"""

from __future__ import annotations

import re
from typing import Any

from lab.http.router import MAX_INT_DIGITS, Route
from lab.http.schema import Array, Object, Schema, String

OPENAPI_VERSION = "3.0.3"  # what Swagger UI 4 renders and schemathesis reads

ErrorDetail = Schema("ErrorDetail", {"path": String(), "message": String()})
Error = Schema("Error", {
    "message": String(description="What went wrong, written for the client"),
    "errors": Array(Object(ErrorDetail), required=False,
                    description="For validation errors: one entry per problem"),
}, unknown="ignore")

_LAYER_ERRORS = {
    400: "Bad request: invalid path parameter, query, or body",
    404: "Not found",
    413: "Request body too large",
    415: "Content-Type is not application/json",
    500: "Internal server error (no details are given)",
    503: "A dependency (the database) is unavailable; try again shortly",
}
MAX_INT_PARAMETER = 10**MAX_INT_DIGITS - 1  # what the router's int converter accepts
_PARAM = re.compile(r"{(\w+)(?::(\w+))?}")


def document(title: str, version: str, routes: list[Route], description: str = "") -> dict:
    components: dict[str, Any] = {"Error": Error.openapi()}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if route.meta.get("docs", True):
            paths.setdefault(route.openapi_path, {})[route.method.lower()] = (
                _operation(route, components))
    info = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {"openapi": OPENAPI_VERSION, "info": info, "paths": paths,
            "components": {"schemas": components}}


def _operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    meta = route.meta
    operation: dict[str, Any] = {"operationId": meta["name"]}
    if meta.get("summary"):
        operation["summary"] = meta["summary"]
    if meta.get("tags"):
        operation["tags"] = meta["tags"]
    parameters = [_path_parameter(name, kind) for name, kind in _PARAM.findall(route.path)]
    if meta.get("query") is not None:
        parameters += meta["query"].parameters("query")
    if parameters:
        operation["parameters"] = parameters
    if meta.get("body") is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _reference(meta["body"], components)}}}

    responses: dict[str, Any] = {}
    for status, schema in meta["responses"].items():
        answer: dict[str, Any] = {"description": _describe(status)}
        if schema is not None:
            answer["content"] = {"application/json": {"schema": _reference(schema, components)}}
        responses[str(status)] = answer
    for status in _layer_errors(route):
        responses.setdefault(str(status), {
            "description": _LAYER_ERRORS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _layer_errors(route: Route) -> list[int]:
    meta = route.meta
    statuses = [500, 503]
    if route.params or meta.get("query") is not None or meta.get("body") is not None:
        statuses.append(400)
    if route.params:
        statuses.append(404)
    if meta.get("body") is not None:
        statuses += [413, 415]
    return statuses


def _path_parameter(name: str, kind: str) -> dict[str, Any]:
    schema = ({"type": "integer", "minimum": 0, "maximum": MAX_INT_PARAMETER} if kind == "int"
              else {"type": "string"})
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _reference(schema: Schema, components: dict[str, Any]) -> dict[str, str]:
    components.setdefault(schema.name, schema.openapi())
    return {"$ref": f"#/components/schemas/{schema.name}"}


def _describe(status: int) -> str:
    return {200: "OK", 201: "Created", 204: "No content", 404: "Not found",
            409: "Conflict", 503: "Service unavailable"}.get(status, str(status))

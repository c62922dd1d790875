"""``/openapi.json`` and ``/api-docs`` of the Task API, served on 127.0.0.1 port 0.

The document is checked twice: against the OpenAPI 3.0 meta-schema (the copy
schemathesis ships, run by ``jsonschema_rs``; ``openapi_spec_validator`` is not in the
venv), and by hand for what a meta-schema cannot see -- that every route is there with
its methods, path and query parameters, closed request bodies, references that resolve,
and no ``password`` in anything a response can carry.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jsonschema_rs
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_30

from lab.api.app import TITLE, VERSION, build_app
from lab.api.memory import MemoryStore
from lab.api.passwords import PasswordHasher
from lab.http.app import serve

pytestmark = pytest.mark.integration

TIMEOUT = 5
ROUTES = {
    "/health": {"get"},
    "/users": {"get", "post"},
    "/users/{id}": {"get", "put", "delete"},
    "/categories": {"get", "post"},
    "/categories/{id}": {"get", "put", "delete"},
    "/tasks": {"get", "post"},
    "/tasks/{id}": {"get", "put", "delete"},
}
BODIES = {  # operation → (the schema's required fields, whether at least one field is needed)
    ("/users", "post"): ({"name", "email", "password"}, False),
    ("/users/{id}", "put"): (set(), True),
    ("/categories", "post"): ({"name"}, False),
    ("/categories/{id}", "put"): (set(), True),
    ("/tasks", "post"): ({"title", "userId"}, False),
    ("/tasks/{id}", "put"): (set(), True),
}


@pytest.fixture
async def base() -> AsyncIterator[str]:
    app = build_app(MemoryStore(), hasher=PasswordHasher(n=2**4))
    async with serve(app, "127.0.0.1", 0) as (host, port):
        yield f"http://{host}:{port}"


@pytest.fixture
async def client(base: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base, timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as s:
        yield s


@pytest.fixture
async def doc(client: aiohttp.ClientSession) -> dict[str, Any]:
    async with client.get("/openapi.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        return json.loads(await response.read())


def operations(doc: dict[str, Any]):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def resolve(doc: dict[str, Any], node: Any, depth: int = 0) -> Any:
    """``node`` with every ``$ref`` replaced by what it points to, recursively."""
    assert depth < 50, "a $ref cycle"
    if isinstance(node, list):
        return [resolve(doc, item, depth + 1) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return resolve(doc, follow(doc, node["$ref"]), depth + 1)
    return {key: resolve(doc, value, depth + 1) for key, value in node.items()}


def follow(doc: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are expected: {ref}"
    target: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(target, dict) and part in target, f"{ref} does not resolve"
        target = target[part]
    return target


def refs(node: Any):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


# -- the document, as a whole -------------------------------------------------------------------

def meta_schema_errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema_rs.Draft4Validator(OPENAPI_30)
    return [f"{list(error.instance_path)}: {error.message}" for error in validator.iter_errors(doc)]


async def test_the_document_is_valid_openapi_3_0(doc):
    assert re.fullmatch(r"3\.0\.\d+", doc["openapi"])
    assert doc["info"]["title"] == TITLE
    assert doc["info"]["version"] == VERSION
    assert meta_schema_errors(doc) == []


async def test_the_meta_schema_check_does_catch_a_broken_document(doc):
    # The check above is worth something only if it can fail.
    broken = copy.deepcopy(doc)
    del broken["paths"]["/users"]["get"]["responses"]
    broken["paths"]["/tasks"]["get"]["parameters"][0]["in"] = "body"
    assert len(meta_schema_errors(broken)) >= 2


async def test_every_reference_resolves_and_every_component_is_used(doc):
    used = set(refs(doc))
    for ref in used:
        follow(doc, ref)
    declared = {f"#/components/schemas/{name}" for name in doc["components"]["schemas"]}
    assert declared <= used, declared - used


async def test_every_route_of_the_task_api_is_listed_with_its_methods(doc):
    assert {path: set(item) for path, item in doc["paths"].items()} == ROUTES


async def test_the_docs_own_routes_are_not_in_the_document(doc):
    assert not [path for path in doc["paths"]
                if path.startswith(("/openapi", "/api-docs"))]
    assert "/api-docs/{file}" not in json.dumps(doc)


async def test_operation_ids_are_present_and_unique(doc):
    ids = [operation["operationId"] for _, _, operation in operations(doc)]
    assert all(ids)
    assert len(set(ids)) == len(ids)


async def test_path_parameters_match_the_templates(doc):
    for path, method, operation in operations(doc):
        in_template = re.findall(r"{(\w+)}", path)
        declared = [p for p in operation.get("parameters", []) if p["in"] == "path"]
        assert [p["name"] for p in declared] == in_template, (method, path)
        for parameter in declared:
            assert parameter["required"] is True
            assert parameter["schema"]["type"] == "integer"


async def test_every_operation_declares_the_errors_the_layer_can_answer(doc):
    for path, method, operation in operations(doc):
        responses = operation["responses"]
        expected = {"500"}
        if "{id}" in path:
            expected |= {"400", "404"}
        if "requestBody" in operation:
            expected |= {"400", "413", "415"}
        if operation.get("parameters"):
            expected |= {"400"}
        assert expected <= set(responses), (method, path, sorted(responses))
        for status in expected:
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}
        assert all(answer.get("description") for answer in responses.values())
    assert "409" in doc["paths"]["/users"]["post"]["responses"]  # a duplicate email
    assert "409" in doc["paths"]["/users/{id}"]["put"]["responses"]
    assert set(doc["paths"]["/users/{id}"]["delete"]["responses"]) >= {"204"}
    assert "content" not in doc["paths"]["/users/{id}"]["delete"]["responses"]["204"]


# -- query parameters ---------------------------------------------------------------------------

def query_parameters(doc: dict[str, Any], path: str, method: str) -> dict[str, dict]:
    parameters = doc["paths"][path][method].get("parameters", [])
    return {p["name"]: p for p in parameters if p["in"] == "query"}


async def test_the_task_list_documents_its_filters_sort_and_paging(doc):
    query = query_parameters(doc, "/tasks", "get")
    assert set(query) == {"status", "userId", "categoryId", "search", "sort", "page", "limit",
                          "after"}
    assert not any(p["required"] for p in query.values())
    assert query["status"]["schema"]["enum"] == ["pending", "in-progress", "completed"]
    assert query["sort"]["schema"] == {"type": "string", "enum": ["asc", "desc"],
                                       "default": "desc", "description": "by creation time"}
    assert {k: query["limit"]["schema"][k] for k in ("type", "minimum", "maximum", "default")} == {
        "type": "integer", "minimum": 1, "maximum": 100, "default": 10}
    assert {k: query["page"]["schema"][k] for k in ("type", "minimum", "default")} == {
        "type": "integer", "minimum": 1, "default": 1}
    for name in ("userId", "categoryId"):
        assert query[name]["schema"]["type"] == "integer"
        assert query[name]["schema"]["minimum"] == 1
    assert query["search"]["schema"]["type"] == query["after"]["schema"]["type"] == "string"


@pytest.mark.parametrize("path", ["/users", "/categories"])
async def test_the_other_lists_document_page_and_limit(doc, path):
    query = query_parameters(doc, path, "get")
    assert set(query) == {"page", "limit"}
    assert query["limit"]["schema"]["maximum"] == 100


async def test_only_the_lists_take_a_query(doc):
    with_query = {(path, method) for path, method, _ in operations(doc)
                  if query_parameters(doc, path, method)}
    assert with_query == {("/users", "get"), ("/categories", "get"), ("/tasks", "get")}


# -- request bodies -----------------------------------------------------------------------------

async def test_request_bodies_are_json_objects_that_refuse_unknown_fields(doc):
    with_body = {(path, method) for path, method, op in operations(doc) if "requestBody" in op}
    assert with_body == set(BODIES)
    for (path, method), (required, at_least_one) in BODIES.items():
        body = doc["paths"][path][method]["requestBody"]
        assert body["required"] is True
        assert set(body["content"]) == {"application/json"}
        schema = resolve(doc, body["content"]["application/json"]["schema"])
        assert schema["type"] == "object", (method, path)
        assert schema["additionalProperties"] is False, (method, path)
        assert set(schema.get("required", [])) == required, (method, path)
        assert required <= set(schema["properties"])
        if at_least_one:
            assert schema["minProperties"] == 1, (method, path)


async def test_the_request_schemas_carry_the_field_rules(doc):
    schemas = doc["components"]["schemas"]
    user = schemas["CreateUser"]["properties"]
    assert user["password"]["minLength"] == 6
    assert user["email"]["format"] == "email"
    assert (user["name"]["minLength"], user["name"]["maxLength"]) == (1, 100)
    assert set(schemas["UpdateUser"]["properties"]) == {"name", "email"}  # no password
    task = schemas["CreateTask"]["properties"]
    assert (task["title"]["minLength"], task["title"]["maxLength"]) == (1, 200)
    assert task["description"]["maxLength"] == 1000
    assert task["status"]["enum"] == ["pending", "in-progress", "completed"]
    assert task["status"]["default"] == "pending"
    assert task["userId"]["type"] == task["categoryId"]["type"] == "integer"
    assert task["categoryId"]["nullable"] is True


# -- no password in any answer ------------------------------------------------------------------

async def test_no_response_schema_mentions_a_password(doc):
    answers = [resolve(doc, response) for _, _, operation in operations(doc)
               for response in operation["responses"].values()]
    text = json.dumps(answers).lower()
    assert '"email"' in text and '"createdat"' in text  # users are in there, so it can see them
    assert "password" not in text
    assert "hash" not in text
    request_text = json.dumps([resolve(doc, op.get("requestBody", {}))
                               for _, _, op in operations(doc)]).lower()
    assert "password" in request_text  # ...while the create body does take one


# -- /api-docs ----------------------------------------------------------------------------------

CONTENT_TYPES = {".css": {"text/css"}, ".js": {"application/javascript", "text/javascript"},
                 ".png": {"image/png"}}
MAGIC = {".png": b"\x89PNG\r\n\x1a\n"}


async def docs_page(client: aiohttp.ClientSession) -> str:
    async with client.get("/api-docs") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        assert response.charset == "utf-8"
        return await response.text()


async def test_the_docs_page_names_no_remote_url(client):
    page = await docs_page(client)
    assert "swagger-ui" in page
    assert not re.search(r"https?:", page, re.IGNORECASE)
    assert not re.search(r"""(?:src|href|url)\s*[=:(]\s*["']?//""", page, re.IGNORECASE)


async def test_the_docs_page_loads_only_local_assets_and_each_one_answers(client):
    page = await docs_page(client)
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page, re.IGNORECASE)
    assert {"/api-docs/swagger-ui.css", "/api-docs/swagger-ui-bundle.js",
            "/api-docs/swagger-ui-standalone-preset.js"} <= set(assets)
    for asset in assets:
        assert asset.startswith("/api-docs/") and "/" not in asset[len("/api-docs/"):], asset
        async with client.get(asset) as response:
            assert response.status == 200, asset
            body = await response.read()
            extension = asset[asset.rindex("."):]
            assert response.content_type in CONTENT_TYPES[extension], (asset,
                                                                        response.content_type)
        assert len(body) > 100, asset
        assert body.startswith(MAGIC.get(extension, b"")), asset
    async with client.get("/api-docs/swagger-ui-bundle.js") as response:
        assert b"SwaggerUIBundle" in await response.read()


async def test_the_docs_page_renders_this_servers_document(client):
    page = await docs_page(client)
    assert re.search(r"""url:\s*["']/openapi\.json["']""", page)
    assert TITLE in page


async def test_the_docs_page_never_calls_swaggers_online_validator(client):
    # Swagger UI's default validatorUrl sends the document's address to
    # validator.swagger.io whenever the page is not served from localhost.
    assert re.search(r"validatorUrl:\s*null", await docs_page(client))


@pytest.mark.parametrize("name", [
    "index.html", "swagger-initializer.js", "swagger-ui.js", "swagger-ui-bundle.js.map",
    "oauth2-redirect.html", "nothing.css", "SWAGGER-UI.CSS", "__init__.py"])
async def test_an_unlisted_asset_is_a_json_404(client, name):
    async with client.get(f"/api-docs/{name}") as response:
        assert response.status == 404
        assert response.content_type == "application/json"
        body = await response.json()
    assert set(body) == {"message"}


async def raw_get(base: str, target: str) -> tuple[int, bytes, bytes]:
    """GET ``target`` exactly as written (no client normalises ``..`` or decodes ``%2e``)."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                     .encode("ascii"))
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)  # up to the server's close
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), head, body


@pytest.mark.parametrize("target", [
    "/api-docs/..%2Fsetup.cfg", "/api-docs/%2e%2e%2fx", "/api-docs/..%2F..%2Fsetup.cfg",
    "/api-docs/%2e%2e/%2e%2e/setup.cfg", "/api-docs/../../setup.cfg", "/api-docs/..%5csetup.cfg",
    "/api-docs/%2e%2e", "/api-docs/..", "/api-docs/.%2Fswagger-ui.css",
    "/api-docs/swagger-ui.css%00.png", "/api-docs//etc/passwd", "/api-docs/%2Fetc%2Fpasswd"])
async def test_path_traversal_is_a_json_404(base, target):
    status, head, body = await raw_get(base, target)
    assert status == 404, (target, head, body[:200])
    assert b"application/json" in head.lower()
    assert set(json.loads(body)) == {"message"}
    assert b"[metadata]" not in body and b"root:" not in body

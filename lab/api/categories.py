"""``/categories``: list, create, get, update, delete.

Deleting a category keeps its tasks; their ``categoryId`` becomes null.
"""

from __future__ import annotations

from aiohttp import web

from lab.api import schemas
from lab.api.store import Store
from lab.http.app import App
from lab.http.errors import found
from lab.http.pagination import page_envelope
from lab.http.request import Request
from lab.http.response import created, json_response, no_content, ok

_ONE = {"responses": {200: schemas.envelope(schemas.Category)}, "tags": ["categories"]}


def add_routes(app: App, store: Store) -> None:
    @app.route("GET", "/categories", query=schemas.PageQuery, tags=["categories"],
               responses={200: schemas.page_of(schemas.Category)}, summary="List categories")
    async def list_categories(request: Request) -> web.Response:
        page, limit = request.query["page"], request.query["limit"]
        found = await store.list_categories(page, limit)
        return json_response(page_envelope(found.items, found.total, page, limit))

    @app.route("POST", "/categories", body=schemas.CreateCategory, tags=["categories"],
               responses={201: schemas.envelope(schemas.Category)}, summary="Create a category")
    async def create_category(request: Request) -> web.Response:
        return created(await store.create_category(request.body["name"]))

    @app.route("GET", "/categories/{id:int}", summary="Get a category", **_ONE)
    async def get_category(request: Request) -> web.Response:
        category_id = request.params["id"]
        return ok(found(await store.get_category(category_id), f"Category {category_id} not found"))

    @app.route("PUT", "/categories/{id:int}", body=schemas.UpdateCategory,
               summary="Rename a category", **_ONE)
    async def update_category(request: Request) -> web.Response:
        category_id = request.params["id"]
        category = await store.update_category(category_id, request.body)
        return ok(found(category, f"Category {category_id} not found"))

    @app.route("DELETE", "/categories/{id:int}", responses={204: None}, tags=["categories"],
               summary="Delete a category; its tasks stay, with categoryId null")
    async def delete_category(request: Request) -> web.Response:
        category_id = request.params["id"]
        found(await store.delete_category(category_id), f"Category {category_id} not found")
        return no_content()


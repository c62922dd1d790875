"""``/users``: list, create, get, update, delete.

A password is hashed in a thread (``passwords.py`` says why) before the store
sees it, and no answer ever carries it or its hash: the store's user record
has no such field. Emails are unique compared case-insensitively; a clash is
a 409.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from lab.api import schemas
from lab.api.passwords import PasswordHasher
from lab.api.store import Store
from lab.http.app import App
from lab.http.errors import found
from lab.http.pagination import page_envelope
from lab.http.request import Request
from lab.http.response import created, json_response, no_content, ok

_ONE = {"responses": {200: schemas.envelope(schemas.User)}, "tags": ["users"]}


def add_routes(app: App, store: Store, hasher: PasswordHasher) -> None:
    @app.route("GET", "/users", query=schemas.PageQuery, tags=["users"],
               responses={200: schemas.page_of(schemas.User)}, summary="List users")
    async def list_users(request: Request) -> web.Response:
        page, limit = request.query["page"], request.query["limit"]
        found = await store.list_users(page, limit)
        return json_response(page_envelope(found.items, found.total, page, limit))

    @app.route("POST", "/users", body=schemas.CreateUser, tags=["users"],
               responses={201: schemas.envelope(schemas.User), 409: schemas.Error},
               summary="Create a user")
    async def create_user(request: Request) -> web.Response:
        body = request.body
        password_hash = await asyncio.to_thread(hasher.hash, body["password"])
        return created(await store.create_user(body["name"], body["email"], password_hash))

    @app.route("GET", "/users/{id:int}", summary="Get a user", **_ONE)
    async def get_user(request: Request) -> web.Response:
        user_id = request.params["id"]
        return ok(found(await store.get_user(user_id), f"User {user_id} not found"))

    @app.route("PUT", "/users/{id:int}", body=schemas.UpdateUser, tags=["users"],
               responses={200: schemas.envelope(schemas.User), 409: schemas.Error},
               summary="Change a user's name or email")
    async def update_user(request: Request) -> web.Response:
        user_id = request.params["id"]
        changed = await store.update_user(user_id, request.body)
        return ok(found(changed, f"User {user_id} not found"))

    @app.route("DELETE", "/users/{id:int}", responses={204: None}, tags=["users"],
               summary="Delete a user; their tasks stay, with userId null")
    async def delete_user(request: Request) -> web.Response:
        user_id = request.params["id"]
        found(await store.delete_user(user_id), f"User {user_id} not found")
        return no_content()


"""``/openapi.json`` and ``/api-docs``: the document and a page that renders it, offline.

The page is Swagger UI, served from the files of the ``swagger-ui-bundle``
package installed with the lab -- no CDN, so it works with no network
(``validatorUrl: null`` too: by default Swagger UI would send the document's
address to validator.swagger.io whenever the host is not localhost). Only
the few files the page loads are served, by name from a fixed list, so no
request can reach any other file on disk.

The document is generated once, on its first request, and kept as bytes: the
routes do not change while the server runs.
"""

from __future__ import annotations

from pathlib import Path

import orjson
from aiohttp import web

from lab.http.app import App
from lab.http.errors import NotFound
from lab.http.openapi import document
from lab.http.request import Request

_ASSETS = {  # file name → Content-Type
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui-standalone-preset.js": "application/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} — API docs</title>
  <link rel="stylesheet" href="/api-docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/api-docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api-docs/swagger-ui-bundle.js"></script>
  <script src="/api-docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "StandaloneLayout"
    }});
  </script>
</body>
</html>
"""


def assets_dir() -> Path:
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def add_docs(app: App) -> None:
    """Add ``GET /openapi.json``, ``GET /api-docs`` and its assets to ``app``."""
    cached: dict[str, bytes] = {}
    page = _PAGE.format(title=app.title).encode()

    @app.route("GET", "/openapi.json", docs=False)
    async def openapi_json(request: Request) -> web.Response:
        if "doc" not in cached:
            cached["doc"] = orjson.dumps(
                document(app.title, app.version, app.routes(), app.description))
        return web.Response(body=cached["doc"], content_type="application/json")

    @app.route("GET", "/api-docs", docs=False)
    async def api_docs(request: Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    @app.route("GET", "/api-docs/{file}", docs=False)
    async def api_docs_asset(request: Request) -> web.Response:
        name = request.params["file"]
        if name not in _ASSETS:
            raise NotFound(f"No such file: /api-docs/{name}")
        if name not in cached:
            cached[name] = (assets_dir() / name).read_bytes()
        return web.Response(body=cached[name], content_type=_ASSETS[name],
                            headers={"Cache-Control": "public, max-age=3600"})

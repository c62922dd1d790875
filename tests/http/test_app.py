"""The HTTP layer over real sockets: a small app of its own, served on 127.0.0.1 port 0.

Most requests go through aiohttp's client. The ones a polite client cannot send -- no
Content-Type at all, a huge declared length with no body behind it, a chunked body that
never ends, a header with non-ASCII bytes -- are written by hand on a raw socket, and so is
HEAD, to see that not one byte of body follows the headers.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from lab.http import middleware
from lab.http.app import App, serve
from lab.http.errors import NotFound
from lab.http.request import Request
from lab.http.response import created, ok
from lab.http.schema import Enum, Integer, Schema, String

pytestmark = pytest.mark.integration

TIMEOUT = 5  # seconds: no test waits longer for any one thing
MAX_BODY = 1024  # the test app's limit, small so that "too large" is cheap to send
JSON = "application/json"

ItemQuery = Schema("ItemQuery", {
    "page": Integer(minimum=1, default=1),
    "limit": Integer(minimum=1, maximum=100, default=10),
    "color": Enum("red", "green", required=False),
})
NewItem = Schema("NewItem", {
    "name": String(min_length=1, max_length=50),
    "qty": Integer(minimum=0, default=1),
})


class Secret(RuntimeError):
    """What a buggy handler raises; its text must never reach a client."""


SECRET = "dsn=postgres://admin:hunter2@db"


def make_app(**options) -> App:
    app = App("Test app", "0.1", max_body_size=MAX_BODY, **options)

    @app.route("GET", "/items", query=ItemQuery)
    async def list_items(request: Request):
        return ok(request.query)

    @app.route("POST", "/items", body=NewItem, responses={201: None})
    async def create_item(request: Request):
        return created(request.body)

    @app.route("GET", "/items/{id:int}")
    async def get_item(request: Request):
        return ok({"id": request.params["id"]})

    @app.route("PUT", "/items/{id:int}")
    async def put_item(request: Request):
        return ok({"id": request.params["id"]})

    @app.route("DELETE", "/items/{id:int}")
    async def delete_item(request: Request):
        return ok(None)

    @app.route("GET", "/boom")
    async def boom(request: Request):
        raise Secret(SECRET)

    return app


@pytest.fixture
async def port() -> AsyncIterator[int]:
    async with serve(make_app(), "127.0.0.1", 0) as (_, bound):
        yield bound


@pytest.fixture
async def client(port: int) -> AsyncIterator[aiohttp.ClientSession]:
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", timeout=timeout) as session:
        yield session


async def call(client: aiohttp.ClientSession, method: str, path: str, **kwargs):
    """``(status, headers, parsed JSON body)``."""
    async with client.request(method, path, **kwargs) as response:
        assert response.content_type == JSON, (response.status, await response.text())
        return response.status, response.headers, await response.json()


# -- raw HTTP/1.1 on a socket -------------------------------------------------------------------

async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status, headers = await read_head(reader)
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), TIMEOUT)
    return status, headers, body


async def exchange(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as is and read one answer; the connection stays open until then."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await read_answer(reader)
    finally:
        writer.close()
        await writer.wait_closed()


def post_head(*headers: str) -> bytes:
    lines = ["POST /items HTTP/1.1", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# -- routing ------------------------------------------------------------------------------------

async def test_an_unknown_route_is_a_json_404(client):
    status, _, body = await call(client, "GET", "/nowhere")
    assert status == 404
    assert body == {"message": "Route GET /nowhere not found"}


async def test_a_known_path_with_the_wrong_method_is_405_with_the_exact_allow_header(client):
    status, headers, body = await call(client, "POST", "/items/3")
    assert status == 405
    assert headers["Allow"] == "DELETE, GET, HEAD, PUT"
    assert body == {"message": "Method POST not allowed"}


async def test_head_on_a_get_route_sends_the_headers_of_get_and_no_body(client, port):
    async with client.get("/items/7") as response:
        get_body = await response.read()
    assert get_body == b'{"data":{"id":7}}'

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"HEAD /items/7 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await writer.drain()
        status, headers = await read_head(reader)
        after_head = await asyncio.wait_for(reader.read(), TIMEOUT)  # up to the server's close
    finally:
        writer.close()
        await writer.wait_closed()
    assert status == 200
    assert headers["content-length"] == str(len(get_body))
    assert headers["content-type"].startswith(JSON)
    assert after_head == b""


async def test_a_path_parameter_that_is_not_an_integer_is_a_400(client):
    status, _, body = await call(client, "GET", "/items/abc")
    assert status == 400
    assert body == {"message": "Validation error",
                    "errors": [{"path": "id", "message": "must be an integer"}]}


# -- query --------------------------------------------------------------------------------------

async def test_a_valid_query_is_converted_and_defaults_filled(client):
    status, _, body = await call(client, "GET", "/items?limit=5&color=red")
    assert status == 200
    assert body == {"data": {"page": 1, "limit": 5, "color": "red"}}


async def test_every_query_problem_is_listed_at_once(client):
    status, _, body = await call(client, "GET", "/items?page=0&limit=abc&color=blue&size=9")
    assert status == 400
    assert body == {"message": "Validation error", "errors": [
        {"path": "page", "message": "must be at least 1"},
        {"path": "limit", "message": "must be an integer"},
        {"path": "color", "message": "must be one of: red, green"},
        {"path": "size", "message": "is not allowed"},
    ]}


# -- JSON body ----------------------------------------------------------------------------------

async def test_a_valid_body_is_validated_and_defaults_filled(client):
    status, _, body = await call(client, "POST", "/items", json={"name": "pen"})
    assert status == 201
    assert body == {"data": {"name": "pen", "qty": 1}}


@pytest.mark.parametrize("content_type", [
    "application/json; charset=utf-8", "application/merge-patch+json"])
async def test_json_content_types_with_parameters_or_a_suffix_are_accepted(client, content_type):
    status, _, body = await call(client, "POST", "/items", data=b'{"name": "pen", "qty": 2}',
                                 headers={"Content-Type": content_type})
    assert (status, body) == (201, {"data": {"name": "pen", "qty": 2}})


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/jsonx", "text/json"])
async def test_a_body_that_is_not_declared_json_is_a_415(client, content_type):
    status, _, body = await call(client, "POST", "/items", data=b'{"name": "pen"}',
                                 headers={"Content-Type": content_type})
    assert status == 415
    assert body == {"message": "Content-Type must be application/json"}


async def test_a_body_without_any_content_type_is_a_415(port):
    status, _, body = await exchange(port, post_head("Content-Length: 15") + b'{"name": "pen"}')
    assert status == 415
    assert body == b'{"message":"Content-Type must be application/json"}'


async def test_a_body_of_exactly_the_limit_is_accepted_and_one_byte_more_is_a_413(client):
    exact = b'{"name": "pen"}'.ljust(MAX_BODY)  # JSON allows trailing whitespace
    assert len(exact) == MAX_BODY
    status, _, body = await call(client, "POST", "/items", data=exact,
                                 headers={"Content-Type": JSON})
    assert (status, body) == (201, {"data": {"name": "pen", "qty": 1}})

    status, _, body = await call(client, "POST", "/items", data=exact + b" ",
                                 headers={"Content-Type": JSON})
    assert status == 413
    assert body == {"message": f"Request body is larger than {MAX_BODY} bytes"}


async def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(port):
    # Only the headers go out: a server that tried to read 100 MB would never answer.
    head = post_head("Content-Type: application/json", "Content-Length: 100000000")
    status, _, body = await exchange(port, head)
    assert status == 413
    assert body == f'{{"message":"Request body is larger than {MAX_BODY} bytes"}}'.encode()


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(port):
    # Three chunks of 512 bytes pass the limit of 1024; the last chunk ("0\r\n\r\n") is never
    # sent, so the 413 can only come from a server that counts while it reads.
    chunk = b"200\r\n" + b" " * 512 + b"\r\n"
    head = post_head("Content-Type: application/json", "Transfer-Encoding: chunked")
    status, _, body = await exchange(port, head + chunk * 3)
    assert status == 413
    assert body == f'{{"message":"Request body is larger than {MAX_BODY} bytes"}}'.encode()


async def test_a_small_chunked_body_is_read_whole(port):
    payload = b'{"name": "pen"}'
    chunks = b"%x\r\n%b\r\n" % (len(payload), payload) + b"0\r\n\r\n"
    head = post_head("Content-Type: application/json", "Transfer-Encoding: chunked")
    status, _, body = await exchange(port, head + chunks)
    assert (status, body) == (201, b'{"data":{"name":"pen","qty":1}}')


@pytest.mark.parametrize("data", [b'{"name": ', b"{'name': 'pen'}", b"\xff\xfe", b"NaN"])
async def test_invalid_json_is_a_400(client, data):
    status, _, body = await call(client, "POST", "/items", data=data,
                                 headers={"Content-Type": JSON})
    assert status == 400
    assert body == {"message": "Request body is not valid JSON"}


@pytest.mark.parametrize("data", [b"", b" \r\n\t "])
async def test_an_empty_body_is_a_400(client, data):
    status, _, body = await call(client, "POST", "/items", data=data,
                                 headers={"Content-Type": JSON})
    assert status == 400
    assert body == {"message": "Request body is empty; send a JSON object"}


@pytest.mark.parametrize("data", [b'[{"name": "pen"}]', b'"pen"', b"42", b"null"])
async def test_json_that_is_not_an_object_is_a_validation_error(client, data):
    status, _, body = await call(client, "POST", "/items", data=data,
                                 headers={"Content-Type": JSON})
    assert status == 400
    assert body == {"message": "Validation error",
                    "errors": [{"path": "", "message": "must be a JSON object"}]}


async def test_every_body_problem_is_listed_at_once(client):
    status, _, body = await call(client, "POST", "/items",
                                 json={"qty": -1, "name": "", "colour": "red"})
    assert status == 400
    assert body == {"message": "Validation error", "errors": [
        {"path": "name", "message": "must be at least 1 character long"},
        {"path": "qty", "message": "must be at least 0"},
        {"path": "colour", "message": "is not allowed"},
    ]}


# -- an unexpected exception --------------------------------------------------------------------

async def test_an_unexpected_exception_is_a_bare_500_logged_once_with_the_request_id(
        client, caplog):
    caplog.set_level(logging.ERROR)
    async with client.get("/boom", headers={"X-Request-Id": "trace-500"}) as response:
        status, text = response.status, await response.text()
        assert response.headers["X-Request-Id"] == "trace-500"
    assert status == 500
    assert text == '{"message":"Internal server error"}'
    for leak in ("hunter2", "Secret", "Traceback", "test_app"):
        assert leak not in text

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.name for r in errors] == ["lab.http.error"]  # once, and by nobody else
    record = errors[0]
    assert "trace-500" in record.getMessage()
    assert "GET /boom" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is Secret  # the traceback


# -- X-Request-Id, Server-Timing, access log --------------------------------------------------

ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@pytest.mark.parametrize("given", ["abc-123", "a.b:c_d-E", "7", "x" * 128])
async def test_an_acceptable_client_request_id_is_echoed(client, given):
    async with client.get("/items/1", headers={"X-Request-Id": given}) as response:
        assert response.status == 200
        assert response.headers["X-Request-Id"] == given


@pytest.mark.parametrize("given", ["x" * 129, "a b", "id<script>", "a/b", "a;b", "a,b", "*"])
async def test_an_unacceptable_client_request_id_is_replaced(client, given):
    async with client.get("/items/1", headers={"X-Request-Id": given}) as response:
        assert response.status == 200
        replaced = response.headers["X-Request-Id"]
    assert replaced != given
    assert ACCEPTABLE_ID.fullmatch(replaced)


async def test_a_request_id_with_non_ascii_bytes_is_replaced(port):
    data = "GET /items/1 HTTP/1.1\r\nHost: x\r\nX-Request-Id: café-1\r\n\r\n".encode()
    status, headers, _ = await exchange(port, data)
    assert status == 200
    assert "caf" not in headers["x-request-id"]
    assert ACCEPTABLE_ID.fullmatch(headers["x-request-id"])


async def test_without_a_client_id_each_request_gets_a_fresh_unique_one(client):
    seen = []
    for path in ["/items/1", "/nowhere", "/items/abc", "/boom"] * 10:  # errors get one too
        async with client.get(path) as response:
            seen.append(response.headers["X-Request-Id"])
    assert all(ACCEPTABLE_ID.fullmatch(rid) for rid in seen)
    assert len(set(seen)) == len(seen)


@pytest.mark.parametrize("path", ["/items/1", "/nowhere"])
async def test_every_answer_has_a_server_timing_header(client, path):
    async with client.get(path) as response:
        timing = response.headers["Server-Timing"]
    assert re.fullmatch(r"app;dur=\d+\.\d{3}", timing), timing


async def test_the_access_log_has_one_line_with_id_method_path_and_status(client, caplog):
    caplog.set_level(logging.INFO, logger="lab.http.access")
    async with client.get("/items/9?x=1", headers={"X-Request-Id": "log-1"}) as response:
        assert response.status == 200
    async with client.delete("/nowhere", headers={"X-Request-Id": "log-2"}) as response:
        assert response.status == 404
    lines = [r.getMessage() for r in caplog.records if r.name == "lab.http.access"]
    assert len(lines) == 2
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "lab.http.access")
    assert re.fullmatch(r"log-1 GET /items/9\?x=1 200 \d+\.\d\dms", lines[0]), lines[0]
    assert re.fullmatch(r"log-2 DELETE /nowhere 404 \d+\.\d\dms", lines[1]), lines[1]


# -- the middleware chain -----------------------------------------------------------------------

def tracer(name: str, trail: list[str]):
    async def trace(request: Request, call_next):
        trail.append(f"{name} in")
        response = await call_next(request)
        trail.append(f"{name} out")
        response.headers[f"X-{name}"] = "seen"
        return response
    return trace


async def test_a_custom_chain_runs_in_the_order_given_around_errors():
    trail: list[str] = []
    app = App("Chain", "1", middlewares=[tracer("outer", trail), middleware.errors,
                                         tracer("inner", trail)])

    @app.route("GET", "/ok")
    async def fine(request: Request):
        trail.append("handler")
        return ok(True)

    @app.route("GET", "/missing")
    async def missing(request: Request):
        trail.append("handler")
        raise NotFound("Thing 1 not found")

    async with serve(app, "127.0.0.1", 0) as (host, port), aiohttp.ClientSession(
            f"http://{host}:{port}") as client:
        async with client.get("/ok") as response:
            assert response.status == 200
            assert response.headers["X-outer"] == response.headers["X-inner"] == "seen"
            assert "X-Request-Id" not in response.headers  # request_id is not in this chain
            assert "Server-Timing" not in response.headers
        assert trail == ["outer in", "inner in", "handler", "inner out", "outer out"]

        trail.clear()
        async with client.get("/missing") as response:
            # inside errors, "inner" saw an exception; outside it, "outer" saw a 404
            assert response.status == 404
            assert await response.json() == {"message": "Thing 1 not found"}
            assert response.headers["X-outer"] == "seen"
            assert "X-inner" not in response.headers
        assert trail == ["outer in", "inner in", "handler", "outer out"]


@pytest.mark.parametrize("size", [0, -1])
def test_a_body_limit_below_one_byte_is_refused(size):
    with pytest.raises(ValueError, match="max_body_size"):
        App("t", "1", max_body_size=size)


def test_a_chain_without_errors_is_refused():
    with pytest.raises(ValueError, match="errors"):
        App("t", "1", middlewares=(middleware.request_id, middleware.access_log))
    with pytest.raises(ValueError, match="errors"):
        App("t", "1", middlewares=())


# -- graceful shutdown --------------------------------------------------------------------------

async def refused(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except ConnectionRefusedError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def test_shutdown_finishes_a_request_in_flight_and_refuses_new_connections():
    app = make_app()
    started, release = asyncio.Event(), asyncio.Event()

    @app.route("GET", "/slow")
    async def slow(request: Request):
        started.set()
        await release.wait()
        return ok("finally")

    async def fetch_slow(base: str) -> tuple[int, object]:
        async with aiohttp.ClientSession(base) as session, session.get("/slow") as response:
            return response.status, await response.json()

    server = serve(app, "127.0.0.1", 0, shutdown_timeout=TIMEOUT)
    host, port = await server.__aenter__()
    in_flight = asyncio.create_task(fetch_slow(f"http://{host}:{port}"))
    leaving = None
    try:
        await asyncio.wait_for(started.wait(), TIMEOUT)
        leaving = asyncio.create_task(server.__aexit__(None, None, None))
        await asyncio.sleep(0)  # leaving runs up to its first await: the listener is closed
        assert await refused(host, port)  # no new connection while one request is in flight
        assert not leaving.done()  # ...and that request holds the shutdown
        release.set()
        await asyncio.wait_for(leaving, TIMEOUT)
        assert await asyncio.wait_for(in_flight, TIMEOUT) == (200, {"data": "finally"})
        assert await refused(host, port)
    finally:  # whatever failed above, the server is left and the client task has an end
        release.set()
        if leaving is None:
            await server.__aexit__(None, None, None)
        elif not leaving.done():
            await asyncio.wait_for(leaving, TIMEOUT)
        in_flight.cancel()


# -- what aiohttp's own parser refuses ------------------------------------------------------------

@pytest.mark.parametrize("head", [
    b"GET /items HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
    b"GET /items HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
])
async def test_malformed_http_gets_a_json_400_and_one_log_line(port, caplog, head):
    caplog.set_level(logging.INFO)
    status, headers, body = await exchange(port, head)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert b"No colon" not in body and b"aaaa" not in body  # the client's bytes are not echoed
    assert body == b'{"message":"Bad Request: malformed HTTP request"}'
    refused = [r for r in caplog.records if r.name == "lab.http.protocol"]
    assert len(refused) == 1 and refused[0].exc_info is None
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- bodies that go wrong on the way in ---------------------------------------------------------

async def test_a_413_closes_the_connection_instead_of_draining_the_refused_body(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(post_head("Content-Type: application/json", "Content-Length: 100000000"))
        await writer.drain()
        status, headers, _ = await read_answer(reader)
        assert (status, headers["connection"].lower()) == (413, "close")
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # closed by the server
    finally:
        writer.close()


async def test_expect_100_continue_is_answered_before_the_body_is_sent(port):
    payload = b'{"name": "pen"}'
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(post_head("Content-Type: application/json", "Expect: 100-continue",
                               f"Content-Length: {len(payload)}"))
        await writer.drain()
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(payload)
        status, _, body = await read_answer(reader)
        assert (status, body) == (201, b'{"data":{"name":"pen","qty":1}}')
    finally:
        writer.close()


async def test_a_refused_upload_gets_no_100_continue(port):
    head = post_head("Content-Type: application/json", "Expect: 100-continue",
                     "Content-Length: 100000000")
    status, _, _ = await exchange(port, head)  # the first answer is the 413 itself
    assert status == 413


async def test_an_unknown_expectation_is_a_417(port):
    head = post_head("Content-Type: application/json", "Expect: something-else",
                     "Content-Length: 2")
    status, _, body = await exchange(port, head + b"{}")
    assert (status, body) == (417, b'{"message":"Only \'Expect: 100-continue\' is supported"}')


async def test_a_body_that_is_not_the_gzip_it_claims_is_a_400_not_a_bug(port, caplog):
    payload = b'{"name": "pen"}'
    head = post_head("Content-Type: application/json", "Content-Encoding: gzip",
                     f"Content-Length: {len(payload)}")
    status, _, body = await exchange(port, head + payload)
    assert (status, body) == (400, b'{"message":"Request body could not be decoded"}')
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_client_that_leaves_mid_body_is_not_logged_as_a_bug(port, caplog):
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(post_head("Content-Type: application/json", "Content-Length: 100") + b'{"na')
    await writer.drain()
    await asyncio.sleep(0.1)  # the handler is now waiting for the rest of the body
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(0.2)  # let the server notice
    status, _, _ = await call(aiohttp_session := aiohttp.ClientSession(), "GET",
                              f"http://127.0.0.1:{port}/items")
    await aiohttp_session.close()
    assert status == 200  # still serving
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text

"""The proxy with real sockets: the same answers direct and through it, the balancing, the
bad clients, the status document. Backends are real ``lab.api`` processes or aiohttp toys
(conftest.py); faults are in test_proxy_faults.py, the command line in test_main.py."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time

import aiohttp
import pytest

from lab.lb.tuning import DEFAULTS, ERROR_MESSAGES, Backend, Tuning
from tests.lb.conftest import TIMEOUT, raw_connection, read_answer, url

pytestmark = pytest.mark.integration

CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=TIMEOUT)


async def chunks(*pieces: bytes):
    for piece in pieces:  # aiohttp sends an async iterable as a chunked body
        yield piece


def script():
    """The requests of the differential test: (method, path, keyword arguments)."""
    big = json.dumps({"name": "x" * 2000, "email": "big@example.com", "password": "secret1"})
    return [
        ("GET", "/health", {}),
        ("POST", "/users", {"json": {"name": "Ada", "email": "ada@example.com",
                                     "password": "secret1"}}),
        ("GET", "/users/1", {}),
        ("PUT", "/users/1", {"json": {"name": "Ada L."}}),
        ("POST", "/categories", {"json": {"name": "work"}}),
        ("POST", "/tasks", {"data": chunks(b'{"title": "Write", ', b'"userId": 1, ',
                                           b'"categoryId": 1}'),
                            "headers": {"Content-Type": "application/json"}}),
        ("GET", "/tasks?limit=5", {}),
        ("HEAD", "/tasks", {}),
        ("DELETE", "/tasks/1", {}),
        ("GET", "/tasks/1", {}),  # 404: deleted
        ("GET", "/nowhere", {}),  # 404: no route
        ("PATCH", "/users", {}),  # 405 with Allow
        ("POST", "/users", {"data": big, "headers": {"Content-Type": "application/json"}}),
        ("POST", "/users", {"data": b"{not json", "headers": {"Content-Type":
                                                              "application/json"}}),
        ("GET", "/api-docs/swagger-ui-bundle.js", {}),  # a large answer: about 1 MB
    ]


MATTERS = ("Content-Type", "Content-Length", "Allow", "Cache-Control", "X-Instance",
           "X-Request-Id")


def masked(body: bytes) -> bytes:
    """Two fresh instances give the same answers but for the time they were made."""
    return re.sub(rb'"(createdAt|updatedAt)":"[^"]*"', rb'"\1":"-"', body)


async def run_script(base: str) -> list[tuple]:
    answers = []
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        for n, (method, path, kwargs) in enumerate(script()):
            headers = {"X-Request-Id": f"step-{n}", **kwargs.pop("headers", {})}
            async with session.request(method, base + path, headers=headers,
                                       **kwargs) as answer:
                body = await answer.read()
                answers.append((method, path, answer.status,
                                {k: answer.headers.get(k) for k in MATTERS}, masked(body)))
    return answers


async def test_the_same_answers_direct_and_through_the_proxy(apis, lb_process) -> None:
    # Two fresh instances with the same name and limits: one direct, one behind python -m
    # lab.lb (on uvloop, as it runs by default).
    direct, behind = await asyncio.gather(apis("api", "--max-body-size", "1000"),
                                          apis("api", "--max-body-size", "1000"))
    proxy = await lb_process("--backend", f"127.0.0.1:{behind.port}")
    expected = await run_script(f"http://127.0.0.1:{direct.port}")
    got = await run_script(url(proxy.port, ""))
    for want, have in zip(expected, got, strict=True):
        assert have == want
    statuses = [status for _, _, status, _, _ in got]
    assert statuses == [200, 201, 200, 200, 201, 201, 200, 200, 204, 404, 404, 405, 413,
                        400, 200]
    assert len(got[-1][4]) > 1_000_000  # the large answer, whole
    assert got[11][3]["Allow"] == "GET, HEAD, POST"


async def test_pipelined_requests_are_answered_in_order_as_the_backend_would(
        apis, lb_process) -> None:
    direct, behind = await asyncio.gather(apis("api"), apis("api"))
    proxy = await lb_process("--backend", f"127.0.0.1:{behind.port}")
    pipeline = b"".join(
        b"GET %s HTTP/1.1\r\nHost: lab\r\nX-Request-Id: p%d\r\n\r\n" % (path, n)
        for n, path in enumerate([b"/health", b"/tasks?limit=1", b"/nowhere", b"/health"]))
    results = []
    for port in (direct.port, proxy.port):
        async with raw_connection(port) as (reader, writer):
            writer.write(pipeline)  # four requests in one write, before any answer
            answers = [await read_answer(reader) for _ in range(4)]
        results.append([(a.status, a.header("X-Request-Id"), a.body) for a in answers])
    assert results[0] == results[1]
    assert [status for status, _, _ in results[1]] == [200, 200, 404, 200]
    assert [rid for _, rid, _ in results[1]] == ["p0", "p1", "p2", "p3"]


async def test_keep_alive_on_both_sides(apis, lb) -> None:
    api = await apis("api")
    proxy = await lb([api])
    async with raw_connection(proxy.address[1]) as (reader, writer):
        for _ in range(5):  # one client connection, five requests in turn
            writer.write(b"GET /health HTTP/1.1\r\nHost: lab\r\n\r\n")
            answer = await read_answer(reader)
            assert answer.status == 200 and answer.header("Connection") is None
        writer.write(b"GET /lb-status HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
        status = json.loads((await read_answer(reader)).body)
        assert await reader.read() == b""  # it said close, and closed
    [backend] = status["backends"]
    assert backend["requests"] == 5
    assert backend["connections"] == {"open": 1, "idle": 1, "opened": 1, "reused": 4}
    assert status["clients"] == {"open": 1, "requests": 6}


async def test_http_1_0_clients_get_keep_alive_only_when_asked(toys, lb) -> None:
    proxy = await lb([await toys("a")])
    async with raw_connection(proxy.address[1]) as (reader, writer):
        writer.write(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        answer = await read_answer(reader)
        assert (answer.status, answer.body, answer.header("Connection")) == (
            200, b"a", "keep-alive")
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        answer = await read_answer(reader)
        assert answer.header("Connection") == "close" and await reader.read() == b""


async def test_100_continue_is_relayed_before_the_body_is_sent(toys, lb) -> None:
    a = await toys("a")
    proxy = await lb([a])
    async with raw_connection(proxy.address[1]) as (reader, writer):
        writer.write(b"POST /echo HTTP/1.1\r\nHost: lab\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        interim = await read_answer(reader)
        assert interim.status == 100  # the backend's, passed on: the client may send now
        writer.write(b"hello")
        answer = await read_answer(reader)
    assert (answer.status, answer.body) == (200, b"a")
    assert a.seen[-1]["body"] == b"hello"


async def test_a_chunked_answer_is_chunked_for_http_1_1_and_until_close_for_1_0(toys,
                                                                                lb) -> None:
    proxy = await lb([await toys("a")])
    async with raw_connection(proxy.address[1]) as (reader, writer):
        writer.write(b"GET /stream HTTP/1.1\r\nHost: lab\r\n\r\n")
        answer = await read_answer(reader)
        assert (answer.header("Transfer-Encoding"), answer.body) == ("chunked", b"one,two,three")
        writer.write(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        answer = await read_answer(reader)  # no length, no chunks: the body ends at the close
        assert answer.header("Transfer-Encoding") is None
        assert (answer.header("Connection"), answer.body) == ("close", b"one,two,three")


async def test_a_large_chunked_body_streams_through_both_ways(toys, lb) -> None:
    a = await toys("a")
    proxy = await lb([a])
    pieces = [bytes([65 + n % 26]) * 50_000 for n in range(10)]  # 500 kB, chunked
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session, \
            session.put(url(proxy, "/upload"), data=chunks(*pieces)) as answer:
        assert (answer.status, await answer.text()) == (200, "a")
    assert a.seen[-1]["body"] == b"".join(pieces)
    assert a.seen[-1]["headers"]["Transfer-Encoding"] == "chunked"


# -- balancing ---------------------------------------------------------------------------


async def instances(base: str, n: int, path: str = "/health") -> list[str]:
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        names = []
        for _ in range(n):
            async with session.get(base + path) as answer:
                assert answer.status == 200
                names.append(answer.headers["X-Instance"])
    return names


async def test_round_robin_takes_three_instances_in_turn(apis, lb) -> None:
    three = await asyncio.gather(*(apis(f"api-{k}") for k in (1, 2, 3)))
    proxy = await lb(three)
    names = await instances(url(proxy, ""), 30)
    assert {name: names.count(name) for name in set(names)} == {
        "api-1": 10, "api-2": 10, "api-3": 10}
    assert all(len(set(names[i:i + 3])) == 3 for i in range(0, 30, 3))  # each in every turn


async def test_weights_two_to_one_give_two_to_one(apis, lb) -> None:
    heavy, light = await asyncio.gather(apis("heavy"), apis("light"))
    proxy = await lb([Backend("127.0.0.1", heavy.port, 2), light.backend])
    names = await instances(url(proxy, ""), 30)
    assert (names.count("heavy"), names.count("light")) == (20, 10)
    assert "heavy heavy heavy" not in " ".join(names)  # smooth: never three in a row


async def test_least_conn_sends_new_requests_to_the_idle_backend(toys, lb) -> None:
    a, b = await toys("a"), await toys("b")
    proxy = await lb([a, b], strategy="least-conn")
    slow = asyncio.create_task(instances(url(proxy, ""), 1, "/slow?s=1.5"))
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (a.seen or b.seen):  # until the slow request is in a backend
            assert time.monotonic() < deadline, "the slow request never arrived"
            await asyncio.sleep(0.02)
        busy, idle = (a, b) if a.seen else (b, a)
        names = await instances(url(proxy, ""), 6, "/")
    finally:
        slowly = await slow  # bounded by the session's own timeout
    assert names == [idle.name] * 6
    assert slowly == [busy.name]


# -- bad clients ---------------------------------------------------------------------------


async def test_garbage_is_a_json_400_and_the_connection_is_closed(toys, lb) -> None:
    a = await toys("a")
    proxy = await lb([a])
    for garbage in (b"hello there\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"):
        async with raw_connection(proxy.address[1]) as (reader, writer):
            writer.write(garbage)
            answer = await read_answer(reader)
            assert answer.status == 400
            assert answer.header("Content-Type") == "application/json"
            assert answer.header("Connection") == "close"
            assert set(json.loads(answer.body)) == {"message"}
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # closed
    assert a.seen == []


async def test_oversized_heads_are_431_or_414_and_reach_no_backend(toys, lb) -> None:
    a = await toys("a")
    proxy = await lb([a])
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        big = {"X-Big": "x" * (DEFAULTS.header_buffer_size + 100)}
        async with session.get(url(proxy), headers=big) as answer:
            assert (answer.status, await answer.json()) == (
                431, {"message": ERROR_MESSAGES[431]})
        many = {f"X-Many-{n}": "y" * 4000 for n in range(5)}  # each line fits, not the head
        async with session.get(url(proxy), headers=many) as answer:
            assert answer.status == 431
        async with session.get(url(proxy, "/" + "x" * DEFAULTS.header_buffer_size)) as answer:
            assert answer.status == 414
            assert (await answer.json())["message"] == "request line too long"
        async with session.get(url(proxy), headers={"X-Fits": "x" * 4000}) as answer:
            assert answer.status == 200
    assert len(a.seen) == 1


async def test_a_body_over_max_body_size_is_413_and_no_backend_gets_it_whole(toys, lb) -> None:
    a = await toys("a")
    proxy = await lb([a], tuning=Tuning(max_body_size=1000))
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        async with session.post(url(proxy), data=b"x" * 1001) as answer:
            assert (answer.status, await answer.json()) == (
                413, {"message": ERROR_MESSAGES[413]})
        assert a.seen == []  # declared too large: refused before any backend is chosen
        async with session.post(url(proxy), data=chunks(b"x" * 600, b"y" * 600)) as answer:
            assert answer.status == 413  # chunked: refused as soon as the count passes
        async with session.post(url(proxy), data=b"x" * 1000) as answer:
            assert answer.status == 200
    assert [seen["body"] for seen in a.seen if seen["method"] == "POST"][-1] == b"x" * 1000


async def test_a_client_trickling_its_head_is_cut_after_header_timeout(toys, lb) -> None:
    a = await toys("a")
    proxy = await lb([a], tuning=Tuning(header_timeout=0.5))
    head = b"GET / HTTP/1.1\r\nHost: lab\r\nX-Slow: " + b"s" * 100 + b"\r\n\r\n"
    async with raw_connection(proxy.address[1]) as (reader, writer):
        began = time.monotonic()
        reading = asyncio.create_task(read_answer(reader))
        try:
            for byte in head:  # one byte every 100 ms: 12 s for the whole head
                if reading.done():
                    break
                writer.write(bytes([byte]))
                await asyncio.sleep(0.1)
            answer = await reading
        finally:
            reading.cancel()  # the test's own task: never left running
        took = time.monotonic() - began
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # and closed
    assert answer.status == 408 and answer.header("Connection") == "close"
    assert 0.45 < took < 1.5
    assert a.seen == []


async def test_a_client_stalling_mid_body_gets_408_not_a_backend_timeout(toys, lb) -> None:
    a = await toys("a")
    proxy = await lb([a], tuning=Tuning(read_timeout=0.3))
    async with raw_connection(proxy.address[1]) as (reader, writer):
        writer.write(b"PUT /x HTTP/1.1\r\nHost: lab\r\nContent-Length: 100\r\n\r\n" + b"y" * 10)
        answer = await read_answer(reader)  # and then nothing more is sent
        assert answer.status == 408 and answer.header("Connection") == "close"
        assert "body stalled" in json.loads(answer.body)["message"]
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    [backend] = proxy.status_document()["backends"]
    assert (backend["state"], backend["failures"], backend["connections"]["open"]) == (
        "up", 0, 0)  # the client's fault: the backend is not blamed; its connection is closed


async def test_a_client_leaving_mid_body_does_not_disturb_the_others(apis, lb) -> None:
    api = await apis("api")
    proxy = await lb([api])

    async def leaver() -> None:
        async with raw_connection(proxy.address[1]) as (_, writer):
            writer.write(b"POST /categories HTTP/1.1\r\nHost: lab\r\nContent-Length: 5000\r\n"
                         b"Content-Type: application/json\r\n\r\n{\"name\": ")
            await writer.drain()
            await asyncio.sleep(0.05)
        # closed here, 4990 bytes short

    async def steady() -> list[int]:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
            statuses = []
            for _ in range(20):
                async with session.get(url(proxy, "/health")) as answer:
                    statuses.append(answer.status)
        return statuses

    results = await asyncio.gather(steady(), *(leaver() for _ in range(10)), steady())
    assert results[0] == results[-1] == [200] * 20
    deadline = time.monotonic() + TIMEOUT
    while proxy.backends[0].active:  # each abandoned request ends
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    [backend] = proxy.status_document()["backends"]
    assert backend["state"] == "up" and backend["failures"] == 0


# -- the status document ---------------------------------------------------------------------


async def test_the_status_document_counts_per_backend(toys, lb) -> None:
    a, b = await toys("a"), await toys("b")
    dead = Backend("127.0.0.1", a.port)
    await a.runner.cleanup()  # a's port now refuses connections
    proxy = await lb([dead, b], tuning=Tuning(fail_timeout=60))
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        for _ in range(4):
            async with session.get(url(proxy)) as answer:
                assert answer.status == 200
        async with session.post(url(proxy, "/lb-status")) as answer:
            assert (answer.status, answer.headers["Allow"]) == (405, "GET, HEAD")
        async with session.get(url(proxy, "/lb-status?pretty=no")) as answer:
            assert answer.content_type == "application/json"
            document = await answer.json()
    assert document["strategy"] == "round-robin"
    assert document["clients"] == {"open": 1, "requests": 6}
    assert document["answers"] == {}
    refused, good = document["backends"]
    assert refused == {"address": f"127.0.0.1:{a.port}", "weight": 1, "state": "down",
                       "requests": 1, "failures": 1, "active": 0,
                       "connections": {"open": 0, "idle": 0, "opened": 0, "reused": 0}}
    assert good["state"] == "up" and good["requests"] == 4 and good["failures"] == 0
    assert good["connections"] == {"open": 1, "idle": 1, "opened": 1, "reused": 3}


async def test_health_is_forwarded_like_any_path_and_the_status_path_can_be_moved(toys,
                                                                                  lb) -> None:
    a = await toys("a")
    proxy = await lb([a], status_path="/_lb")
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        async with session.get(url(proxy, "/health")) as answer:
            assert await answer.text() == "a"  # the backend's answer, not the proxy's
        async with session.get(url(proxy, "/lb-status")) as answer:
            assert await answer.text() == "a"
        async with session.head(url(proxy, "/_lb")) as answer:
            assert answer.status == 200 and int(answer.headers["Content-Length"]) > 100
    assert [seen["path"] for seen in a.seen] == ["/health", "/lb-status"]


async def test_forwarding_headers_reach_the_backend(toys, lb) -> None:
    a = await toys("a")
    proxy = await lb([a])
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        for headers in ({"X-Forwarded-For": "203.0.113.7", "X-Request-Id": "req-42",
                         "Connection": "keep-alive, X-Secret", "X-Secret": "hop"}, {}):
            async with session.get(url(proxy, "/tasks"), headers=headers) as answer:
                assert answer.status == 200
    given, made = (seen["headers"] for seen in a.seen)
    assert given["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    assert given["X-Request-Id"] == "req-42" and given["X-Forwarded-Proto"] == "http"
    assert "X-Secret" not in given and "Connection" not in given  # hop-by-hop: stripped
    assert given["Host"] == f"127.0.0.1:{proxy.address[1]}"  # the client's own Host
    assert made["X-Forwarded-For"] == "127.0.0.1"
    assert re.fullmatch(r"[0-9a-f]{32}", made["X-Request-Id"])


async def test_requests_are_balanced_from_many_connections_at_once(toys, lb) -> None:
    a, b = await toys("a"), await toys("b")
    proxy = await lb([a, b])

    async def client() -> list[str]:
        return await instances(url(proxy, ""), 25, "/")

    names = list(itertools.chain(*await asyncio.gather(*(client() for _ in range(8)))))
    assert (names.count("a"), names.count("b")) == (100, 100)
    assert proxy.status_document()["answers"] == {}

"""The proxy when backends fail: killed processes, slow answers, hang-ups, stale pooled
connections, connects that never complete. Load is bounded (a few hundred requests from a
few clients) and every wait has a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time

import aiohttp
import pytest

from lab.lb.exchange import REPLAY_LIMIT
from lab.lb.tuning import ERROR_MESSAGES, Backend, Tuning
from tests.lb.conftest import TIMEOUT, url

pytestmark = pytest.mark.integration

CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=TIMEOUT)
FAIL_TIMEOUT = 2.0  # short, so that a test sees a backend go down and come back


async def load(base: str, requests: int, clients: int = 4, method: str = "GET",
               path: str = "/health") -> list[tuple[int, str | None]]:
    """``requests`` requests from ``clients`` concurrent keep-alive clients:
    (status, X-Instance) each."""
    results: list[tuple[int, str | None]] = []

    async def client(n: int) -> None:
        async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
            for _ in range(n):
                async with session.request(method, base + path) as answer:
                    await answer.read()
                    results.append((answer.status, answer.headers.get("X-Instance")))

    share = [requests // clients + (k < requests % clients) for k in range(clients)]
    await asyncio.gather(*(client(n) for n in share))
    return results


async def fetch(target: str, method: str = "GET", data: bytes | None = None) -> tuple[int,
                                                                                   bytes]:
    """One request on a connection of its own: (status, body)."""
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session, \
            session.request(method, target, data=data) as answer:
        return answer.status, await answer.read()


async def test_a_backend_killed_mid_run_costs_no_get_and_comes_back_after_fail_timeout(
        apis, lb) -> None:
    a, b, c = await asyncio.gather(apis("a"), apis("b"), apis("c"))
    proxy = await lb([a, b, c], tuning=Tuning(fail_timeout=FAIL_TIMEOUT))
    victim = proxy.backends[2]
    base = url(proxy, "")

    results = await load(base, 60)
    running = asyncio.create_task(load(base, 200))
    await asyncio.sleep(0.05)
    c.kill()  # kill -9, requests in flight (unless the load was quicker than 50 ms)
    results += await running
    deadline = time.monotonic() + TIMEOUT
    while proxy.health[victim].state.value != "down":  # the next request to it finds out
        assert time.monotonic() < deadline, proxy.status_document()
        results += await load(base, 3, clients=1)
    down_since = time.monotonic()
    before = victim.requests
    results += await load(base, 100)  # well within fail_timeout
    assert time.monotonic() - down_since < FAIL_TIMEOUT * 0.8
    assert victim.requests == before  # no traffic while it is down
    assert [status for status, _ in results] == [200] * len(results)  # not one failed GET
    assert {name for _, name in results[-100:]} == {"a", "b"}

    await apis("c", port=c.port)  # back, on the same port
    await asyncio.sleep(max(0.0, down_since + FAIL_TIMEOUT - time.monotonic()))
    deadline = time.monotonic() + 3 * FAIL_TIMEOUT  # a trial before the restart may fail
    while True:
        names = [name for _, name in await load(base, 12)]
        if names.count("c") == 4:
            break
        assert time.monotonic() < deadline, f"c never came back: {names}"
        await asyncio.sleep(0.2)
    assert proxy.health[victim].state.value == "up"


async def test_a_backend_slower_than_read_timeout_is_a_json_504(toys, lb) -> None:
    slow = await toys("slow")
    proxy = await lb([slow], tuning=Tuning(read_timeout=0.3))
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        began = time.monotonic()
        async with session.get(url(proxy, "/slow?s=3")) as answer:
            assert (answer.status, await answer.json()) == (
                504, {"message": ERROR_MESSAGES[504]})
        assert time.monotonic() - began < 1.5
        assert answer.headers["Content-Type"] == "application/json"


async def test_a_get_that_times_out_goes_to_the_next_backend(toys, lb) -> None:
    slow, fast = await toys("slow"), await toys("fast")
    slow.delay = 2.0
    proxy = await lb([slow, fast], tuning=Tuning(read_timeout=0.3))
    assert await fetch(url(proxy, "/")) == (200, b"fast")
    assert [len(slow.seen), len(fast.seen)] == [1, 1]


@contextlib.asynccontextmanager
async def hang_up_server(dropped: list[str]):
    """A backend that reads a request head and closes: it dies mid-request."""
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            dropped.append(head.split(b" ", 1)[0].decode())
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        yield Backend("127.0.0.1", server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def test_a_post_to_a_backend_that_dies_mid_request_is_a_502_and_not_retried(
        toys, lb) -> None:
    dropped: list[str] = []
    async with hang_up_server(dropped) as dropper:
        good = await toys("good")
        # max_fails=0: the dropper stays in the rotation instead of being marked down.
        proxy = await lb([dropper, good], tuning=Tuning(max_fails=0))
        gets = await load(url(proxy, ""), 6, clients=1, path="/")
        posts = await load(url(proxy, ""), 6, clients=1, method="POST", path="/")
    assert gets == [(200, "good")] * 6 and "GET" in dropped  # GETs went on to good
    failed = [status for status, _ in posts if status != 200]
    assert failed and set(failed) == {502}
    assert dropped.count("POST") == len(failed)  # each POST reached exactly one backend
    assert sum(seen["method"] == "POST" for seen in good.seen) == 6 - len(failed)


async def test_a_put_is_retried_only_while_its_body_is_kept(toys, lb) -> None:
    dropped: list[str] = []
    async with hang_up_server(dropped) as dropper:
        good = await toys("good")
        proxy = await lb([dropper, good], tuning=Tuning(max_fails=0))
        small, large = b"s" * 1000, b"L" * (REPLAY_LIMIT + 1)
        smalls = [await fetch(url(proxy, "/"), "PUT", small) for _ in range(4)]
        small_drops = len(dropped)
        larges = [await fetch(url(proxy, "/"), "PUT", large) for _ in range(4)]
        large_drops = len(dropped) - small_drops
    assert small_drops and large_drops  # round-robin gave the dropper both kinds
    assert smalls == [(200, b"good")] * 4  # each one the dropper had was sent again
    failed = (502, json.dumps({"message": ERROR_MESSAGES[502]}).encode() + b"\n")
    assert sorted(larges) == sorted([(200, b"good")] * (4 - large_drops)
                                    + [failed] * large_drops)  # those were not kept
    assert [seen["body"] for seen in good.seen] == [small] * 4 + [large] * (4 - large_drops)


async def test_every_backend_down_is_a_json_503(lb) -> None:
    ports = []
    for _ in range(2):
        with socket.socket() as probe:  # a port that was free: connect() is refused
            probe.bind(("127.0.0.1", 0))
            ports.append(probe.getsockname()[1])
    proxy = await lb([Backend("127.0.0.1", port) for port in ports])
    async with aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as session:
        for method in ("GET", "POST", "GET"):  # the last: both are marked down already
            async with session.request(method, url(proxy, "/tasks")) as answer:
                assert answer.status == 503
                assert answer.content_type == "application/json"
                assert await answer.json() == {"message": ERROR_MESSAGES[503]}
    document = proxy.status_document()
    assert [b["state"] for b in document["backends"]] == ["down", "down"]
    assert document["answers"] == {"503": 3}


async def test_a_stale_pooled_connection_is_retried_fresh_for_a_get_only(lb) -> None:
    """A backend that answers the first request of a connection, keeps it open, and closes
    it without a word when a second request comes: the race a keep-alive pool must survive."""
    served: list[str] = []

    async def one_answer_per_connection(reader, writer) -> None:
        try:
            for n in range(2):
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
                if n == 1:
                    break  # the second request on this connection: hang up
                body = await reader.readexactly(int(head.split(b"Content-Length: ")[1]
                                                    .split(b"\r\n")[0])) \
                    if b"Content-Length: " in head else b""
                served.append(head.split(b" ", 1)[0].decode() + body.decode())
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(one_answer_per_connection, "127.0.0.1", 0)
    try:
        proxy = await lb([Backend("127.0.0.1", server.sockets[0].getsockname()[1])])
        answers = await load(url(proxy, ""), 4, clients=1, path="/")
        post = await load(url(proxy, ""), 2, clients=1, method="POST", path="/")
    finally:
        server.close()
        await server.wait_closed()
    assert [status for status, _ in answers] == [200] * 4  # each GET retried on a fresh one
    assert served[:4] == ["GET"] * 4
    # A POST on a stale connection may have been applied: 502, not sent again.
    assert sorted(status for status, _ in post) == [200, 502]
    [backend] = proxy.status_document()["backends"]
    assert backend["state"] == "up"  # a stale connection is not the backend's failure


async def test_a_connect_that_never_completes_is_bounded_by_connect_timeout(toys, lb) -> None:
    """A listening socket whose accept queue is full: the kernel drops new SYNs."""
    with socket.socket() as full:
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        fillers = []
        try:
            for _ in range(4):  # enough to fill the queue whatever the kernel adds to 0
                filler = socket.socket()
                filler.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    filler.connect(full.getsockname())
                fillers.append(filler)
            good = await toys("good")
            proxy = await lb([Backend(*full.getsockname()), good],
                             tuning=Tuning(connect_timeout=0.2))
            began = time.monotonic()
            # Nothing was sent: even a POST goes on to the next backend.
            assert await fetch(url(proxy, "/"), "POST") == (200, b"good")
            assert time.monotonic() - began < 1.5
            assert [b["failures"] for b in proxy.status_document()["backends"]] == [1, 0]
        finally:
            for filler in fillers:
                filler.close()


async def test_a_backend_that_answers_garbage_is_a_502_not_retried(toys, lb) -> None:
    async def garbage(reader, writer) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            writer.write(b"HTTP/1.1 OK 200\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    try:
        good = await toys("good")
        proxy = await lb([Backend("127.0.0.1", server.sockets[0].getsockname()[1]), good])
        status, body = await fetch(url(proxy, "/"))
        assert (status, json.loads(body)) == (502, {"message": ERROR_MESSAGES[502]})
    finally:
        server.close()
        await server.wait_closed()
    assert good.seen == []  # NGINX's invalid_header: not in proxy_next_upstream

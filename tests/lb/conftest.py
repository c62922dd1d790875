"""What the proxy tests share: real backends, the proxy in-process, a raw HTTP reader, and
raw backends for the pool.

Backends are real: ``lab.api`` processes (``apis``), or tiny aiohttp apps in
the test's own loop that answer with their name and can be told to be slow
(``toys``). The proxy runs in the test's loop (``lb``) or as its own process
(``lb_process``). Everything listens on 127.0.0.1, port 0, and everything a
fixture starts is stopped by it, processes by their pid, whatever the test did.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from lab import settings
from lab.lb import proxy as lb_proxy
from lab.lb.messages import EndOfMessage
from lab.lb.pool import Pool
from lab.lb.tuning import Backend

TIMEOUT = 10  # seconds: no test waits longer for any one thing


# -- real processes ---------------------------------------------------------------------


class Process:
    """A server started as ``python -m MODULE``, its port read from its first stdout line."""

    def __init__(self, module: str, *args: str) -> None:
        self.argv = [sys.executable, "-m", module, *args]
        self.process = subprocess.Popen(
            self.argv, cwd=settings.REPO_ROOT, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.line = ""
        self.port = 0

    def wait_listening(self) -> Process:
        """Until the first line says where it listens (bounded by the caller's timeout)."""
        self.line = self.process.stdout.readline()
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.line)
        if not found:
            self.stop()
            raise RuntimeError(f"{self.argv} did not start: {self.line!r} "
                               f"{self.process.stderr.read()[-2000:]!r}")
        self.port = int(found[1])
        return self

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def backend(self) -> Backend:
        return Backend("127.0.0.1", self.port)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(TIMEOUT)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if it is still there after TIMEOUT; its exit status."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        for stream in (self.process.stdout, self.process.stderr):
            stream.close()
        return self.process.returncode

    def __repr__(self) -> str:
        return f"Process({' '.join(self.argv[2:])}, pid={self.pid}, port={self.port})"


async def start_process(module: str, *args: str) -> Process:
    started = Process(module, *args)
    try:
        return await asyncio.wait_for(asyncio.to_thread(started.wait_listening), TIMEOUT)
    except BaseException:
        started.stop()
        raise


@pytest.fixture
async def apis() -> AsyncIterator:
    """start(name, *flags, port=0) -> a running ``python -m lab.api --store memory``."""
    started: list[Process] = []

    async def start(name: str, *flags: str, port: int = 0) -> Process:
        api = await start_process("lab.api", "--store", "memory", "--port", str(port),
                                  "--instance", name, "--no-access-log", *flags)
        started.append(api)
        return api

    try:
        yield start
    finally:
        for api in started:
            api.stop()


@pytest.fixture
async def lb_process() -> AsyncIterator:
    """start(*flags) -> a running ``python -m lab.lb --port 0 ...``; stopped by its pid."""
    started: list[Process] = []

    async def start(*flags: str) -> Process:
        proc = await start_process("lab.lb", "--port", "0", *flags)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()


# -- in the test's loop -----------------------------------------------------------------


class Toy:
    """An aiohttp backend that answers with its name; ``/slow?s=N`` sleeps first, ``/stream``
    answers chunked, and every
    request waits ``delay`` seconds; ``/health`` answers ``health_status``. It remembers
    every request it saw."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[dict] = []
        self.health_status = 200
        self.delay = 0.0
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append({"method": request.method, "path": request.path, "body": body,
                          "headers": request.headers.copy(),
                          "peer": request.transport.get_extra_info("peername")})
        await asyncio.sleep(self.delay)
        if request.path == "/health":
            return web.Response(status=self.health_status, text=self.name)
        if request.path == "/stream":  # a chunked answer, in three pieces
            answer = web.StreamResponse(headers={"X-Instance": self.name})
            answer.enable_chunked_encoding()
            await answer.prepare(request)
            for piece in (b"one,", b"two,", b"three"):
                await answer.write(piece)
            await answer.write_eof()
            return answer
        if request.path == "/slow":
            await asyncio.sleep(float(request.query.get("s", "1")))
        return web.Response(text=self.name, headers={"X-Instance": self.name})

    @property
    def backend(self) -> Backend:
        return Backend("127.0.0.1", self.port)

    def __repr__(self) -> str:
        return f"Toy({self.name!r}, port={self.port}, seen={len(self.seen)})"


@pytest.fixture
async def toys() -> AsyncIterator:
    """start(name) -> a running Toy on a free port; all are stopped at the end."""
    started: list[Toy] = []

    async def start(name: str) -> Toy:
        toy = Toy(name)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", toy.handle)
        toy.runner = web.AppRunner(app, shutdown_timeout=1, access_log=None)
        await toy.runner.setup()
        site = web.TCPSite(toy.runner, "127.0.0.1", 0)
        await site.start()
        toy.port = toy.runner.addresses[0][1]
        started.append(toy)
        return toy

    try:
        yield start
    finally:
        for toy in started:
            await toy.runner.cleanup()  # a second cleanup of a stopped one is harmless


@pytest.fixture
async def lb() -> AsyncIterator:
    """start(backends, **options) -> a running ``Proxy`` in this loop; closed at the end."""
    async with contextlib.AsyncExitStack() as stack:
        async def start(backends, **options) -> lb_proxy.Proxy:
            targets = [b if isinstance(b, Backend) else b.backend for b in backends]
            return await stack.enter_async_context(lb_proxy.serve(targets, **options))

        yield start


def url(proxy_or_port, path: str = "/") -> str:
    port = proxy_or_port if isinstance(proxy_or_port, int) else proxy_or_port.address[1]
    return f"http://127.0.0.1:{port}{path}"


# -- raw HTTP, for what a client library would hide ---------------------------------------


class Answer:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def __repr__(self) -> str:
        return f"Answer({self.status}, {self.body[:60]!r})"


async def read_answer(reader: asyncio.StreamReader, head_only: bool = False) -> Answer:
    """One response from ``reader``: Content-Length, chunked, or until the close."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if line]
    answer = Answer(status, headers, b"")
    length = answer.header("Content-Length")
    if head_only or status in (204, 304) or 100 <= status < 200:
        return answer
    if answer.header("Transfer-Encoding") == "chunked":
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            answer.body += await reader.readexactly(size)
            await reader.readexactly(2)
        await reader.readuntil(b"\r\n")  # no trailers: the final CRLF
    elif length is not None:
        answer.body = await asyncio.wait_for(reader.readexactly(int(length)), TIMEOUT)
    else:
        answer.body = await asyncio.wait_for(reader.read(), TIMEOUT)
    return answer


@contextlib.asynccontextmanager
async def raw_connection(port: int) -> AsyncIterator[tuple[asyncio.StreamReader,
                                                           asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


# -- raw backends, for the pool and its connections ---------------------------------------


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@contextlib.asynccontextmanager
async def raw_backend(answer=lambda n: OK, after=None):
    """A raw backend: ``answer(n)`` is the reply to the n-th request of a connection (None:
    hang up); ``after(writer)``, if given, runs once the first answer is written."""
    served: dict[asyncio.Task, asyncio.StreamWriter] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served[asyncio.current_task()] = writer
        try:
            for n in range(1000):
                await reader.readuntil(b"\r\n\r\n")
                reply = answer(n)
                if reply is None:
                    break
                writer.write(reply)
                if after is not None and n == 0:
                    await after(writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in served.values():
            writer.close()  # each handler then ends on its own, none is left to the loop
        if served:
            await asyncio.wait(served, timeout=TIMEOUT)
        await server.wait_closed()


def pool(port: int, **options) -> Pool:
    return Pool("127.0.0.1", port, **{"max_idle": 4, "idle_timeout": 60.0,
                                      "connect_timeout": 1.0, **options})


async def get(conn) -> list:
    """Send GET / on ``conn`` and read its whole answer."""
    conn.begin(b"GET")
    conn.write(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n")
    events = [await conn.next_event(TIMEOUT)]
    while not isinstance(events[-1], EndOfMessage):
        events.append(await conn.next_event(TIMEOUT))
    return events


async def until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)

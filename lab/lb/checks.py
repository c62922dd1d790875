"""Active health checks: a periodic ``GET /health`` to every backend, off by default.

Passive health (``health.py``) learns only from real requests: a backend that
died is found out by the first request sent to it, and one that came back
waits out ``fail_timeout`` before it is tried. An active check learns without
traffic: every ``interval`` seconds each backend is asked ``GET /health`` on
a connection of its own (never a pooled one: a check must not be answered by
a connection that happens to work), and the answer feeds
``Health.check_passed`` / ``check_failed`` -- a failed check takes the backend
out at once, a passing one brings it back at once.

A check passes on a 2xx or 3xx status within ``connect_timeout`` to connect
and ``min(read_timeout, interval)`` to answer; anything else (a refused
connection, a 503, a timeout, bytes that are not HTTP) fails it. This is NGINX
Plus's ``health_check interval=... uri=/health`` with ``fails=1 passes=1``;
open-source NGINX has no active checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from lab.lb.balancer import Backend
from lab.lb.framer import ResponseFramer
from lab.lb.health import Health, check_ok
from lab.lb.messages import ProtocolError, Request, Response, encode_head
from lab.lb.tuning import Tuning

log = logging.getLogger("lab.lb")
CHECK_PATH = b"/health"


async def check(backend: Backend, tuning: Tuning, timeout: float,
                path: bytes = CHECK_PATH) -> bool:
    """One check of ``backend``: does ``GET path`` answer with a passing status in time?"""
    try:
        async with asyncio.timeout(tuning.connect_timeout):
            reader, writer = await asyncio.open_connection(backend.host, backend.port)
    except (OSError, TimeoutError):
        return False
    try:
        headers = ((b"Host", backend.address.encode("ascii")), (b"Connection", b"close"),
                   (b"User-Agent", b"lab.lb health check"))
        writer.write(encode_head(Request(b"GET", path, headers)))
        framer = ResponseFramer()
        framer.expect(b"GET")
        async with asyncio.timeout(timeout):
            while True:
                data = await reader.read(64 * 1024)
                for event in framer.feed(data) if data else framer.feed_eof():
                    if isinstance(event, Response) and event.status >= 200:
                        return check_ok(event.status)
                if not data:
                    return False  # closed before any final answer
    except (OSError, TimeoutError, ProtocolError):
        return False
    finally:  # every connection a check opens is closed, whatever happened
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def run_checks(health: Mapping[Backend, Health], tuning: Tuning, interval: float) -> None:
    """Check every backend every ``interval`` seconds, all at once, until cancelled."""
    timeout = min(tuning.read_timeout, interval)
    while True:
        backends = list(health)
        async with asyncio.TaskGroup() as group:  # a round ends when its every check has
            tasks = [group.create_task(check(b, tuning, timeout)) for b in backends]
        for backend, task in zip(backends, tasks, strict=True):
            if task.result():
                health[backend].check_passed()
            else:
                log.debug("health check of %s failed", backend.address)
                health[backend].check_failed()
        await asyncio.sleep(interval)

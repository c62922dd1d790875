"""Active health checks against real backends: out on a failing check, back on a passing one,
without any client traffic."""

from __future__ import annotations

import asyncio
import time

import pytest

from lab.lb.balancer import Backend
from lab.lb.checks import check
from lab.lb.tuning import DEFAULTS
from tests.lb.conftest import TIMEOUT

pytestmark = pytest.mark.integration


async def until_state(proxy, index: int, state: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while proxy.status_document()["backends"][index]["state"] != state:
        assert time.monotonic() < deadline, f"never {state}: {proxy.status_document()}"
        await asyncio.sleep(0.02)


async def test_a_failing_check_takes_a_backend_out_and_a_passing_one_brings_it_back(
        toys, lb) -> None:
    a, b = await toys("a"), await toys("b")
    proxy = await lb([a, b], check_interval=0.1)
    b.health_status = 503
    await until_state(proxy, 1, "down")
    assert proxy.status_document()["backends"][1]["requests"] == 0  # no client asked
    b.health_status = 200
    await until_state(proxy, 1, "up")
    assert {seen["path"] for seen in a.seen + b.seen} == {"/health"}
    assert all(seen["headers"]["User-Agent"] == "lab.lb health check" for seen in b.seen)


async def test_one_check(toys) -> None:
    a = await toys("a")
    target = Backend("127.0.0.1", a.port)
    assert await check(target, DEFAULTS, timeout=1)
    a.health_status = 500
    assert not await check(target, DEFAULTS, timeout=1)
    a.health_status = 200
    a.delay = 0.4
    began = time.monotonic()
    assert not await check(target, DEFAULTS, timeout=0.2)  # too slow
    assert time.monotonic() - began < 0.5
    await a.runner.cleanup()
    assert not await check(target, DEFAULTS, timeout=1)  # refused

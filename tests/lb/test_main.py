"""``python -m lab.lb`` as a user runs it: help, one-line errors, a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time

import aiohttp
import pytest

from lab import settings
from lab.lb.tuning import Tuning
from tests.lb.conftest import TIMEOUT, url

PROG = "python -m lab.lb"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab.lb", *args], cwd=settings.REPO_ROOT,
                          capture_output=True, text=True, timeout=2 * TIMEOUT, check=False)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_help_explains_every_flag_and_the_shared_ones() -> None:
    result = cli("--help")
    assert result.returncode == 0
    flags = ["--port", "--backend", "--strategy", "--keepalive", "--status-path",
             "--health-check-interval", "--shutdown-timeout", "--loop",
             *(f"--{name.replace('_', '-')}" for name in Tuning.__dataclass_fields__)]
    for flag in flags:
        assert flag in result.stdout, flag
    assert "round-robin" in result.stdout and "least-conn" in result.stdout


@pytest.mark.parametrize("args", [
    [],  # no --backend
    ["--backend", "nowhere"],
    ["--backend", "127.0.0.1:8001=0"],
    ["--backend", "127.0.0.1:8001", "--strategy", "random"],
    ["--backend", "127.0.0.1:8001", "--port", "99999"],
    ["--backend", "127.0.0.1:8001", "--read-timeout", "0"],
    ["--backend", "127.0.0.1:8001", "--status-path", "lb-status"],
    ["--backend", "127.0.0.1:8001", "--bogus"],
])
def test_a_bad_flag_is_one_line_and_exit_2(args: list[str]) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert one_line_error(result).startswith(f"{PROG}: error: ")
    assert result.stdout == ""


@pytest.mark.integration
def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = cli("--port", str(port), "--backend", "127.0.0.1:8001")
    assert result.returncode == 1
    assert one_line_error(result) == (
        f"{PROG}: error: cannot listen on 127.0.0.1:{port}: Address already in use\n")


@pytest.mark.integration
async def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(toys,
                                                                      lb_process) -> None:
    slow = await toys("slow")
    proc = await lb_process("--backend", f"127.0.0.1:{slow.port}", "--loop", "asyncio")
    assert proc.line.startswith(f"lab.lb listening on http://127.0.0.1:{proc.port} "
                                "(round-robin over 1 backend, loop=asyncio)")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
        async def fetch(path: str) -> tuple[int, str, str | None]:
            async with session.get(url(proc.port, path)) as answer:
                return answer.status, await answer.text(), answer.headers.get("Connection")

        in_flight = asyncio.create_task(fetch("/slow?s=1"))
        try:
            deadline = time.monotonic() + TIMEOUT
            while not slow.seen:  # until the request is in the backend
                assert time.monotonic() < deadline, "the request never arrived"
                await asyncio.sleep(0.02)
            proc.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.2)
            with pytest.raises(aiohttp.ClientConnectionError):  # no longer accepting
                await fetch("/")
            status, body, connection = await in_flight
        finally:
            in_flight.cancel()  # ours: never left running, even if an assert failed
    assert (status, body, connection) == (200, "slow", "close")  # finished, then closed
    exit_status = await asyncio.to_thread(proc.process.wait, TIMEOUT)
    assert exit_status == 0
    assert "Traceback" not in proc.process.stderr.read()


@pytest.mark.integration
async def test_uvloop_is_the_default_loop(toys, lb_process) -> None:
    pytest.importorskip("uvloop")
    proc = await lb_process("--backend", f"127.0.0.1:{(await toys('a')).port}")
    assert proc.line.rstrip().endswith("loop=uvloop)")
    assert proc.stop() == 0

"""Start and stop the servers a benchmark compares, each by its own PID.

Shared by every load test: find a free port on 127.0.0.1, start a process,
wait (bounded) until it answers, and always stop it -- SIGTERM, then SIGKILL
if it has not gone within a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator


def create(port: int, path: str, document: dict) -> dict:
    """POST ``document`` to the Task API on 127.0.0.1:``port``; the created resource (the
    answer's ``data``). Anything but 201 is an error: urllib raises on 4xx and 5xx."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST",
                                     data=json.dumps(document).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        if answer.status != 201:
            raise RuntimeError(f"POST {path} answered {answer.status}, not 201")
        return json.load(answer)["data"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_answering(port: int, process: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} on start")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port} within {timeout:.0f} s")


@contextlib.contextmanager
def running(args: list[str], port: int,
            env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        wait_until_answering(port, process)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()  # it ignored SIGTERM: do not leave it behind
            process.wait()


def lab_cache_server(port: int, maxsize: int = 1_000_000):
    args = [sys.executable, "-m", "lab.cache", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--maxsize", str(maxsize)]
    return running(args, port)


def redis_server(port: int):
    """A private Redis set up as a cache usually is: no persistence, loopback only."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run `make services` first")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
    return running(args, port)


def http_server(impl: str, port: int):
    """One of the challenge-2 servers (lab, aiohttp, fastapi, bare): ``bench/http/serve.py``."""
    args = [sys.executable, "-m", "bench.http.serve", "--impl", impl, "--port", str(port)]
    return running(args, port)

"""``python -m lab.api`` as a user meets it: help, bad flags, a port in use, start and stop."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.api", *args], capture_output=True,
                          text=True, timeout=30)


def test_help_explains_every_flag():
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in ("--host", "--port", "--store", "--max-body-size", "--access-log", "--loop"):
        assert flag in result.stdout


@pytest.mark.parametrize("args", [["--port", "http"], ["--port", "70000"], ["--store", "sqlite"],
                                  ["--max-body-size", "0"], ["--nope"], ["--loop", "trio"]])
def test_bad_flags_are_one_line(args):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert re.match(r"python -m lab\.api: error: .+ \(see --help\)$", result.stderr)


def test_a_port_in_use_is_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli("--port", str(taken.getsockname()[1]))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot listen on 127.0.0.1:" in result.stderr


def test_it_serves_until_sigterm_and_then_exits_cleanly():
    process = subprocess.Popen([sys.executable, "-m", "lab.api", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = process.stdout.readline()
        found = re.match(r"lab\.api listening on (http://127\.0\.0\.1:\d+) "
                         r"\(store=memory, loop=uvloop\)$", ready.strip())
        assert found, ready
        with urllib.request.urlopen(found.group(1) + "/health", timeout=5) as answer:
            assert json.load(answer) == {"status": "ok", "store": "memory"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        log = process.stderr.read()
        assert "GET /health 200" in log  # the access log is on by default
        assert "Traceback" not in log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

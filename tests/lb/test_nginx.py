"""NGINX as lab.lb's twin: the rendered config, then the real nginx in front of real backends.

The render tests are pure (text in, text out). The integration tests start
tiny aiohttp backends that answer with their own name, and the real nginx in
a run dir of their own under .run/ on a free port; a fixture always stops it
and removes the dir. Every wait is bounded (TIMEOUT).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from lab import processes, settings
from lab.lb import nginx
from lab.lb.nginx import render
from lab.lb.tuning import DEFAULTS, ERROR_MESSAGES, Backend, Tuning, parse_backend

TIMEOUT = 10  # seconds: no test waits longer for any one thing
try:
    NGINX: str | None = nginx.find_nginx()
except nginx.NginxError:
    NGINX = None


def real_nginx(test):
    """Marks a test that runs the real nginx: integration, and skipped if nginx is absent."""
    needs = pytest.mark.skipif(NGINX is None, reason="nginx is not installed "
                                                     "(make services installs it)")
    return pytest.mark.integration(needs(test))


A, B = Backend("127.0.0.1", 8001), Backend("127.0.0.1", 8002)


@pytest.fixture(scope="module")
def template() -> str:
    return nginx.read_template()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- render: pure --------------------------------------------------------------------------


def test_each_backend_is_a_server_line_with_its_weight_and_passive_health(template) -> None:
    text = render(template, [A, "127.0.0.1:8002=3"], port=8081)  # a tuple, or a flag's text
    assert re.findall(r"^\s*server \S+.*;$", text, re.M) == [
        "        server 127.0.0.1:8001 weight=1 max_fails=1 fail_timeout=10s;",
        "        server 127.0.0.1:8002 weight=3 max_fails=1 fail_timeout=10s;",
    ]
    assert "proxy_next_upstream error timeout;" in text
    assert "proxy_next_upstream_tries 2;" in text  # each backend once


def test_least_conn_only_for_that_strategy(template) -> None:
    assert not re.search(r"^\s*least_conn;", render(template, [A, B], port=8081), re.M)
    assert re.search(r"^\s*least_conn;",
                     render(template, [A, B], port=8081, strategy="least-conn"), re.M)


@pytest.mark.parametrize("connections", [1, 64, 1000])
def test_keepalive_pool_holds_every_client_connection(template, connections: int) -> None:
    text = render(template, [A, B], port=8081, connections=connections)
    keepalive = int(re.search(r"^\s*keepalive (\d+);", text, re.M)[1])
    workers = int(re.search(r"worker_connections (\d+);", text)[1])
    assert keepalive >= connections
    assert workers >= 2 * connections + keepalive  # both sides of each request, and the pool
    assert "proxy_http_version 1.1;" in text and 'proxy_set_header Connection "";' in text


def test_the_shared_timeouts_appear_in_nginx_units(template) -> None:
    text = render(template, [A], port=8081)
    for line in ("proxy_connect_timeout 1s;", "proxy_read_timeout 30s;",
                 "proxy_send_timeout 30s;", "client_header_timeout 10s;",
                 "keepalive_timeout 60s;", "large_client_header_buffers 2 8192;"):
        assert line in text
    tuned = Tuning(connect_timeout=0.25, read_timeout=2.5, fail_timeout=3, max_fails=2)
    text = render(template, [A], port=8081, tuning=tuned)
    assert "proxy_connect_timeout 250ms;" in text and "proxy_read_timeout 2500ms;" in text
    assert "max_fails=2 fail_timeout=3s;" in text


def test_listens_on_loopback_and_keeps_runtime_files_under_the_run_dir(template) -> None:
    text = render(template, [A], port=18081)
    assert re.findall(r"^\s*listen (\S+);", text, re.M) == ["127.0.0.1:18081"]
    paths = re.findall(r"^\s*(?:pid|error_log|\w+_temp_path) (\S+?);?(?: warn;)?$", text, re.M)
    assert len(paths) == 7 and all(p.startswith(".run/nginx-lb/") for p in paths)
    assert not re.search(r"\{\{\w+\}\}", text)  # no placeholder left


def test_errors_nginx_makes_itself_are_json(template) -> None:
    text = render(template, [A], port=8081)
    for status, message in ERROR_MESSAGES.items():
        body = json.dumps({"message": message})
        assert f"return {status} '{body}\\n';" in text
    assert "error_page 494 =431 @error_431;" in text
    assert text.count("default_type application/json;") == len(ERROR_MESSAGES)
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in text
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in text


@pytest.mark.parametrize(("kwargs", "complaint"), [
    ({"backends": []}, "at least one backend"),
    ({"strategy": "random"}, "strategy must be"),
    ({"port": 0}, "port must be"),
    ({"connections": 0}, "connections"),
    ({"backends": [Backend("127.0.0.1", 8001, 0)]}, "not a backend"),
    ({"backends": [Backend("evil; include /etc", 80)]}, "not a backend"),
    ({"worker_processes": 0}, "worker_processes"),
    ({"run_dir": "a dir"}, "run_dir"),
])
def test_bad_arguments_are_value_errors(template, kwargs: dict, complaint: str) -> None:
    args = {"backends": [A], "port": 8081, **kwargs}
    with pytest.raises(ValueError, match=complaint):
        render(template, args.pop("backends"), **args)


def test_an_unknown_placeholder_is_an_error(template) -> None:
    with pytest.raises(ValueError, match=r"\{\{nope\}\}"):
        render(template + "{{nope}}", [A], port=8081)


@pytest.mark.parametrize(("text", "backend"), [
    ("127.0.0.1:8001", Backend("127.0.0.1", 8001, 1)),
    ("127.0.0.1:8002=2", Backend("127.0.0.1", 8002, 2)),
    ("localhost:80", Backend("localhost", 80, 1)),
    ("[::1]:8003", Backend("[::1]", 8003, 1)),
])
def test_parse_backend(text: str, backend: Backend) -> None:
    assert parse_backend(text) == backend


@pytest.mark.parametrize("text", ["8001", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:99999",
                                  "127.0.0.1:8001=0", "127.0.0.1:8001=x", "a b:80"])
def test_parse_backend_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_backend(text)


def test_tuning_refuses_nonsense() -> None:
    assert Tuning(max_fails=0).max_fails == 0  # NGINX's "never mark down"
    for bad in ({"max_fails": -1}, {"connect_timeout": 0}, {"read_timeout": float("nan")}):
        with pytest.raises(ValueError):
            Tuning(**bad)


def test_nginx_missing_is_one_clear_line(monkeypatch, capsys) -> None:
    monkeypatch.setattr(nginx, "NGINX_DIRS", ())
    monkeypatch.setenv("PATH", "")
    assert nginx.main(["start", "--port", "18081", "--backend", "127.0.0.1:8001"]) == 1
    assert capsys.readouterr().err == (
        "python -m lab.lb.nginx: error: nginx is not installed (make services installs it)\n")


# -- the real nginx ------------------------------------------------------------------------


@pytest.fixture
def run_dir():
    """A run dir of this test's own; whatever nginx started there is stopped, then removed."""
    path = settings.REPO_ROOT / ".run" / f"nginx-lb-test-{uuid.uuid4().hex[:8]}"
    try:
        yield path
    finally:
        try:
            nginx.stop(path)
        finally:
            shutil.rmtree(path, ignore_errors=True)


@real_nginx
@pytest.mark.parametrize("strategy", nginx.STRATEGIES)
def test_nginx_t_accepts_the_rendered_config(template, run_dir: Path, strategy: str) -> None:
    run_dir.mkdir(parents=True)
    conf = run_dir / "nginx.conf"
    conf.write_text(render(template, [A, B], port=free_port(), strategy=strategy,
                           run_dir=run_dir))
    checked = subprocess.run([NGINX, "-t", "-p", f"{settings.REPO_ROOT}/", "-e",
                              str(run_dir / "error.log"), "-c", str(conf)],
                             capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


class Recorder:
    """A backend that answers with its name and remembers each request it saw."""

    def __init__(self, name: str):
        self.name = name
        self.seen: list[dict] = []  # method, path, version, headers, the proxy's side
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append({"method": request.method, "path": request.path,
                          "version": request.version, "headers": request.headers.copy(),
                          "peer": request.transport.get_extra_info("peername")})
        if request.path == "/slow":
            await asyncio.sleep(float(request.query.get("s", "1")))
        return web.Response(text=self.name)

    def __repr__(self) -> str:
        return f"Recorder({self.name!r}, port={self.port}, seen={len(self.seen)})"


@pytest.fixture
async def backends():
    """start(name) -> a running Recorder on a free port; all are stopped at the end."""
    started: list[Recorder] = []

    async def start(name: str) -> Recorder:
        backend = Recorder(name)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", backend.handle)
        backend.runner = web.AppRunner(app, shutdown_timeout=1, access_log=None)
        await backend.runner.setup()
        site = web.TCPSite(backend.runner, "127.0.0.1", 0)
        await site.start()
        backend.port = backend.runner.addresses[0][1]
        started.append(backend)
        return backend

    yield start
    for backend in started:
        await backend.runner.cleanup()  # a second cleanup of a stopped one is harmless


@pytest.fixture
def balancer(run_dir):
    """start(backends, **options) -> the base URL of a real nginx in front of them."""
    async def start(backends, **options) -> str:
        port = free_port()
        targets = [b if isinstance(b, Backend) else Backend("127.0.0.1", b.port)
                   for b in backends]
        await asyncio.to_thread(nginx.start, targets, port=port, run_dir=run_dir,
                                timeout=TIMEOUT, **options)
        return f"http://127.0.0.1:{port}"

    return start


async def fetch(url: str, n: int = 1, method: str = "GET", **kwargs) -> list[tuple[int, str]]:
    """n requests one after the other on one keep-alive connection: (status, body) each."""
    answers = []
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for _ in range(n):
            async with session.request(method, url, **kwargs) as response:
                answers.append((response.status, await response.text()))
    return answers


@real_nginx
async def test_round_robin_alternates_exactly(backends, balancer) -> None:
    url = await balancer([await backends("a"), await backends("b")])
    names = [body for status, body in await fetch(url + "/", 10) if status == 200]
    assert len(names) == 10
    assert all(x != y for x, y in itertools.pairwise(names)), names


@real_nginx
async def test_weights_two_to_one_give_two_to_one_shares(backends, balancer) -> None:
    a, b = await backends("a"), await backends("b")
    url = await balancer([Backend("127.0.0.1", a.port, 2), Backend("127.0.0.1", b.port, 1)])
    names = [body for _, body in await fetch(url + "/", 30)]
    assert (names.count("a"), names.count("b")) == (20, 10)


@real_nginx
async def test_least_conn_sends_new_requests_away_from_the_busy_backend(backends,
                                                                         balancer) -> None:
    pair = [await backends("a"), await backends("b")]
    url = await balancer(pair, strategy="least-conn")
    slow = asyncio.create_task(fetch(url + "/slow?s=2"))
    try:
        deadline = time.monotonic() + TIMEOUT
        while not any(b.seen for b in pair):  # until the slow request is in a backend
            assert time.monotonic() < deadline, "the slow request never arrived"
            await asyncio.sleep(0.02)
        busy = next(b for b in pair if b.seen)
        names = [body for _, body in await fetch(url + "/", 6)]
    finally:
        slowly = await slow  # bounded by fetch's own timeout
    assert len(names) == 6 and busy.name not in names
    assert slowly == [(200, busy.name)]


@real_nginx
async def test_a_stopped_backend_is_skipped_and_requests_still_succeed(backends,
                                                                       balancer) -> None:
    a, b = await backends("a"), await backends("b")
    url = await balancer([a, b])
    await b.runner.cleanup()  # b's port now refuses connections
    assert await fetch(url + "/", 6) == [(200, "a")] * 6
    # A refused connect() sent nothing, so even a POST goes on to the next backend.
    assert await fetch(url + "/", 2, method="POST", data=b"{}") == [(200, "a")] * 2


@real_nginx
async def test_a_post_is_never_retried_once_a_backend_has_it(backends, balancer) -> None:
    """A backend that reads the request and hangs up: GET goes on, POST gets 502."""
    dropped: list[str] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
            dropped.append(head.split(b" ", 1)[0].decode())
        except (asyncio.IncompleteReadError, TimeoutError):
            pass  # nginx gave up first: nothing to record
        finally:
            writer.close()

    dropper = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    try:
        good = await backends("good")
        port = dropper.sockets[0].getsockname()[1]
        # max_fails=0: the dropper stays in the rotation instead of being marked down.
        url = await balancer([Backend("127.0.0.1", port), good], tuning=Tuning(max_fails=0))
        assert await fetch(url + "/", 6) == [(200, "good")] * 6
        assert "GET" in dropped  # some GETs were retried on the good backend
        answers = await fetch(url + "/", 6, method="POST", data=b"{}")
    finally:
        dropper.close()
        await dropper.wait_closed()
    failed = [body for status, body in answers if status == 502]
    assert failed and all(json.loads(body) == {"message": ERROR_MESSAGES[502]}
                          for body in failed)
    posts_at_good = sum(1 for seen in good.seen if seen["method"] == "POST")
    # Each POST reached exactly one backend: those the dropper took were not sent again.
    assert dropped.count("POST") == len(failed)
    assert posts_at_good == 6 - len(failed)


@real_nginx
async def test_every_backend_down_is_a_json_502(balancer) -> None:
    url = await balancer([Backend("127.0.0.1", free_port()), Backend("127.0.0.1", free_port())])
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for method in ("GET", "POST", "GET"):  # the last: both marked down, "no live upstreams"
            async with session.request(method, url + "/tasks.html") as response:
                assert response.status == 502
                assert response.content_type == "application/json"
                assert await response.json() == {"message": ERROR_MESSAGES[502]}


@real_nginx
async def test_a_backend_slower_than_read_timeout_is_a_json_504(backends, balancer) -> None:
    url = await balancer([await backends("slow")], tuning=Tuning(read_timeout=0.3))
    [(status, body)] = await fetch(url + "/slow?s=3")
    assert (status, json.loads(body)) == (504, {"message": ERROR_MESSAGES[504]})


@real_nginx
async def test_an_oversized_head_is_a_json_431_or_414(backends, balancer) -> None:
    a = await backends("a")
    url = await balancer([a])
    too_long = {"X-Big": "x" * (DEFAULTS.header_buffer_size + 100)}
    [(status, body)] = await fetch(url + "/", headers=too_long)
    assert (status, json.loads(body)) == (431, {"message": ERROR_MESSAGES[431]})
    assert a.seen == []
    # A request line too long: 414, but NGINX's own HTML page (see the template).
    [(status, _)] = await fetch(url + "/" + "x" * DEFAULTS.header_buffer_size)
    assert status == 414
    assert a.seen == []
    [(status, _)] = await fetch(url + "/", headers={"X-Fits": "x" * 4000})
    assert status == 200


@real_nginx
async def test_a_body_over_the_api_limit_is_a_json_413(backends, balancer) -> None:
    a = await backends("a")
    url = await balancer([a])
    [(status, body)] = await fetch(url + "/tasks", method="POST", data=b"x" * (1024 * 1024 + 1))
    assert (status, json.loads(body)) == (413, {"message": ERROR_MESSAGES[413]})
    assert a.seen == []


@real_nginx
async def test_forwarding_headers_and_request_id_reach_the_backend(backends, balancer) -> None:
    a = await backends("a")
    url = await balancer([a])
    await fetch(url + "/tasks", headers={"X-Forwarded-For": "203.0.113.7",
                                         "X-Request-Id": "req-42"})
    await fetch(url + "/tasks")
    given, made = (seen["headers"] for seen in a.seen)
    assert given["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    assert given["X-Request-Id"] == "req-42"
    assert given["X-Forwarded-Proto"] == "http"
    assert given["Host"] == url.removeprefix("http://")
    assert made["X-Forwarded-For"] == "127.0.0.1"
    assert re.fullmatch(r"[0-9a-f]{32}", made["X-Request-Id"])  # made by nginx
    # Keep-alive upstream: HTTP/1.1 and no "Connection: close".
    assert all(seen["version"] == (1, 1) for seen in a.seen)
    assert all(seen["headers"].get("Connection", "").lower() != "close" for seen in a.seen)


@real_nginx
async def test_backend_connections_are_kept_alive_and_reused(backends, balancer) -> None:
    a = await backends("a")
    url = await balancer([a], worker_processes=1)
    assert len(await fetch(url + "/", 20)) == 20
    assert len({seen["peer"] for seen in a.seen}) == 1  # one upstream connection for all 20


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``: an nginx master's workers."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if stat.read_text().rpartition(")")[2].split()[1] == str(pid):
                found.append(int(stat.parent.name))
        except (OSError, IndexError):
            continue  # a process that exited meanwhile
    return found


@real_nginx
async def test_stop_leaves_no_nginx_of_ours_and_twice_is_a_no_op(backends, balancer,
                                                                 run_dir) -> None:
    await balancer([await backends("a")], worker_processes=2)
    running = nginx.status(run_dir)
    assert running is not None
    workers = children(running.pid)
    assert len(workers) == 2
    assert nginx.stop(run_dir) == running.pid
    assert not any(processes.alive(pid) for pid in [running.pid, *workers])
    assert not (run_dir / "nginx.pid").exists()
    assert nginx.stop(run_dir) is None
    assert nginx.status(run_dir) is None


@real_nginx
def test_a_config_nginx_refuses_is_one_line_with_nginx_s_reason(template, monkeypatch,
                                                                run_dir) -> None:
    broken = template.replace("access_log off;", "access_log off; bogus_directive 1;")
    monkeypatch.setattr(nginx, "read_template", lambda: broken)
    with pytest.raises(nginx.NginxError,
                       match=r'nginx -t refused .*: \[emerg\] unknown directive "bogus_directive"'):
        nginx.start([A], port=free_port(), run_dir=run_dir, timeout=TIMEOUT)
    assert nginx.status(run_dir) is None


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab.lb.nginx", *args], cwd=settings.REPO_ROOT,
                          capture_output=True, text=True, timeout=2 * TIMEOUT, check=False)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_cli_bad_flag_is_one_line_and_exit_2() -> None:
    for args in (["start", "--backend", "127.0.0.1:8001", "--bogus"],
                 ["start", "--backend", "nowhere"], ["render"],
                 ["render", "--backend", "127.0.0.1:1", "--strategy", "random"]):
        result = cli(*args)
        assert result.returncode == 2
        assert one_line_error(result).startswith("python -m lab.lb.nginx")


def test_cli_render_prints_the_config_on_the_settings_port(lab_settings) -> None:
    result = cli("render", "--backend", "127.0.0.1:8001", "--backend", "127.0.0.1:8002=2",
                 "--strategy", "least-conn", "--connect-timeout", "0.5")
    assert result.returncode == 0, result.stderr
    assert f"listen 127.0.0.1:{lab_settings.nginx_port};" in result.stdout
    assert "server 127.0.0.1:8002 weight=2 max_fails=1 fail_timeout=10s;" in result.stdout
    assert "proxy_connect_timeout 500ms;" in result.stdout and "least_conn;" in result.stdout


@real_nginx
def test_cli_start_status_stop_and_the_errors_of_starting_twice(run_dir) -> None:
    port = str(free_port())
    where = ["--run-dir", str(run_dir)]
    start = ["start", "--port", port, "--backend", "127.0.0.1:1", *where]
    try:
        first = cli(*start)
        assert first.returncode == 0, first.stderr
        assert first.stdout.startswith(f"nginx: answering on 127.0.0.1:{port} (pid ")
        pid = first.stdout.split("(pid ")[1].split(")")[0]
        status = cli("status", *where)
        assert (status.returncode, status.stdout) == (
            0, f"nginx: running (pid {pid}) on 127.0.0.1:{port}\n")
        again = cli(*start)
        assert again.returncode == 1
        assert "already running (pid" in one_line_error(again)
        # The same port from another run dir: taken.
        other = cli("start", "--port", port, "--backend", "127.0.0.1:1",
                    "--run-dir", f"{run_dir}-other")
        assert other.returncode == 1
        assert one_line_error(other) == (f"python -m lab.lb.nginx: error: cannot listen on "
                                         f"127.0.0.1:{port}: Address already in use\n")
    finally:
        stopped = cli("stop", *where)
        shutil.rmtree(f"{run_dir}-other", ignore_errors=True)
    assert stopped.returncode == 0 and stopped.stdout.startswith("nginx: stopped (pid ")
    assert (cli("stop", *where).stdout, cli("status", *where).returncode) == (
        "nginx: not running\n", 1)

"""``python -m lab up`` / ``down``: real processes, real PostgreSQL, Redis, RabbitMQ and NGINX.

Each test runs the command line with its own ports (``API_PORT``, ``LB_PORT``,
``NGINX_PORT`` in the environment, which the settings read first), its own run
directory, its own RabbitMQ names (``QUEUE_*``: ``test.stack.<random>.*``, deleted at
the end with whatever was declared under them) and the test database's ``public``
schema; whatever it started is stopped in a ``finally``. The tests of challenge 4
start no queue processes (``--workers 0``) unless they run the README as written.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import aiormq
import asyncpg
import pytest

from bench.servers import create
from lab import processes, settings
from lab import stack as lab_stack
from lab.queue import topology as topo

pytestmark = pytest.mark.integration


def free_ports(count: int) -> list[int]:
    """``count`` consecutive free ports (API instances take API_PORT, API_PORT + 1 ...)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        return list(range(base, base + count))
    raise RuntimeError("no run of free ports")


class Stack:
    def __init__(self, run_dir: Path, owner_url: str, app_url: str, instances: int):
        *self.api_ports, self.lb_port, self.nginx_port = free_ports(instances + 2)
        self.run_dir = run_dir
        prefix = f"test.stack.{uuid.uuid4().hex[:12]}"
        self.topology = topo.plan(f"{prefix}.tasks", f"{prefix}.work", (0.1, 0.2),
                                  f"{prefix}.dead")
        self.own = {"API_PORT": str(self.api_ports[0]), "LB_PORT": str(self.lb_port),
                    "NGINX_PORT": str(self.nginx_port), "DATABASE_URL": app_url,
                    "DATABASE_OWNER_URL": owner_url,
                    "QUEUE_EXCHANGE": self.topology.exchange.name,
                    "QUEUE_WORK": self.topology.work.name, "QUEUE_RETRY_DELAYS": "0.1,0.2",
                    "QUEUE_DEAD_LETTER": self.topology.dead_letter.name}
        self.env = {**os.environ, **self.own}

    def lab(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lab", *args, "--run-dir", str(self.run_dir)],
                              capture_output=True, text=True, env=self.env, timeout=120)

    def started(self) -> list[dict]:
        state = self.run_dir / "stack.json"
        return json.loads(state.read_text()) if state.exists() else []

    def pids(self) -> list[int]:
        return [item["pid"] for item in self.started()]

    def consumers(self) -> int:
        """The work queue's consumers, as the broker counts them (a passive declare)."""
        async def ask() -> int:
            connection = await aiormq.connect(RABBITMQ_URL)
            try:
                ok = await (await connection.channel()).queue_declare(
                    self.topology.work.name, passive=True)
                return ok.consumer_count
            finally:
                await connection.close()
        return asyncio.run(asyncio.wait_for(ask(), TIMEOUT))

    def delete_queues(self) -> None:
        """Whatever was declared under this test's names (by ``up``, a worker, the relay)."""
        async def delete() -> None:
            connection = await aiormq.connect(RABBITMQ_URL)
            try:
                channel = await connection.channel()
                for queue in self.topology.queues:
                    await channel.queue_delete(queue.name)  # no error if it never existed
                await channel.exchange_delete(self.topology.exchange.name)
            finally:
                await connection.close()
        asyncio.run(asyncio.wait_for(delete(), TIMEOUT))


RABBITMQ_URL = settings.load().rabbitmq_url
TIMEOUT = 20  # seconds: no test waits longer for any one thing


@pytest.fixture
def stack(tmp_path, migrated_public, owner_url, app_url):
    made = Stack(tmp_path / "stack", owner_url, app_url, instances=3)
    try:
        yield made
    finally:
        try:
            made.lab("down")
        finally:
            made.delete_queues()


def running_here(stack: Stack) -> list[int]:
    """Live processes whose environment holds this test's work queue: whatever its ``up``
    started, whether or not stack.json still lists it."""
    mark = f"QUEUE_WORK={stack.topology.work.name}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours
            continue
        if mark in environ and processes.alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def get(port: int, path: str) -> tuple[dict, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
        return json.load(answer), answer.headers["X-Instance"]


def test_up_starts_instances_behind_nginx_that_take_turns_and_down_stops_all(stack):
    done = stack.lab("up", "--instances", "3", "--balancer", "nginx", "--workers", "0")
    assert done.returncode == 0, done.stderr
    for name, port in zip(("api-1", "api-2", "api-3"), stack.api_ports, strict=True):
        assert f"{name:<9} http://127.0.0.1:{port}" in done.stdout
    pids = stack.pids()
    assert len(pids) == 4 and all(processes.alive(pid) for pid in pids)
    turns = [get(stack.nginx_port, "/health")[1] for _ in range(6)]
    assert sorted(turns) == ["api-1", "api-1", "api-2", "api-2", "api-3", "api-3"]
    assert turns[:3] != turns[3:] or len(set(turns[:3])) == 3  # round-robin: each in turn

    again = stack.lab("up", "--instances", "3", "--balancer", "nginx", "--workers", "0")
    assert again.returncode == 1 and again.stderr.count("\n") == 1
    assert "already up" in again.stderr

    done = stack.lab("down")
    assert done.returncode == 0 and done.stdout.count("stopped") == 4, done.stdout
    assert not any(processes.alive(pid) for pid in pids)
    assert stack.lab("down").stdout == "down: nothing was running\n"


def test_a_write_through_one_instance_is_read_by_every_instance(stack, owner_url):
    assert stack.lab("up", "--instances", "3", "--balancer", "nginx",
                     "--workers", "0").returncode == 0
    for port in stack.api_ports:  # every instance reads the list, so it is cached
        get(port, "/tasks?limit=1")
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.api_ports[0]}/users", method="POST",
        data=json.dumps({"name": "Ada", "email": f"ada.{stack.lb_port}@example.com",
                         "password": "secret1"}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        user = json.load(answer)["data"]["id"]
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.api_ports[0]}/tasks", method="POST",
        data=json.dumps({"title": "Seen everywhere", "userId": user}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        task = json.load(answer)["data"]["id"]

    async def count() -> int:
        conn = await asyncpg.connect(owner_url)
        try:
            return await conn.fetchval("SELECT count(*) FROM tasks")
        finally:
            await conn.close()

    truth = asyncio.run(count())
    for port in stack.api_ports:  # the next read, on every instance, is after the write
        page, instance = get(port, "/tasks?limit=1")
        assert (page["total"], page["data"][0]["id"]) == (truth, task), instance


def test_a_port_in_use_is_one_line_and_nothing_is_left_running(stack):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", stack.api_ports[1]))
        squatter.listen()
        done = stack.lab("up", "--instances", "3", "--balancer", "nginx")
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert f"cannot listen on 127.0.0.1:{stack.api_ports[1]}" in done.stderr
    assert stack.pids() == []


def test_an_instance_that_never_gets_ready_stops_the_ones_already_started(
        stack, monkeypatch):
    # Its database is gone: it starts, but /health answers 503 until the bounded wait ends.
    for name in ("API_PORT", "LB_PORT", "NGINX_PORT", "DATABASE_OWNER_URL"):
        monkeypatch.setenv(name, stack.env[name])
    monkeypatch.setenv("DATABASE_URL", stack.env["DATABASE_URL"].replace(":5432/", ":1/"))
    monkeypatch.setattr(lab_stack, "READY_TIMEOUT", 2.0)
    with pytest.raises(lab_stack.StackError, match=r"api-1 did not answer .* within 2 s"):
        lab_stack.up(2, "nginx", run_dir=stack.run_dir, say=lambda line: None, workers=0)
    assert stack.pids() == []
    assert not [line for line in subprocess.run(["ps", "-eo", "stat,args"], capture_output=True,
                                                text=True).stdout.splitlines()
                if str(stack.api_ports[0]) in line and not line.startswith("Z")]


def test_up_with_both_balancers_puts_lab_lb_in_front_too_and_its_instances_take_turns(stack):
    done = stack.lab("up", "--instances", "3", "--balancer", "both", "--workers", "0")
    assert done.returncode == 0, done.stderr
    assert f"lab.lb    http://127.0.0.1:{stack.lb_port}" in done.stdout
    assert f"nginx     http://127.0.0.1:{stack.nginx_port}" in done.stdout
    pids = stack.pids()
    assert len(pids) == 5 and all(processes.alive(pid) for pid in pids)
    for port in (stack.lb_port, stack.nginx_port):  # /health is forwarded, not answered
        turns = [get(port, "/health")[1] for _ in range(6)]
        assert sorted(turns) == ["api-1", "api-1", "api-2", "api-2", "api-3", "api-3"], port
        if port == stack.lb_port:  # one process, one round-robin: strictly in turn
            assert len(set(turns[:3])) == 3 and turns[:3] == turns[3:], turns
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.lb_port}/lb-status",
                                timeout=5) as answer:
        status = json.load(answer)
    assert [b["address"] for b in status["backends"]] == [
        f"127.0.0.1:{port}" for port in stack.api_ports]
    assert {b["state"] for b in status["backends"]} == {"up"}

    done = stack.lab("down")
    assert done.returncode == 0 and done.stdout.count("stopped") == 5, done.stdout
    assert "lab.lb: stopped" in done.stdout and "killed" not in done.stdout
    assert not any(processes.alive(pid) for pid in pids)


def walkthrough(repo_root: Path, heading: str) -> list[str]:
    """The commands of the first ``sh`` block under ``heading`` in README.md, without
    their comments and without ``make services`` (done for the tests already)."""
    text = (repo_root / "README.md").read_text()
    section = text.split(f"### {heading}", 1)[1]
    section = re.split(r"\n##+ ", section, maxsplit=1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    assert lines[0] == "make services"
    return lines[1:]


def test_the_readme_walkthrough_runs_as_written(stack, repo_root):
    """The challenge-4 block of README.md, line by line, with this test's ports and run dir."""
    lines = walkthrough(repo_root, "Challenge 4: scalability and load balancing")
    ports = {"8001": stack.api_ports[0], "8080": stack.lb_port, "8081": stack.nginx_port}
    out = []
    for line in lines:
        command = line.replace(".venv/bin/python", sys.executable)
        for readme_port, port in ports.items():
            command = command.replace(f"127.0.0.1:{readme_port}", f"127.0.0.1:{port}")
        if " -m lab up" in command or " -m lab down" in command:
            command += f" --run-dir {stack.run_dir}"
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                              env=stack.env, timeout=120)
        assert done.returncode == 0, (line, done.stderr)
        out.append(done.stdout)
    up, through_lab, through_nginx, first, second, status, down = out
    # Five servers, and the queue's default two workers and relay.
    assert up.count("  (pid ") == 8 and up.startswith("migrations: ")
    for answers in (through_lab, through_nginx):
        names = sorted(re.findall(r"X-Instance: (api-\d)", answers))
        assert names == ["api-1", "api-1", "api-2", "api-2", "api-3", "api-3"], answers
    assert re.search(r"X-Cache: (MISS|HIT)", first), first  # MISS, unless cached before
    assert "X-Cache: HIT" in second, second
    assert len(json.loads(status)["backends"]) == 3
    assert down.count("stopped") == 8 and stack.pids() == []


# -- challenge 5: the queue's workers and relay in the stack ---------------------------


def notifications_of(owner_url: str, task: int) -> list[str]:
    """The worker that wrote each notification of ``task``."""
    async def workers() -> list[str]:
        conn = await asyncpg.connect(owner_url)
        try:
            return [row["worker"] for row in await conn.fetch(
                "SELECT worker FROM notifications WHERE task_id = $1", task)]
        finally:
            await conn.close()
    return asyncio.run(workers())


def test_up_starts_workers_and_a_relay_that_turn_a_write_into_a_notification(stack, owner_url):
    done = stack.lab("up", "--instances", "1", "--balancer", "lab", "--workers", "2")
    assert done.returncode == 0, done.stderr
    work, exchange = stack.topology.work.name, stack.topology.exchange.name
    lines = [line for line in done.stdout.splitlines() if "(pid " in line]
    assert [line.split()[0] for line in lines] == [
        "worker-1", "worker-2", "relay", "api-1", "lab.lb"]  # consumers, producers, doors
    assert lines[0].startswith(f"worker-1  consuming {work}  (pid ")
    assert lines[2].startswith(f"relay     outbox -> {exchange}  (pid ")
    started = stack.started()
    assert [(s["name"], s["port"]) for s in started[:3]] == [
        ("worker-1", 0), ("worker-2", 0), ("relay", 0)]
    pids = stack.pids()
    assert all(processes.alive(pid) for pid in pids)
    assert stack.consumers() == 2

    user = create(stack.lb_port, "/users", {"name": "Ada", "password": "secret1",
                                          "email": f"ada.q{stack.lb_port}@example.com"})["id"]
    task = create(stack.lb_port, "/tasks", {"title": "Tell me", "userId": user})["id"]
    deadline = time.monotonic() + TIMEOUT  # the outbox, the relay, the queue, a worker
    while not notifications_of(owner_url, task):
        assert time.monotonic() < deadline, "no notification within the bounded wait"
        time.sleep(0.1)
    [worker] = notifications_of(owner_url, task)  # one, by a worker the stack named
    assert worker in ("worker-1", "worker-2")

    done = stack.lab("down")
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == [
        "lab.lb", "api-1", "relay", "worker-1", "worker-2"]  # up's order reversed
    assert "killed" not in done.stdout  # each stopped on SIGTERM
    assert not any(processes.alive(pid) for pid in pids) and running_here(stack) == []
    assert stack.consumers() == 0


def test_a_worker_that_exits_at_start_is_one_line_and_nothing_is_left_running(stack):
    # The app's DATABASE_URL names a database the migrations (DATABASE_OWNER_URL) never
    # reached: the worker refuses to consume without its tables.
    stack.env["DATABASE_URL"] = stack.env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    done = stack.lab("up", "--instances", "1", "--balancer", "lab", "--workers", "2")
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("python -m lab up: worker-1 exited at start: ")
    assert "no processed_messages table" in done.stderr
    assert f"(log: {stack.run_dir / 'worker-1.log'})" in done.stderr
    assert stack.pids() == [] and running_here(stack) == []
    assert stack.consumers() == 0


def test_a_relay_that_cannot_connect_stops_the_workers_already_started(stack, monkeypatch):
    # PostgreSQL is not where DATABASE_URL says: a worker consumes anyway (it gives each
    # delivery back until the database answers), the relay never claims a batch.
    for name, value in stack.own.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", stack.env["DATABASE_URL"].replace(":5432/", ":1/"))
    monkeypatch.setattr(lab_stack, "READY_TIMEOUT", 3.0)
    said = []
    with pytest.raises(lab_stack.StackError,
                       match=r"^relay did not connect to PostgreSQL and RabbitMQ within 3 s "
                             r"\(log: .*relay\.log\)$"):
        lab_stack.up(1, "lab", run_dir=stack.run_dir, say=said.append, workers=1)
    assert [line.split()[0] for line in said] == ["migrations:", "worker-1"]
    assert stack.pids() == [] and running_here(stack) == []
    assert stack.consumers() == 0


def test_rabbitmq_unreachable_is_one_line_before_anything_starts(stack):
    stack.env["RABBITMQ_URL"] = "amqp://guest:guest@127.0.0.1:1/"
    done = stack.lab("up", "--instances", "1", "--balancer", "lab")  # 2 workers by default
    assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(
        "python -m lab up: cannot connect to RabbitMQ at guest@127.0.0.1:1/: ")
    assert "make services starts it" in done.stderr
    assert "(pid " not in done.stdout and stack.pids() == [] and running_here(stack) == []


def test_the_memory_store_refuses_workers_and_starts_none_by_default(stack):
    done = stack.lab("up", "--instances", "1", "--balancer", "lab", "--store", "memory",
                     "--workers", "1")
    assert done.returncode == 1 and done.stdout == "", done.stdout
    assert done.stderr == ("python -m lab up: --workers 1 needs --store postgres: the memory "
                           "store writes no outbox, so no event would reach the queue\n")
    assert stack.pids() == [] and running_here(stack) == []

    bad = stack.lab("up", "--workers", "-1")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--workers" in bad.stderr

    done = stack.lab("up", "--instances", "1", "--balancer", "lab", "--store", "memory")
    assert done.returncode == 0, done.stderr
    assert [item["name"] for item in stack.started()] == ["api-1", "lab.lb"]
    assert "worker" not in done.stdout and "relay" not in done.stdout
    assert stack.lab("down").stdout.count("stopped") == 2


def test_the_challenge_5_walkthrough_runs_as_written(stack, repo_root, owner_url):
    """The challenge-5 block of README.md as one bash script, with this test's ports, run
    dir and queue names, retry delays of 0.1 and 0.2 s, and ``sleep 3`` for ``sleep 35``."""
    async def empty() -> None:
        conn = await asyncpg.connect(owner_url)
        try:
            await conn.execute("TRUNCATE processed_messages, notifications, outbox")
        finally:
            await conn.close()
    asyncio.run(empty())
    lines = walkthrough(repo_root, "Challenge 5: queues and asynchronous processing")
    script = ["set -eo pipefail"]
    for n, line in enumerate(lines):
        command = (line.replace(".venv/bin/python", sys.executable)
                   .replace("127.0.0.1:8080", f"127.0.0.1:{stack.lb_port}")
                   .replace(".run/stack/", f"{stack.run_dir}/")
                   .replace("sleep 35", "sleep 3"))
        if " -m lab up" in command or " -m lab down" in command:
            command += f" --run-dir {stack.run_dir}"
        script += [f"echo '@@@ {n}'", command]
    done = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True,
                          env=stack.env, timeout=180)
    assert done.returncode == 0, done.stderr
    out = re.split(r"@@@ \d+\n", done.stdout)[1:]
    up, before, _, _, shared, retries, _, _, after, down = out
    work, dead = stack.topology.work.name, stack.topology.dead_letter.name
    assert up.count("  (pid ") == 6  # two workers, the relay, two instances, lab.lb
    assert re.search(rf"{re.escape(work)}\s+0 ready, 2 consumers", before), before
    assert re.search(r"notifications\s+\d+: worker-1 \d+, worker-2 \d+", shared), shared
    assert f"-> {work}.retry." in retries and "injected failure" in retries, retries
    applied = int(re.search(r"notifications\s+(\d+)", after).group(1))
    parked = int(re.search(rf"{re.escape(dead)}\s+(\d+) ready", after).group(1))
    assert applied + parked == 200, after  # every task: applied once, or dead-lettered
    assert re.search(rf"{re.escape(work)}\s+0 ready, 1 consumer\b", after), after
    assert re.search(r"outbox\s+0 waiting", after), after

    async def effects() -> tuple[int, int]:
        conn = await asyncpg.connect(owner_url)
        try:
            return tuple(await conn.fetchrow(
                "SELECT count(*), count(DISTINCT task_id) FROM notifications"))
        finally:
            await conn.close()
    assert asyncio.run(effects()) == (applied, applied)  # none applied twice
    assert down.count("stopped") == 5  # worker-1 was already gone

"""The issue's fault tests: nothing lost, nothing applied twice, when a part dies.

On the real services, with a topology of the test's own (``names``):

* a worker killed with SIGKILL in the middle of 5,000 events, then started again;
* RabbitMQ itself stopped and started again (``infra/services.sh``) while a worker
  consumes;
* RabbitMQ stopped while the API takes writes: the outbox keeps them, and the relay
  delivers every one once the broker is back.

Stopping the shared broker is bounded: ``broker_down`` always starts it again, and
``start`` waits until it answers. Every wait is bounded; every process started is
stopped by its PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator

import aiormq
import pytest

from bench.servers import create, free_port
from lab import settings
from lab.queue import topology as topo
from lab.queue.relay import Relay
from tests.queue.test_worker import body, cli_env, depth, notifications, publish, until, worker

TIMEOUT = 60  # seconds for any one wait: a broker restart alone takes about 5
SERVICES = [str(settings.REPO_ROOT / "infra" / "services.sh")]

pytestmark = pytest.mark.integration


def services(verb: str) -> None:
    """``infra/services.sh <verb> rabbitmq``: what a user would run."""
    result = subprocess.run(["bash", *SERVICES, verb, "rabbitmq"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, f"services.sh {verb} rabbitmq: {result.stderr}"


@contextlib.asynccontextmanager
async def broker_down() -> AsyncIterator[None]:
    """RabbitMQ stopped for the block, started again whatever happens in it."""
    await asyncio.to_thread(services, "stop")
    try:
        yield
    finally:
        await asyncio.to_thread(services, "start")


async def publish_all(ch, names, count: int) -> list[str]:
    """``count`` events on the work queue, confirmed; their ids."""
    ids = []
    for start in range(0, count, 500):  # 500 in flight at a time, each confirmed
        batch = [body(n + 1) for n in range(start, min(count, start + 500))]
        await asyncio.gather(*(publish(ch, names, data, mid) for mid, data in batch))
        ids += [mid for mid, _ in batch]
    return ids


async def each_applied_once(owner, ids: list[str]) -> None:
    rows = await owner.fetch("SELECT message_id::text AS id, count(*) AS n FROM notifications "
                             "GROUP BY message_id")
    assert sorted(r["id"] for r in rows) == sorted(ids)  # none lost, none foreign
    assert {r["n"] for r in rows} == {1}  # none twice


async def fresh_channel(names) -> tuple[aiormq.abc.AbstractConnection, object]:
    connection = await aiormq.connect(names.rabbitmq_url)
    return connection, await connection.channel()


def start_worker(names, app_url: str, log) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lab.queue", "worker"],
                            cwd=settings.REPO_ROOT, env=cli_env(names, app_url),
                            stdout=subprocess.DEVNULL, stderr=log)


def stopped(process: subprocess.Popen) -> int:
    """SIGTERM, then the exit code (SIGKILL if it does not stop within TIMEOUT)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=TIMEOUT)
        raise


async def test_a_worker_killed_mid_run_loses_nothing_once_restarted(owner, app_url, names,
                                                                   channel, tmp_path):
    COUNT = 5000
    ids = await publish_all(channel, names, COUNT)
    log = (tmp_path / "worker.log").open("w")
    first = start_worker(names, app_url, log)
    try:
        async def some():
            return await notifications(owner) >= 200
        await until(some, TIMEOUT)
    finally:
        first.kill()  # SIGKILL: no drain, no close; its unacked deliveries go back
        first.wait(timeout=TIMEOUT)
    assert first.returncode == -signal.SIGKILL
    assert await notifications(owner) < COUNT  # killed in the middle of the run

    second = start_worker(names, app_url, log)
    try:
        async def all_applied():
            return await notifications(owner) == COUNT
        await until(all_applied, TIMEOUT)
    finally:
        assert stopped(second) == 0
    await each_applied_once(owner, ids)
    assert await depth(channel, names.queue_work) == 0
    assert await owner.fetchval("SELECT count(*) FROM processed_messages") == COUNT


async def test_rabbitmq_restarted_mid_run_the_worker_reconnects_and_loses_nothing(
        owner, app_url, names, channel):
    COUNT = 3000
    ids = await publish_all(channel, names, COUNT)  # persistent, on a durable queue
    running = worker(names, app_url, backoff=lambda failures: 0.2).start()
    try:
        async def some():
            return await notifications(owner) >= 300
        await until(some, TIMEOUT)
        # The worker is faster than a broker stops: hold its statements (a lock on the
        # table they insert into) until the broker is down, then let them commit -- their
        # acks cannot go, so those messages come again after the restart, as duplicates.
        held, released = owner.transaction(), False
        await held.start()
        try:
            await owner.execute("LOCK TABLE notifications IN SHARE ROW EXCLUSIVE MODE")
            async with broker_down():
                applied = await notifications(owner)
                await held.commit()
                released = True
                await asyncio.sleep(1)  # the worker, cut off, keeps trying
        finally:
            if not released:  # something failed before the commit
                await held.rollback()
        assert applied < COUNT  # restarted in the middle of the run

        async def all_applied():
            return await notifications(owner) == COUNT
        await until(all_applied, TIMEOUT)
    finally:
        w = await running.stopped()
    assert w.sessions >= 2 and w.failures == 0  # connected again, and is connected now
    await each_applied_once(owner, ids)
    connection, ch = await fresh_channel(names)  # the fixture's connection died
    try:
        assert await depth(ch, names.queue_work) == 0
    finally:
        await connection.close()


@pytest.fixture
async def api(owner, app_url, tmp_path):
    """``python -m lab.api --store postgres`` on a free port, its tables emptied; the port."""
    await owner.execute("TRUNCATE tasks, categories, users, outbox RESTART IDENTITY CASCADE")
    port = free_port()
    log = (tmp_path / "api.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "lab.api", "--store", "postgres",
                                "--port", str(port), "--no-migrate", "--no-access-log"],
                               cwd=settings.REPO_ROOT, env=dict(os.environ, DATABASE_URL=app_url),
                               stdout=log, stderr=log)
    try:
        async def answering():
            url = f"http://127.0.0.1:{port}/health"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
                return True
            return process.poll() is not None  # exited: the assertion below says so
        await until(answering, TIMEOUT)
        assert process.poll() is None, (tmp_path / "api.log").read_text()
        yield port
    finally:
        assert stopped(process) == 0


async def test_writes_while_rabbitmq_is_down_are_all_delivered_once_it_is_back(
        owner, app_url, names, channel, api):
    COUNT = 200
    user = await asyncio.to_thread(create, api, "/users", {
        "name": "Ada", "email": "ada@example.com", "password": "analytical"})
    relay = Relay(app_url, names.rabbitmq_url, topo.plan_from(names), interval=0.05,
                  backoff=lambda failures: 0.2)
    relay_stop = asyncio.Event()
    relaying = asyncio.create_task(relay.run(relay_stop))
    running = worker(names, app_url, backoff=lambda failures: 0.2).start()
    try:
        async with broker_down():
            tasks = [await asyncio.to_thread(create, api, "/tasks", {
                "title": f"Written while RabbitMQ is down {n}", "userId": user["id"]})
                for n in range(COUNT)]  # every one answered 201: the API does not need it
            waiting = await owner.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL")
            assert waiting == COUNT  # kept, not lost, not sent
            assert relay.failures > 0  # the relay noticed, and waits it out

        async def all_applied():
            return await notifications(owner) == COUNT
        await until(all_applied, TIMEOUT)
    finally:
        relay_stop.set()
        async with asyncio.timeout(TIMEOUT):
            await relaying
        await running.stopped()
    rows = await owner.fetch("SELECT task_id, event_type, count(*) AS n FROM notifications "
                             "GROUP BY task_id, event_type")
    assert sorted(r["task_id"] for r in rows) == sorted(t["id"] for t in tasks)
    assert {(r["event_type"], r["n"]) for r in rows} == {("task.created", 1)}
    assert await owner.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0

"""lab.queue.worker on the real RabbitMQ and PostgreSQL, and ``python -m lab.queue worker``.

Each test declares a topology of its own (``test.<random>.*``, retry delays of 0.1 and
0.2 s), deleted at the end, and truncates the effect tables as the owner; workers run
in-process (``Running``) as the API's role. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from urllib.parse import urlsplit

import aiormq
import pytest

from lab import settings
from lab.queue import events
from lab.queue import topology as topo
from lab.queue.handler import FailureRate
from lab.queue.lifecycle import State
from lab.queue.worker import Worker
from tests.queue.conftest import DELAYS

TIMEOUT = 20  # seconds: no test waits longer for any one thing


class Running:
    """A Worker run as a task of the test, started and stopped like the CLI's (SIGTERM)."""

    def __init__(self, worker: Worker):
        self.worker = worker
        self.stop = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self) -> Running:
        self.task = asyncio.create_task(self.worker.run(self.stop))
        return self

    async def stopped(self) -> Worker:
        self.stop.set()
        assert self.task is not None
        async with asyncio.timeout(TIMEOUT):
            await self.task  # run() returns; it raises only on a bug
        return self.worker


def worker(names, app_url, **options) -> Running:
    return Running(Worker(names.rabbitmq_url, app_url, topo.plan_from(names), **options))


def cli_env(names, database_url: str) -> dict[str, str]:
    """The environment of a ``python -m lab.queue`` child on the test's names."""
    return dict(os.environ, QUEUE_EXCHANGE=names.queue_exchange, QUEUE_WORK=names.queue_work,
                QUEUE_DEAD_LETTER=names.queue_dead_letter,
                QUEUE_RETRY_DELAYS=",".join(map(str, names.queue_retry_delays)),
                DATABASE_URL=database_url)


def body(task_id: int = 7) -> tuple[str, bytes]:
    event = events.build_event("task.deleted", {"id": task_id})
    return event.id, events.encode(event)


async def publish(ch, names, data: bytes, message_id: str) -> None:
    await ch.basic_publish(data, exchange=names.queue_exchange, routing_key="task.deleted",
                           properties=aiormq.spec.Basic.Properties(
                               message_id=message_id, delivery_mode=2), mandatory=True)


async def notifications(owner) -> int:
    return await owner.fetchval("SELECT count(*) FROM notifications")


async def until(check, within: float = TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {within} s")
        await asyncio.sleep(0.05)


async def depth(ch, queue: str) -> int:
    return (await ch.queue_declare(queue, passive=True)).message_count


async def drain(ch, queue: str) -> list:
    got = []
    while (m := await ch.basic_get(queue, no_ack=True, timeout=TIMEOUT)).delivery_tag:
        got.append(m)
    return got


pytestmark = pytest.mark.integration


async def test_a_valid_event_is_applied_once_and_acked(owner, app_url, names, channel):
    running = worker(names, app_url, name="worker-7").start()
    message_id, data = body()
    await publish(channel, names, data, message_id)

    async def done():
        return await notifications(owner) == 1
    await until(done)
    w = await running.stopped()
    assert w.outcomes[State.PROCESSED] == 1 and w.handled == 1
    assert await owner.fetchval("SELECT worker FROM notifications") == "worker-7"
    assert await depth(channel, names.queue_work) == 0  # acked, not waiting
    assert await depth(channel, names.queue_dead_letter) == 0


@pytest.mark.parametrize("data", [b'{"type": "task.created", "version": 1}', b"not json",
                                  b"[" * (events.MAX_EVENT_BYTES + 1)],
                         ids=["not-an-event", "not-json", "oversized"])
async def test_an_invalid_body_goes_to_the_dead_letter_queue_at_once(owner, app_url, names,
                                                                     channel, data):
    running = worker(names, app_url).start()
    await publish(channel, names, data, "bad-1")

    async def dead():
        return await depth(channel, names.queue_dead_letter) == 1
    await until(dead)
    w = await running.stopped()
    [m] = await drain(channel, names.queue_dead_letter)
    headers = m.header.properties.headers
    assert headers["x-death-reason"] == "invalid" and headers["x-error"]
    assert m.header.properties.message_id == "bad-1" and m.header.properties.delivery_mode == 2
    assert m.body == data  # kept as it came, for whoever reads the dead-letter queue
    assert w.handled == 0 and w.outcomes[State.DEAD_LETTERED] == 1
    assert await notifications(owner) == 0
    assert await depth(channel, names.queue_work) == 0


async def test_a_message_that_always_fails_is_tried_then_dead_lettered(owner, app_url, names,
                                                                       channel):
    running = worker(names, app_url, fail=FailureRate(1.0)).start()
    message_id, data = body()
    await publish(channel, names, data, message_id)

    async def dead():
        return await depth(channel, names.queue_dead_letter) == 1
    await until(dead)
    await asyncio.sleep(0.5)  # longer than every delay: a stray extra attempt would show
    w = await running.stopped()
    assert w.handled == 1 + len(DELAYS)
    assert w.outcomes[State.RETRY_SCHEDULED] == len(DELAYS)
    assert w.outcomes[State.DEAD_LETTERED] == 1
    [m] = await drain(channel, names.queue_dead_letter)
    headers = m.header.properties.headers
    assert headers["x-attempt"] == 1 + len(DELAYS)
    assert headers["x-death-reason"] == "delivery_limit"
    assert "HandlerFailure" in headers["x-error"]
    assert m.header.properties.message_id == message_id and m.body == data
    # The broker's own record of each wait, kept on every copy: one entry per retry queue.
    deaths = {d["queue"]: d for d in headers["x-death"]}
    assert set(deaths) == {q.name for q in topo.plan_from(names).retries}
    assert {d["reason"] for d in deaths.values()} == {"expired"}
    assert await notifications(owner) == 0  # every attempt rolled back


async def test_the_same_message_twice_has_one_effect(owner, app_url, names, channel):
    running = worker(names, app_url).start()
    message_id, data = body()
    for _ in range(2):
        await publish(channel, names, data, message_id)

    async def both():
        return running.worker.outcomes[State.PROCESSED] == 2
    await until(both)
    await running.stopped()
    assert await notifications(owner) == 1
    assert await depth(channel, names.queue_work) == 0


async def test_two_workers_share_200_events_each_applied_once(owner, app_url, names,
                                                             channel):
    runnings = [worker(names, app_url, prefetch=10, concurrency=4).start() for _ in range(2)]
    ids = []
    for n in range(200):
        message_id, data = body(n + 1)
        ids.append(message_id)
        await publish(channel, names, data, message_id)

    async def all_applied():
        return await notifications(owner) == 200
    await until(all_applied)
    workers = [await r.stopped() for r in runnings]
    rows = await owner.fetch("SELECT message_id, count(*) AS n FROM notifications "
                             "GROUP BY message_id")
    assert sorted(str(r["message_id"]) for r in rows) == sorted(ids)
    assert {r["n"] for r in rows} == {1}
    assert sum(w.outcomes[State.PROCESSED] for w in workers) == 200
    assert await depth(channel, names.queue_work) == 0


async def test_what_waits_is_applied_in_batches_each_event_once(owner, app_url, names,
                                                               channel):
    ids = []
    for n in range(100):
        message_id, data = body(n + 1)
        ids.append(message_id)
        await publish(channel, names, data, message_id)
    running = worker(names, app_url, prefetch=50, concurrency=1, batch=20).start()

    async def all_applied():
        return await notifications(owner) == 100
    await until(all_applied)
    w = await running.stopped()
    assert w.handled == 100 and w.outcomes[State.PROCESSED] == 100
    assert 100 / 20 <= w.batches < 100  # several a statement, never more than 20
    rows = await owner.fetch("SELECT message_id::text AS id FROM notifications")
    assert sorted(r["id"] for r in rows) == sorted(ids)


async def test_stopping_gives_back_what_was_not_started(owner, app_url, names, channel):
    for n in range(50):
        message_id, data = body(n + 1)
        await publish(channel, names, data, message_id)
    running = worker(names, app_url, prefetch=50, concurrency=1).start()

    async def some():
        return running.worker.handled > 0
    await until(some)
    w = await running.stopped()
    left = await depth(channel, names.queue_work)
    applied = await notifications(owner)
    assert applied + left == 50  # nothing lost: applied, or back in the queue
    assert w.outcomes[State.PROCESSED] == applied


async def test_postgresql_down_gives_the_message_back(owner, names, channel):
    running = worker(names, "postgresql://lab_app:pw@127.0.0.1:1/lab_test",
                     nack_pause=0.05).start()
    message_id, data = body()
    await publish(channel, names, data, message_id)

    async def requeued_twice():
        return running.worker.outcomes[State.REQUEUED] >= 2  # given back, delivered again
    await until(requeued_twice)
    w = await running.stopped()
    assert set(w.outcomes) == {State.REQUEUED}  # neither retried nor dead-lettered
    assert await depth(channel, names.queue_work) == 1
    assert await depth(channel, names.queue_dead_letter) == 0


async def test_a_copy_the_broker_cannot_route_leaves_the_message_in_the_queue(
        owner, app_url, names, channel):
    # The first retry queue is deleted under the worker: the copy comes back (mandatory,
    # basic.return), so the original must not be acked -- it is given back, after a pause.
    running = worker(names, app_url, fail=FailureRate(1.0), nack_pause=0.05).start()

    async def consuming():
        return (await channel.queue_declare(names.queue_work, passive=True)).consumer_count == 1
    await until(consuming)  # declared by the worker too: delete it only now
    await channel.queue_delete(topo.plan_from(names).retry_queue(1).name)
    message_id, data = body()
    await publish(channel, names, data, message_id)

    async def given_back_twice():
        return running.worker.outcomes[State.REQUEUED] >= 2
    await until(given_back_twice)
    w = await running.stopped()
    assert set(w.outcomes) == {State.REQUEUED}  # never counted as scheduled or dead
    assert await depth(channel, names.queue_work) == 1
    assert await depth(channel, names.queue_dead_letter) == 0


async def test_a_delivery_that_outlasts_the_drain_timeout_is_redelivered(owner, app_url,
                                                                        names, channel):
    message_id, data = body()
    # The test's open transaction holds the idempotency key: the worker's insert waits on it.
    held = owner.transaction()
    await held.start()
    await owner.execute("INSERT INTO processed_messages (message_id) VALUES ($1)",
                        uuid.UUID(message_id))
    try:
        running = worker(names, app_url, drain_timeout=0.3).start()
        await publish(channel, names, data, message_id)

        async def started():
            return running.worker.handled == 1
        await until(started)
        began = time.monotonic()
        w = await running.stopped()
        assert time.monotonic() - began < 5  # bounded by drain_timeout, not by the lock
    finally:
        await held.rollback()
    assert w.outcomes[State.PROCESSED] == 0
    assert await depth(channel, names.queue_work) == 1  # unacked: requeued by the broker
    assert await notifications(owner) == 0


async def test_a_refused_subscription_is_backed_off_then_consumed(owner, app_url, names,
                                                                 channel):
    # Another consumer holds the work queue exclusively: basic.consume is refused
    # (ACCESS_REFUSED) after every successful connect. The worker must back off, not spin.
    async def nothing(message) -> None:
        pass
    holder = await channel.basic_consume(names.queue_work, nothing, exclusive=True)
    running = worker(names, app_url, backoff=lambda failures: 0.2).start()
    await asyncio.sleep(1.5)
    assert running.worker.sessions == 0 and 2 <= running.worker.failures <= 10
    await channel.basic_cancel(holder.consumer_tag)
    message_id, data = body()
    await publish(channel, names, data, message_id)

    async def applied():
        return await notifications(owner) == 1
    await until(applied)
    w = await running.stopped()
    assert w.sessions == 1 and w.failures == 0


class Proxy:
    """A TCP proxy to RabbitMQ on 127.0.0.1, port 0; ``cut()`` drops every connection."""

    def __init__(self, port: int):
        self.port, self.server, self.writers = port, None, []

    async def __aenter__(self) -> Proxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc) -> None:
        self.cut()
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()  # no AMQP close: what a network failure looks like
        self.writers.clear()

    async def _serve(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers += [writer, up_writer]

        async def pipe(src, dst):
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def test_a_lost_connection_is_reconnected_and_nothing_is_lost(owner, app_url, names,
                                                                   channel):
    COUNT = 1000
    port = urlsplit(names.rabbitmq_url).port or 5672
    async with Proxy(port) as proxy:
        for n in range(COUNT):
            message_id, data = body(n + 1)
            await publish(channel, names, data, message_id)
        running = Running(Worker(proxy.url, app_url, topo.plan_from(names), prefetch=4,
                                 concurrency=2, backoff=lambda n: 0.1)).start()

        async def some():
            return await notifications(owner) >= 10
        await until(some)
        proxy.cut()
        assert await notifications(owner) < COUNT  # cut in the middle of the run

        async def all_applied():
            return await notifications(owner) == COUNT
        await until(all_applied)
        w = await running.stopped()
    assert w.sessions >= 2
    rows = await owner.fetch("SELECT count(*) AS n FROM notifications GROUP BY message_id")
    assert len(rows) == COUNT and {r["n"] for r in rows} == {1}
    assert await depth(channel, names.queue_work) == 0


# -- the command line ----------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.queue", *args], cwd=settings.REPO_ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)


@pytest.mark.parametrize("args", [["--bogus"], ["--prefetch", "0"], ["--concurrency", "x"],
                                  ["--batch", "0"], ["--failure-rate", "1.5"]])
def test_a_bad_flag_is_one_line_and_exit_2(args) -> None:
    result = cli("worker", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("python -m lab.queue") and "error:" in result.stderr
    assert result.stderr.count("\n") == 1 and result.stdout == ""


def test_a_database_without_the_tables_is_one_line_and_exit_1(owner_url) -> None:
    # A database the migrations never ran on: a mistake to report, not an outage to wait out.
    elsewhere = urlsplit(owner_url)._replace(path="/postgres").geturl()
    result = cli("worker", "--database-url", elsewhere)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "no processed_messages table: run 'python -m lab.db migrate' first" in result.stderr


def test_help_names_the_flags() -> None:
    result = cli("worker", "--help")
    assert result.returncode == 0
    for word in ("--prefetch", "--concurrency", "--batch", "--failure-rate", "--name", "SIGTERM"):
        assert word in result.stdout, word


async def test_the_cli_consumes_then_exits_0_on_sigterm(owner, app_url, names, channel):
    env = cli_env(names, app_url)
    message_id, data = body()
    await publish(channel, names, data, message_id)
    process = subprocess.Popen([sys.executable, "-m", "lab.queue", "worker"],
                               cwd=settings.REPO_ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        async def applied():
            return await notifications(owner) == 1
        await until(applied)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, err = process.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate(timeout=TIMEOUT)
            pytest.fail(f"the worker did not stop on SIGTERM: {err}")
    assert process.returncode == 0, err
    assert "Traceback" not in err

"""lab.queue.outbox and lab.queue.relay: rows to messages (no I/O), then the real relay.

The integration tests use lab_test's ``public`` schema (the outbox truncated by the
owner first), RabbitMQ with a topology of the test's own (``test.<random>.*``,
deleted at the end), and the relay as the API's role. Every wait is bounded; every
process started is stopped by its PID.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import aiormq
import asyncpg
import pytest

from lab import settings
from lab.queue import events, outbox
from lab.queue import topology as topo
from lab.queue.relay import Relay

PROG = "python -m lab.queue"
TIMEOUT = 20  # seconds: no test waits longer for any one thing
TOPOLOGY = topo.plan("x.tasks", "x.work", (1.0,), "x.dead")
NOW = datetime(2026, 12, 5, 9, 55, 39, 891438, tzinfo=UTC)
TASK = {"id": 7, "title": "Write", "description": "", "status": "pending", "userId": 3,
        "categoryId": None, "createdAt": NOW.isoformat(), "updatedAt": NOW.isoformat()}


def row(kind: str = "task.created", payload=None) -> dict:
    return {"id": uuid.uuid4(), "type": kind, "occurred_at": NOW,
            "payload": events.orjson.dumps(TASK if payload is None else payload).decode()}


# -- pure: rows to messages, backoff, progress ---------------------------------------------


def test_a_row_becomes_a_persistent_event_routed_by_its_type() -> None:
    r = row("task.updated")
    m = outbox.message_for(r, TOPOLOGY)
    assert (m.exchange, m.routing_key, m.dead) == ("x.tasks", "task.updated", False)
    assert m.properties.message_id == str(r["id"]) == m.row_id
    assert m.properties.delivery_mode == 2 and m.properties.content_type == "application/json"
    event = events.decode(m.body)
    assert (event.id, event.type, event.occurred_at) == (str(r["id"]), "task.updated", NOW)
    assert event.source == "lab.api" and event.payload["title"] == "Write"


def test_a_deleted_task_carries_its_id() -> None:
    m = outbox.message_for(row("task.deleted", {"id": 7}), TOPOLOGY)
    assert events.decode(m.body).payload == {"id": 7}


@pytest.mark.parametrize("payload", [{"id": 7}, {**TASK, "title": ""}, [1, 2],
                                     {**TASK, "description": "x" * 20000}])
def test_a_row_that_is_no_valid_event_is_dead_lettered_at_the_source(payload) -> None:
    r = row("task.created", payload)
    m = outbox.message_for(r, TOPOLOGY)
    assert (m.exchange, m.routing_key, m.dead) == ("", "x.dead", True)
    headers = m.properties.headers
    assert headers["x-death-reason"] == "invalid" and headers["x-error"]
    assert "\n" not in headers["x-error"] and len(headers["x-error"]) <= 200
    assert m.properties.message_id == str(r["id"])
    assert events.orjson.loads(m.body)["id"] == str(r["id"])


def test_backoff_doubles_up_to_its_cap_with_jitter() -> None:
    top = [outbox.backoff(n, base=0.2, cap=5.0, random=lambda: 1.0) for n in range(1, 9)]
    assert top == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]
    assert outbox.backoff(3, base=0.2, cap=5.0, random=lambda: 0.0) == pytest.approx(0.4)
    assert outbox.backoff(10_000) == pytest.approx(10.0, rel=0.5)  # no overflow
    with pytest.raises(ValueError, match=r"^failures must be at least 1"):
        outbox.backoff(0)


def test_progress_says_the_rate_every_few_seconds() -> None:
    now = [100.0]
    progress = outbox.Progress(clock=lambda: now[0], every=5.0)
    progress.record(1000)
    now[0] += 2
    assert progress.summary() is None
    progress.record(1400, 1)
    now[0] += 3
    assert progress.summary() == ("2401 rows relayed in 5.0 s (480/s); since the start "
                                  "2400 published, 1 dead-lettered")
    assert progress.summary(force=True).startswith("0 rows relayed in 0.0 s")


# -- on the real PostgreSQL and RabbitMQ ---------------------------------------------------

INSERT_SQL = """INSERT INTO outbox (type, occurred_at, payload)
SELECT CASE WHEN g % 3 = 0 THEN 'task.deleted' ELSE 'task.created' END,
       now() + g * interval '1 microsecond',
       CASE WHEN g % 3 = 0 THEN jsonb_build_object('id', g) ELSE jsonb_build_object(
           'id', g, 'title', 'task ' || g, 'description', '', 'status', 'pending',
           'userId', NULL, 'categoryId', NULL, 'createdAt', now(), 'updatedAt', now()) END
FROM generate_series(1, $1) g"""


@pytest.fixture
async def owner(migrated_public, owner_url):
    """The owner's connection, the outbox emptied (the API's role may not TRUNCATE)."""
    conn = await asyncpg.connect(owner_url)
    await conn.execute("TRUNCATE outbox")
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def names() -> settings.Settings:
    prefix = f"test.{uuid.uuid4().hex[:12]}"
    return dataclasses.replace(settings.load(), queue_exchange=f"{prefix}.tasks",
                               queue_work=f"{prefix}.work", queue_retry_delays=(0.2,),
                               queue_dead_letter=f"{prefix}.dead")


@pytest.fixture
async def channel(names):
    """A channel on the real broker, the test's topology declared; deleted at the end."""
    t = topo.plan_from(names)
    async with asyncio.timeout(TIMEOUT):
        connection = await aiormq.connect(names.rabbitmq_url)
        ch = await connection.channel()
        await topo.declare(ch, t)
    try:
        yield ch
    finally:
        cleanup = await connection.channel()
        async with asyncio.timeout(TIMEOUT):
            for queue in t.queues:
                await cleanup.queue_delete(queue.name)
            await cleanup.exchange_delete(t.exchange.name)
            await connection.close()


async def drain(ch, queue: str, expected: int, within: float = TIMEOUT) -> list:
    """Every message on ``queue`` (no_ack), once ``expected`` came and nothing more follows."""
    got = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        message = await ch.basic_get(queue, no_ack=True, timeout=TIMEOUT)
        if message.delivery_tag is not None:
            got.append(message)
        elif len(got) >= expected:
            return got
        else:
            await asyncio.sleep(0.02)
    pytest.fail(f"{len(got)} of {expected} messages arrived on {queue} within {within} s")


async def unpublished(owner) -> int:
    return await owner.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")


async def until_published(owner, within: float = TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while await unpublished(owner):
        if time.monotonic() > deadline:
            pytest.fail(f"{await unpublished(owner)} rows still unpublished after {within} s")
        await asyncio.sleep(0.05)


async def stopped(*tasks: asyncio.Task, stop: asyncio.Event) -> None:
    stop.set()
    async with asyncio.timeout(TIMEOUT):
        await asyncio.gather(*tasks)  # run() returns, it does not raise


@pytest.mark.integration
async def test_each_row_arrives_once_confirmed_and_is_marked(owner, app_url, names,
                                                             channel) -> None:
    await owner.execute(INSERT_SQL, 120)
    relay = Relay(app_url, names.rabbitmq_url, topo.plan_from(names), batch_size=50)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await until_published(owner)
    await stopped(task, stop=stop)
    rows = {str(r["id"]): r["type"] for r in await owner.fetch("SELECT id, type FROM outbox")}
    got = await drain(channel, names.queue_work, 120)
    assert sorted(m.header.properties.message_id for m in got) == sorted(rows)
    for m in got:
        props = m.header.properties
        assert props.delivery_mode == 2 and props.content_type == "application/json"
        assert m.routing_key == rows[props.message_id]
        event = events.decode(m.body)
        assert event.id == props.message_id and event.type == m.routing_key
    assert relay.progress.published == 120 and relay.failures == 0


@pytest.mark.integration
async def test_two_relays_share_500_rows_each_published_once(owner, app_url, names,
                                                             channel) -> None:
    await owner.execute(INSERT_SQL, 500)
    relays = [Relay(app_url, names.rabbitmq_url, topo.plan_from(names), batch_size=20)
              for _ in range(2)]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in relays]
    await until_published(owner)
    await stopped(*tasks, stop=stop)
    got = await drain(channel, names.queue_work, 500)
    counts = collections.Counter(m.header.properties.message_id for m in got)
    assert len(counts) == 500 and set(counts.values()) == {1}
    assert [r.progress.published for r in relays] != [500, 0]  # both took a share
    assert sum(r.progress.published for r in relays) == 500


@pytest.mark.integration
async def test_an_invalid_row_goes_to_the_dead_letter_queue_and_blocks_nothing(
        owner, app_url, names, channel) -> None:
    await owner.execute(INSERT_SQL, 3)
    bad = await owner.fetchval("INSERT INTO outbox (type, payload) VALUES ('task.created', "
                               "'{\"id\": 1}') RETURNING id")
    await owner.execute(INSERT_SQL, 3)
    relay = Relay(app_url, names.rabbitmq_url, topo.plan_from(names), batch_size=4)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    await until_published(owner)
    await stopped(task, stop=stop)
    assert len(await drain(channel, names.queue_work, 6)) == 6
    [dead] = await drain(channel, names.queue_dead_letter, 1)
    assert dead.header.properties.message_id == str(bad)
    headers = dead.header.properties.headers
    assert headers["x-death-reason"] == "invalid" and "title" in headers["x-error"]
    assert (relay.progress.published, relay.progress.dead_lettered) == (6, 1)


@pytest.mark.integration
async def test_an_unreachable_broker_leaves_the_rows_and_the_relay_waits(
        owner, app_url, caplog) -> None:
    await owner.execute(INSERT_SQL, 10)
    relay = Relay(app_url, "amqp://guest:guest@127.0.0.1:1/", TOPOLOGY,
                  backoff=lambda n: 0.1)
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="lab.queue.relay"):
        task = asyncio.create_task(relay.run(stop))
        await asyncio.sleep(1.0)
        assert not task.done()  # still trying, not crashed
        await stopped(task, stop=stop)
    assert await unpublished(owner) == 10
    assert relay.failures >= 3
    lines = [r.getMessage() for r in caplog.records if r.name == "lab.queue.relay"]
    assert lines and all("cannot connect to RabbitMQ at guest@127.0.0.1:1/" in x for x in lines)


class NackingChannel:
    """A confirm-mode channel whose broker nacks the third publish of every batch."""

    def __init__(self):
        self.published = 0

    async def basic_publish(self, body, **kwargs):
        self.published += 1
        number = self.published
        await asyncio.sleep(0)  # the confirm comes later: the others are in flight meanwhile
        if number % 3 == 0:
            raise aiormq.exceptions.DeliveryError(None, aiormq.spec.Basic.Nack(delivery_tag=3))
        return aiormq.spec.Basic.Ack()

    async def close(self):
        pass


@pytest.mark.integration
async def test_a_nacked_publish_rolls_the_batch_back(owner, app_url, caplog) -> None:
    await owner.execute(INSERT_SQL, 10)
    fake = NackingChannel()

    async def connect_broker():
        return fake

    relay = Relay(app_url, "amqp://guest:guest@127.0.0.1:1/", TOPOLOGY,
                  backoff=lambda n: 0.05, connect_broker=connect_broker)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    async with asyncio.timeout(TIMEOUT):
        while fake.published < 30:  # three batches of 10, each with a nack
            await asyncio.sleep(0.01)
    await stopped(task, stop=stop)
    assert await unpublished(owner) == 10  # every batch rolled back, nothing marked
    assert relay.progress.published == 0 and relay.failures >= 3
    assert any("Nack" in r.getMessage() for r in caplog.records)


# -- the command line ----------------------------------------------------------------------


def env_for(names: settings.Settings | None = None, **more: str) -> dict[str, str]:
    env = dict(os.environ)
    if names is not None:
        env.update(QUEUE_EXCHANGE=names.queue_exchange, QUEUE_WORK=names.queue_work,
                   QUEUE_DEAD_LETTER=names.queue_dead_letter, QUEUE_RETRY_DELAYS="0.2")
    env.update(more)
    return env


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.queue", *args], cwd=settings.REPO_ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)


def start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lab.queue", "relay", *args],
                            cwd=settings.REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def terminate(process: subprocess.Popen) -> tuple[int, str]:
    """SIGTERM to this PID; its exit status and stderr (killed if it does not stop)."""
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate(timeout=TIMEOUT)
        pytest.fail(f"the relay did not stop on SIGTERM: {err}")
    return process.returncode, err


def test_help_names_the_flags() -> None:
    result = cli("relay", "--help")
    assert result.returncode == 0
    for word in ("--batch-size", "--interval", "--confirm-timeout", "SKIP LOCKED",
                 "DATABASE_URL", "SIGTERM"):
        assert word in result.stdout, word
    assert "relay" in cli("--help").stdout


@pytest.mark.parametrize("args", [["--bogus"], ["--batch-size", "0"], ["--interval", "x"],
                                  ["--database-url", "mysql://u:secret@h/db"]])
def test_a_bad_flag_is_one_line_and_exit_2(args) -> None:
    result = cli("relay", *args)
    assert result.returncode == 2
    assert result.stderr.startswith(f"{PROG}") and "error:" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "secret" not in result.stderr and result.stdout == ""


@pytest.mark.integration
@pytest.mark.parametrize("where", ["rabbitmq", "postgresql"])
async def test_the_cli_waits_out_an_outage_and_exits_0_on_sigterm(owner, app_url, where,
                                                                  names, channel) -> None:
    # Its own names (deleted with `channel`): with only PostgreSQL gone, the relay does
    # reach RabbitMQ and declares its topology there.
    await owner.execute(INSERT_SQL, 5)
    url = ("--rabbitmq-url=amqp://guest:guest@127.0.0.1:1/" if where == "rabbitmq"
           else "--database-url=postgresql://lab_app:secret-pw@127.0.0.1:1/lab_test")
    process = start(url, env=env_for(names, DATABASE_URL=app_url))
    try:
        await asyncio.sleep(1.5)
        assert process.poll() is None  # still running
    finally:
        status, err = terminate(process)
    assert status == 0, err
    assert "Traceback" not in err and "secret-pw" not in err
    failures = [line for line in err.splitlines() if "retrying in" in line]
    assert failures and all(line.count("cannot connect to") == 1 for line in failures)
    assert "127.0.0.1:1" in failures[0]
    assert await unpublished(owner) == 5


@pytest.mark.integration
async def test_the_cli_relays_then_exits_0_on_sigterm(owner, app_url, names, channel) -> None:
    await owner.execute(INSERT_SQL, 300)
    process = start("--log-level", "debug", env=env_for(names, DATABASE_URL=app_url))
    try:
        await until_published(owner)
    finally:
        status, err = terminate(process)
    assert status == 0, err
    assert "batch: " in err and "stopped; " in err and "Traceback" not in err
    assert len(await drain(channel, names.queue_work, 300)) == 300

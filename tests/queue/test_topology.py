"""lab.queue.topology: the declarations as data (no broker), then on the real RabbitMQ.

The broker tests use names of their own (``test.<random>.*``) and delays of a
fraction of a second, declare through the same code as the CLI, and delete
everything they declared, whatever happened. No wait is unbounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator

import aiormq
import aiormq.exceptions
import pytest

from lab import settings
from lab.queue import topology as topo

PROG = "python -m lab.queue"
TIMEOUT = 10  # seconds: no test waits longer for any one thing


def plan_default() -> topo.Topology:
    return topo.plan("lab.tasks", "lab.tasks.work", (1.0, 5.0, 25.0), "lab.tasks.dead")


# -- pure: the declarations as data ------------------------------------------------------


def test_the_default_plan() -> None:
    t = plan_default()
    assert t.exchange == topo.Exchange("lab.tasks", "topic", durable=True)
    assert t.work.name == "lab.tasks.work" and t.work.durable
    assert t.bindings == (topo.Binding("lab.tasks.work", "lab.tasks", "task.*"),)
    assert [q.name for q in t.retries] == [
        "lab.tasks.work.retry.1s", "lab.tasks.work.retry.5s", "lab.tasks.work.retry.25s"]
    assert t.dead_letter == topo.Queue("lab.tasks.dead")
    assert [q.name for q in t.queues] == ["lab.tasks.dead", "lab.tasks.work",
                                          *(q.name for q in t.retries)]
    assert t.max_attempts == 4


def test_a_retry_queue_waits_then_dead_letters_to_the_work_queue() -> None:
    retry = plan_default().retries[1]
    assert retry.durable and retry.delay == 5.0
    assert dict(retry.arguments) == {"x-message-ttl": 5000, "x-dead-letter-exchange": "",
                                     "x-dead-letter-routing-key": "lab.tasks.work"}


def test_the_work_queue_parks_rejected_messages_in_the_dead_letter_queue() -> None:
    assert dict(plan_default().work.arguments) == {
        "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "lab.tasks.dead"}


def test_retry_queue_k_by_attempt() -> None:
    t = plan_default()
    assert t.retry_queue(1).name == "lab.tasks.work.retry.1s"
    assert t.retry_queue(3).name == "lab.tasks.work.retry.25s"
    for attempt in (0, 4):
        with pytest.raises(ValueError, match=r"^attempt must be 1\.\.3, got"):
            t.retry_queue(attempt)


@pytest.mark.parametrize(("seconds", "label", "ttl"), [
    (1.0, "1s", 1000), (25.0, "25s", 25000), (0.2, "200ms", 200), (1.5, "1500ms", 1500),
    (0.001, "1ms", 1)])
def test_delays_name_the_queue_and_set_the_ttl_in_ms(seconds, label, ttl) -> None:
    retry = topo.plan("x", "w", (seconds,), "d").retries[0]
    assert retry.name == f"w.retry.{label}"
    assert retry.arguments["x-message-ttl"] == ttl


def test_names_must_differ() -> None:
    with pytest.raises(ValueError, match=r"^the queue names must differ"):
        topo.plan("x", "same", (1.0,), "same")
    with pytest.raises(ValueError, match=r"^the queue names must differ"):
        topo.plan("x", "w", (1.0,), "w.retry.1s")


def test_plan_from_the_settings() -> None:
    s = settings.load(environ={}, dirs=[settings.REPO_ROOT])  # .env.example's defaults
    assert topo.plan_from(s) == plan_default()


def test_describe_gives_one_line_each() -> None:
    t = plan_default()
    lines = [topo.describe(x) for x in (t.exchange, *t.queues, *t.bindings)]
    assert lines[0] == "exchange lab.tasks (topic, durable)"
    assert lines[3] == ("queue lab.tasks.work.retry.1s (durable, retry: waits 1000 ms, "
                        "then back to lab.tasks.work)")
    assert lines[-1] == "binding lab.tasks --task.*--> lab.tasks.work"
    assert all("\n" not in line for line in lines)


# -- on the real RabbitMQ ----------------------------------------------------------------


@pytest.fixture
def names() -> settings.Settings:
    """The lab's settings with names of this test's own and a 0.2 s / 0.4 s backoff."""
    prefix = f"test.{uuid.uuid4().hex[:12]}"
    return dataclasses.replace(settings.load(), queue_exchange=f"{prefix}.tasks",
                               queue_work=f"{prefix}.work", queue_retry_delays=(0.2, 0.4),
                               queue_dead_letter=f"{prefix}.dead")


@pytest.fixture
async def channel(names) -> AsyncIterator[aiormq.abc.AbstractChannel]:
    """A channel on the real broker; at the end, everything ``names`` names is deleted."""
    async with asyncio.timeout(TIMEOUT):
        connection = await aiormq.connect(names.rabbitmq_url)
    try:
        yield await connection.channel()
    finally:
        # A fresh channel: the test's own may have been closed by a refused declaration.
        cleanup = await connection.channel()
        t = topo.plan_from(names)
        async with asyncio.timeout(TIMEOUT):
            for queue in t.queues:
                await cleanup.queue_delete(queue.name)
            await cleanup.exchange_delete(t.exchange.name)
            await connection.close()


async def get(channel, queue: str, within: float = TIMEOUT):
    """The first message on ``queue``, taken with no_ack; fails after ``within`` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        message = await channel.basic_get(queue, no_ack=True, timeout=TIMEOUT)
        if message.delivery_tag is not None:  # None: Basic.GetEmpty
            return message
        await asyncio.sleep(0.02)
    pytest.fail(f"nothing arrived on {queue} within {within} s")



@pytest.mark.integration
async def test_declaring_twice_is_idempotent(names, channel) -> None:
    t = topo.plan_from(names)
    first, second = [], []
    await topo.declare(channel, t, report=first.append)
    await channel.basic_publish(b"waiting", routing_key=t.work.name)
    await topo.declare(channel, t, report=second.append)
    assert len(first) == 1 + 4 + 1  # exchange, queues, binding
    assert f"queue {t.work.name} (durable, rejected -> {t.dead_letter.name}): 0 ready" in first
    # The second declaration changed nothing and kept the message.
    assert f"queue {t.work.name} (durable, rejected -> {t.dead_letter.name}): 1 ready" in second
    ok = await channel.queue_declare(t.work.name, passive=True)
    assert ok.message_count == 1


@pytest.mark.integration
async def test_an_event_published_to_the_exchange_lands_in_the_work_queue(
        names, channel) -> None:
    t = topo.plan_from(names)
    await topo.declare(channel, t)
    await channel.basic_publish(b'{"id": 1}', exchange=t.exchange.name,
                                routing_key="task.created")
    await channel.basic_publish(b"unrouted", exchange=t.exchange.name,
                                routing_key="user.created")  # matches no binding: dropped
    message = await get(channel, t.work.name)
    assert message.body == b'{"id": 1}' and message.routing_key == "task.created"
    ok = await channel.queue_declare(t.work.name, passive=True)
    assert ok.message_count == 0


@pytest.mark.integration
async def test_a_retry_comes_back_to_the_work_queue_after_its_delay(names, channel) -> None:
    t = topo.plan_from(names)
    await topo.declare(channel, t)
    for attempt, delay in enumerate(names.queue_retry_delays, start=1):
        retry = t.retry_queue(attempt)
        published = time.monotonic()
        await channel.basic_publish(f"attempt {attempt}".encode(), routing_key=retry.name)
        # Not yet: it waits in the retry queue for its TTL.
        assert (await channel.basic_get(t.work.name, no_ack=True)).delivery_tag is None
        message = await get(channel, t.work.name, within=delay + 5)
        assert message.body == f"attempt {attempt}".encode()
        assert time.monotonic() - published >= delay * 0.9  # the broker's timer: some slack
        assert message.routing_key == t.work.name  # dead-lettered via the default exchange
        death = message.header.properties.headers["x-death"][0]
        assert death["queue"] == retry.name and death["reason"] == "expired"


@pytest.mark.integration
async def test_a_conflicting_queue_is_one_line_precondition_failed(names, channel) -> None:
    t = topo.plan_from(names)
    await channel.queue_declare(t.retries[0].name, durable=True,
                                arguments={"x-message-ttl": 999})
    with pytest.raises(topo.TopologyError) as caught:
        await topo.declare(channel, t)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"queue {t.retries[0].name} exists with other settings")
    assert "PRECONDITION_FAILED" in message and "x-message-ttl" in message
    assert f"rabbitmqctl delete_queue {t.retries[0].name}" in message


# -- the command line --------------------------------------------------------------------


def cli(*args: str, names: settings.Settings | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if names is not None:
        env.update(QUEUE_EXCHANGE=names.queue_exchange, QUEUE_WORK=names.queue_work,
                   QUEUE_DEAD_LETTER=names.queue_dead_letter,
                   QUEUE_RETRY_DELAYS=",".join(f"{d:g}" for d in names.queue_retry_delays))
    return subprocess.run([sys.executable, "-m", "lab.queue", *args], cwd=settings.REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=3 * TIMEOUT,
                          check=False)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.mark.integration
async def test_the_cli_declares_and_prints_one_line_each(names, channel) -> None:
    for _ in range(2):  # the second run finds everything in place
        result = cli("topology", names=names)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        lines = result.stdout.splitlines()
        assert lines[0] == f"exchange {names.queue_exchange} (topic, durable)"
        assert lines[-1] == f"binding {names.queue_exchange} --task.*--> {names.queue_work}"
        assert len(lines) == 6
        assert f"{names.queue_work}.retry.200ms" in result.stdout
    ok = await channel.queue_declare(f"{names.queue_work}.retry.400ms", passive=True)
    assert ok.message_count == 0


def test_an_unreachable_broker_is_one_line_and_exit_1() -> None:
    result = cli("topology", "--rabbitmq-url", "amqp://guest:secret-pw@127.0.0.1:1/")
    assert result.returncode == 1
    line = one_line_error(result)
    assert line.startswith(f"{PROG}: error: cannot connect to RabbitMQ at guest@127.0.0.1:1/")
    assert "secret-pw" not in line
    assert result.stdout == ""


@pytest.mark.integration
async def test_a_conflict_on_the_cli_is_one_line_and_exit_1(names, channel) -> None:
    await channel.queue_declare(names.queue_work, durable=False)
    result = cli("topology", names=names)
    assert result.returncode == 1
    line = one_line_error(result)
    assert line.startswith(f"{PROG}: error: queue {names.queue_work} exists with other")
    assert "PRECONDITION_FAILED" in line


@pytest.mark.parametrize("args", [
    ["topology", "--bogus"],
    ["topology", "--rabbitmq-url", "http://127.0.0.1:5672/"],
])
def test_a_bad_flag_is_one_line_and_exit_2(args: list[str]) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert one_line_error(result).startswith(f"{PROG}")
    assert result.stdout == ""


def test_help_names_the_settings_and_what_comes_next() -> None:
    assert "worker" in cli("--help").stdout
    result = cli("topology", "--help")
    assert result.returncode == 0
    for word in ("--rabbitmq-url", "QUEUE_EXCHANGE", "QUEUE_RETRY_DELAYS", "task.*"):
        assert word in result.stdout, word

"""``python -m lab.queue status``: rendering (no I/O), then read off the real services."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lab import settings
from lab.queue import topology as topo
from lab.queue.status import QueueCount, Status, gather, render
from tests.queue.test_worker import body, publish, until, worker

TIMEOUT = 20


def test_render_shows_each_queue_the_outbox_and_the_share_of_each_worker() -> None:
    status = Status("guest@127.0.0.1:5672/", "postgresql://lab_app:***@127.0.0.1:5432/lab",
                    queues=[QueueCount("w", "work", 3, 2), QueueCount("w.retry.1s", "retry", 1),
                            QueueCount("dead", "dead letter", None)],
                    outbox_waiting=4, outbox_published=10, processed=9,
                    by_worker={"worker-1": 5, "worker-2": 4})
    lines = render(status)
    assert lines[0] == "RabbitMQ at guest@127.0.0.1:5672/"
    assert lines[1].split() == ["w", "3", "ready,", "2", "consumers", "(work)"]
    assert lines[2].split() == ["w.retry.1s", "1", "ready", "(retry)"]
    assert "not declared" in lines[3] and "dead" in lines[3]
    assert lines[4].startswith("PostgreSQL at postgresql://lab_app:***@")
    assert lines[5].split()[:3] == ["outbox", "4", "waiting"] and "10 published" in lines[5]
    assert lines[7].split() == ["notifications", "9:", "worker-1", "5,", "worker-2", "4"]
    assert status.ok


def test_a_side_that_cannot_be_read_says_why_and_the_other_still_shows() -> None:
    status = Status("guest@127.0.0.1:1/", "db", broker_error="cannot connect to RabbitMQ",
                    outbox_waiting=7)
    lines = render(status)
    assert lines[1] == "  cannot connect to RabbitMQ"
    assert "7 waiting" in lines[3]
    assert not status.ok


@pytest.mark.integration
async def test_gather_reads_the_queues_and_the_tables(owner, app_url, names, channel):
    for n in range(3):
        message_id, data = body(n + 1)
        await publish(channel, names, data, message_id)
    found = await gather(names.rabbitmq_url, app_url, topo.plan_from(names))
    assert found.ok
    assert [(q.role, q.messages, q.consumers) for q in found.queues] == [
        ("work", 3, 0), ("retry after 0.1 s", 0, 0), ("retry after 0.2 s", 0, 0),
        ("dead letter", 0, 0)]
    assert found.by_worker == {} and found.processed == 0

    running = worker(names, app_url, name="worker-9").start()

    async def applied():
        return await owner.fetchval("SELECT count(*) FROM processed_messages") == 3
    await until(applied)
    found = await gather(names.rabbitmq_url, app_url, topo.plan_from(names))
    assert found.by_worker == {"worker-9": 3}
    assert found.queues[0].consumers == 1
    await running.stopped()


@pytest.mark.integration
def test_the_cli_exits_1_when_the_broker_cannot_be_reached_and_still_shows_the_outbox(
        migrated_public, app_url) -> None:
    done = subprocess.run([sys.executable, "-m", "lab.queue", "status", "--rabbitmq-url",
                           "amqp://guest:guest@127.0.0.1:1/"], cwd=settings.REPO_ROOT,
                          env=dict(os.environ, DATABASE_URL=app_url), capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 1 and done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[1].startswith("  cannot connect to RabbitMQ at guest@127.0.0.1:1/")
    assert any(line.split()[:1] == ["outbox"] for line in lines)

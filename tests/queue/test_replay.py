"""lab.queue.replay: the dead-letter queue back to the work queue, on the real RabbitMQ."""

from __future__ import annotations

import subprocess
import sys

import aiormq
import pytest

from lab import settings
from lab.queue import topology as topo
from lab.queue.replay import fresh_headers, replay
from tests.queue.test_worker import TIMEOUT, body, cli_env, depth, drain

PAST = {"x-attempt": 3, "x-death-reason": "delivery_limit", "x-error": "HandlerFailure: boom",
        "x-death": [{"queue": "q.retry.1s", "reason": "expired", "count": 1}]}


def test_a_replayed_copy_forgets_its_attempts_and_counts_its_replays() -> None:
    assert fresh_headers({**PAST, "trace": "abc"}) == {"trace": "abc", "x-replayed": 1}
    assert fresh_headers({"x-replayed": 2}) == {"x-replayed": 3}
    assert fresh_headers(None) == {"x-replayed": 1}
    assert fresh_headers({"x-replayed": "garbled"}) == {"x-replayed": 1}


async def park(channel, names, count: int) -> list[str]:
    """``count`` events straight into the dead-letter queue, as the worker parks them."""
    ids = []
    for n in range(count):
        message_id, data = body(n + 1)
        await channel.basic_publish(
            data, exchange="", routing_key=names.queue_dead_letter, mandatory=True,
            properties=aiormq.spec.Basic.Properties(message_id=message_id, delivery_mode=2,
                                                    headers={**PAST, "trace": "abc"}))
        ids.append(message_id)
    return ids


pytestmark = pytest.mark.integration


async def test_every_dead_letter_goes_back_to_the_work_queue_with_a_fresh_start(names,
                                                                               channel):
    ids = await park(channel, names, 3)
    lines = []
    assert await replay(names.rabbitmq_url, topo.plan_from(names), report=lines.append) == 3
    assert lines == [f"replayed 3 messages from {names.queue_dead_letter} to "
                     f"{names.queue_work}"]
    assert await depth(channel, names.queue_dead_letter) == 0
    moved = await drain(channel, names.queue_work)
    assert [m.header.properties.message_id for m in moved] == ids  # in order
    for m in moved:
        assert m.header.properties.headers == {"trace": "abc", "x-replayed": 1}
        assert m.header.properties.delivery_mode == 2


async def test_a_limit_moves_that_many_and_leaves_the_rest(names, channel):
    await park(channel, names, 3)
    assert await replay(names.rabbitmq_url, topo.plan_from(names), limit=2) == 2
    assert await depth(channel, names.queue_dead_letter) == 1
    assert await depth(channel, names.queue_work) == 2


def test_the_cli_says_what_it_moved_and_an_unreachable_broker_is_one_line(names,
                                                                          app_url) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lab.queue", "replay", *args],
                              cwd=settings.REPO_ROOT, env=cli_env(names, app_url), text=True,
                              capture_output=True, timeout=TIMEOUT, check=False)
    done = cli()
    assert done.returncode == 0, done.stderr
    assert done.stdout == (f"replayed 0 messages from {names.queue_dead_letter} to "
                           f"{names.queue_work}\n")
    down = cli("--rabbitmq-url", "amqp://guest:guest@127.0.0.1:1/")
    assert down.returncode == 1 and down.stderr.count("\n") == 1
    assert "cannot connect to RabbitMQ at guest@127.0.0.1:1/" in down.stderr

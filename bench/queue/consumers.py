"""One consumer draining a preloaded work queue, timed, in a process of its own.

    python -m bench.queue.consumers {lab,aio-pika} {bare,full} --count N --prefix bench.x

Prints one JSON line: ``{"side", "pipeline", "messages", "processed", "seconds"}``.
``DATABASE_URL`` (from the environment) is the ``bench_queue`` schema's.

The sides, each set up as its users would:

* ``lab``: ``lab.queue.worker.Worker`` on aiormq, as ``python -m lab.queue worker``
  runs it: its event loop choice (``loop_factory("auto")``: uvloop, installed here),
  its defaults ``--prefetch 20 --concurrency 10 --batch 20``, one channel in confirm mode, the
  topology re-declared on connect, the cleanup task beside;
* ``aio-pika``: ``connect_robust``, ``channel.set_qos(prefetch_count=20)``,
  ``declare_queue`` + ``queue.consume(callback)``, ``async with message.process():``,
  on uvloop. aio-pika runs each delivery's callback as a task, so up to 20 (the
  prefetch) are handled at once.

The pipelines:

* ``bare``: no decoding, no effect, just the ack. On the lab side the Worker's
  ``step`` (decode + handler) is replaced by one that returns the "processed"
  decision at once: what is left is the Worker's own delivery -> inbox -> handler
  task -> life cycle -> ``basic_ack``;
* ``full``: ``events.decode`` (the lab's validator), the idempotency key and the
  notification in one PostgreSQL statement, then the ack: on the lab side
  ``handler.handle_many`` for what the Worker holds at that moment (its batches), on
  aio-pika's ``handler.handle`` for the one message of the ``process()`` block.
  Both sides get the same pool (``lab.db.pool.create_pool``, 11 connections: the
  Worker's concurrency + 1), so the comparison is between consumers, not pools.

The window, the same on both sides: from the first delivery reaching the side's
code (``Worker.deliver``; the aio-pika callback) to the moment the N-th ack was
sent. Connecting, declaring and the process's start are outside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass, field

from bench.queue import stage
from lab import settings
from lab.cli import loop_factory
from lab.db.pool import create_pool
from lab.queue import handler
from lab.queue import worker as lab_worker
from lab.queue.events import decode
from lab.queue.lifecycle import Decision, Lifecycle, State, decide

PREFETCH = lab_worker.PREFETCH  # 20: the worker CLI's default, and aio-pika's here too
CONCURRENCY = lab_worker.CONCURRENCY  # 10: the worker CLI's default
POOL_SIZE = CONCURRENCY + 1  # what Worker.run opens
TIMEOUT = 120.0  # seconds: a run that takes longer has gone wrong

# The decision the full step reaches for a valid event whose effect committed.
PROCESSED = decide(valid=True, handler_ok=True, retry_queues=(), dead_letter="unused")


@dataclass
class Window:
    """First delivery to N-th ack; sets ``done`` at the N-th."""

    expected: int
    done: asyncio.Event = field(default_factory=asyncio.Event)
    count: int = 0
    first: float | None = None
    last: float | None = None

    def delivered(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def acked(self) -> None:
        self.count += 1
        if self.count == self.expected:
            self.last = time.perf_counter()
            self.done.set()

    @property
    def seconds(self) -> float:
        assert self.first is not None and self.last is not None, "the window never closed"
        return self.last - self.first


async def ack_only(messages: list, lives: list[Lifecycle]) -> list[Decision]:
    """The bare step: no decode, no effect -- straight to the acks."""
    return [PROCESSED] * len(messages)


class TimedWorker(lab_worker.Worker):
    """The Worker unchanged, with the window around ``deliver`` (ended by the ack)."""

    def __init__(self, *args, window: Window, **kwargs):
        super().__init__(*args, **kwargs)
        self.window = window

    async def deliver(self, channel, messages) -> list[Lifecycle]:
        self.window.delivered()
        lives = await super().deliver(channel, messages)
        for _ in lives:
            self.window.acked()
        return lives


async def run_lab(pipeline: str, window: Window, rabbitmq_url: str, database_url: str,
                  prefix: str, delays: tuple[float, ...]) -> int:
    step = ack_only if pipeline == "bare" else None
    worker = TimedWorker(rabbitmq_url, database_url, stage.topology_for(prefix, delays),
                         prefetch=PREFETCH, concurrency=CONCURRENCY, step=step, window=window)
    await worker.run(window.done)  # returns after the N-th ack, once shut down cleanly
    return worker.outcomes[State.PROCESSED]


async def run_aio_pika(pipeline: str, window: Window, rabbitmq_url: str, database_url: str,
                       prefix: str, delays: tuple[float, ...]) -> int:
    import aio_pika

    work = stage.topology_for(prefix, delays).work
    pool = await create_pool(database_url, max_size=POOL_SIZE) if pipeline == "full" else None
    try:
        connection = await aio_pika.connect_robust(rabbitmq_url)
        async with connection:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=PREFETCH)
            queue = await channel.declare_queue(work.name, durable=True,
                                                arguments=dict(work.arguments))

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                window.delivered()
                async with message.process():  # ack on success, reject on an exception
                    if pool is not None:
                        await handler.handle(pool, decode(message.body))
                window.acked()

            tag = await queue.consume(on_message)
            await window.done.wait()
            await queue.cancel(tag)
    finally:
        if pool is not None:
            await pool.close()
    return window.count


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queue.consumers")
    parser.add_argument("side", choices=("lab", "aio-pika"))
    parser.add_argument("pipeline", choices=("bare", "full"))
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", required=True, help="the topology's names: PREFIX.work...")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("aiormq").addHandler(logging.NullHandler())
    lab = settings.load()
    if args.side == "lab":
        run, factory = run_lab, loop_factory("auto")[1]  # as python -m lab.queue worker
    else:
        import uvloop

        run, factory = run_aio_pika, uvloop.new_event_loop

    async def timed() -> tuple[Window, int]:
        window = Window(args.count)
        async with asyncio.timeout(TIMEOUT):
            processed = await run(args.pipeline, window, lab.rabbitmq_url, lab.database_url,
                                  args.prefix, lab.queue_retry_delays)
        return window, processed

    with asyncio.Runner(loop_factory=factory) as runner:
        window, processed = runner.run(timed())
    print(json.dumps({"side": args.side, "pipeline": args.pipeline, "messages": window.count,
                      "processed": processed, "seconds": window.seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

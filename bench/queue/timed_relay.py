"""The outbox relay publishing M waiting rows, timed, in a process of its own.

    python -m bench.queue.timed_relay --count M --prefix bench.x

``lab.queue.relay.Relay`` as ``python -m lab.queue relay`` runs it: its event loop
choice (uvloop, installed here), batches of 500, publisher confirms. ``DATABASE_URL``
(from the environment) is the ``bench_queue`` schema's. The window: from the first
batch's claim to the commit of the batch that published the M-th row (connecting
and declaring are outside it). Prints one JSON line: ``{"published", "seconds"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time

from bench.queue import stage
from lab import settings
from lab.cli import loop_factory
from lab.queue.relay import Relay

TIMEOUT = 120.0  # seconds: a run that takes longer has gone wrong


class TimedRelay(Relay):
    """The Relay unchanged, with a stopwatch around ``relay_batch``; stops at the M-th row."""

    def __init__(self, *args, expected: int, stop: asyncio.Event, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected, self.stop = expected, stop
        self.first: float | None = None
        self.last: float | None = None

    async def relay_batch(self) -> int:
        if self.first is None:
            self.first = time.perf_counter()
        count = await super().relay_batch()  # committed when it returns
        if self.last is None and self.progress.published >= self.expected:
            self.last = time.perf_counter()
            self.stop.set()
        return count


async def timed(count: int, prefix: str) -> TimedRelay:
    lab = settings.load()
    stop = asyncio.Event()
    relay = TimedRelay(lab.database_url, lab.rabbitmq_url,
                       stage.topology_for(prefix, lab.queue_retry_delays),
                       expected=count, stop=stop)
    async with asyncio.timeout(TIMEOUT):
        await relay.run(stop)
    return relay


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.queue.timed_relay")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", required=True, help="the topology's names: PREFIX.tasks...")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger("aiormq").addHandler(logging.NullHandler())
    with asyncio.Runner(loop_factory=loop_factory("auto")[1]) as runner:  # as the CLI
        relay = runner.run(timed(args.count, args.prefix))
    assert relay.first is not None and relay.last is not None
    print(json.dumps({"published": relay.progress.published,
                      "dead_lettered": relay.progress.dead_lettered,
                      "seconds": relay.last - relay.first}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

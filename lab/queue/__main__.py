"""``python -m lab.queue topology``: challenge 5's RabbitMQ objects, from the command line.

``topology`` declares the exchange, the work, retry and dead-letter queues and the
binding (``lab/queue/topology.py``), printing one line for each, with the number
of messages ready in each queue; running it again changes nothing. A broker that
cannot be reached or that refuses a declaration (a queue that exists with other
arguments: PRECONDITION_FAILED) is one line on stderr and exit 1.

``relay`` publishes the outbox's rows with publisher confirms
(``lab/queue/relay.py``) until SIGTERM or SIGINT, then exits 0. It does not exit
when PostgreSQL or RabbitMQ is unreachable: it logs one line, backs off and tries
again, since a relay that gives up would leave events unpublished.

``replay`` moves the dead-letter queue's messages back to the work queue, each
confirmed before it is acked there (``lab/queue/replay.py``).

``status`` shows where the events are: each queue's messages, the outbox rows not
yet published, the notifications by worker (``lab/queue/status.py``).

``worker`` consumes the work queue (``lab/queue/worker.py``): manual ack after the
effect committed, retries and the dead-letter queue, publisher confirms before each
ack; it reconnects after an outage and exits 0 on SIGTERM or SIGINT once the
deliveries it started are done.

A bad flag is one line and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from urllib.parse import urlsplit

import asyncpg

from lab import settings as lab_settings
from lab.cli import OneLineParser, loop_factory, positive, share
from lab.queue import relay as outbox_relay
from lab.queue import replay as queue_replay
from lab.queue import status as queue_status
from lab.queue import worker as queue_worker
from lab.queue.handler import FailureRate
from lab.queue.topology import ROUTING_KEY, Topology, TopologyError, apply, plan_from

PROG = "python -m lab.queue"


def amqp_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        # Not the text itself: it may hold a password.
        raise argparse.ArgumentTypeError("not a URL like amqp://USER:PASSWORD@127.0.0.1:5672/")
    return text


def postgres_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            "not a URL like postgresql://USER:PASSWORD@127.0.0.1:5432/DB")
    return text


def _servers(parser: argparse.ArgumentParser, rabbitmq: str, database: str | None = None,
             ) -> None:
    """``--database-url`` (if the command uses PostgreSQL) and ``--rabbitmq-url``, each in
    place of its setting; ``rabbitmq`` and ``database`` say what the command does there."""
    if database is not None:
        parser.add_argument("--database-url", metavar="URL", type=postgres_url, default=None,
                            help=f"{database} here instead of DATABASE_URL")
    parser.add_argument("--rabbitmq-url", metavar="URL", type=amqp_url, default=None,
                        help=f"{rabbitmq} here instead of RABBITMQ_URL (the settings come "
                             "from the environment, .env or .env.example)")


def _log_level(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                        type=str.upper, default=None, help=f"{what} (default: LOG_LEVEL)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=(
        "Challenge 5 on RabbitMQ: task events through a topic exchange to a work queue, "
        "retried with growing delays, dead-lettered for good: 'topology' declares it, "
        "'relay' publishes the outbox, 'worker' consumes, 'status' shows where the events "
        "are, 'replay' sends the dead letters back."))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    topology = commands.add_parser(
        "topology", help="declare the exchange and queues (idempotent), print them",
        description=f"Declare, idempotently: the durable topic exchange QUEUE_EXCHANGE; "
                    f"the durable work queue QUEUE_WORK bound to it with '{ROUTING_KEY}'; "
                    f"one retry queue per delay in QUEUE_RETRY_DELAYS, whose messages "
                    f"go back to the work queue when their TTL expires; the dead-letter "
                    f"queue QUEUE_DEAD_LETTER. Prints one line per object.")
    _servers(topology, "connect")
    relay = commands.add_parser(
        "relay", help="publish the outbox's rows with publisher confirms, until SIGTERM",
        description="Publish the rows of the outbox table (PostgreSQL, DATABASE_URL) to the "
                    "topic exchange QUEUE_EXCHANGE (RabbitMQ, RABBITMQ_URL) with publisher "
                    "confirms, a batch at a time, and mark each row sent once the broker "
                    "confirmed it. Rows are claimed FOR UPDATE SKIP LOCKED, so several "
                    "relays can run. An unreachable database or broker is logged and "
                    "retried with backoff; SIGTERM or SIGINT finishes the batch in flight "
                    "and exits 0.")
    relay.add_argument("--batch-size", metavar="N", type=positive(int),
                       default=outbox_relay.BATCH_SIZE,
                       help="rows claimed and published per transaction (default: %(default)s)")
    relay.add_argument("--interval", metavar="SECONDS", type=positive(float),
                       default=outbox_relay.INTERVAL,
                       help="wait between polls of an empty outbox (default: %(default)s)")
    relay.add_argument("--confirm-timeout", metavar="SECONDS", type=positive(float),
                       default=outbox_relay.CONFIRM_TIMEOUT,
                       help="give up on a batch not confirmed by then; its rows stay "
                            "unpublished (default: %(default)s)")
    _servers(relay, "publish", database="read the outbox (as the API's role)")
    _log_level(relay, "DEBUG logs a line per batch; INFO a summary every few seconds")
    worker = commands.add_parser(
        "worker", help="consume the work queue: ack after commit, retry, dead-letter",
        description="Consume QUEUE_WORK (RabbitMQ, RABBITMQ_URL) with manual ack: the "
                    "effects of the deliveries waiting, with their idempotency keys, go to "
                    "PostgreSQL (DATABASE_URL) in one statement, and each is acked after "
                    "the commit; an invalid message goes to the "
                    "dead-letter queue, a failed one to the next retry queue (then the "
                    "dead-letter queue), each copy confirmed before the ack. Reconnects "
                    "after an outage; SIGTERM or SIGINT stops consuming, finishes the "
                    "deliveries started, gives back the others and exits 0.")
    worker.add_argument("--prefetch", metavar="N", type=positive(int),
                        default=queue_worker.PREFETCH,
                        help="basic_qos prefetch_count: unacked deliveries held at once "
                             "(default: %(default)s)")
    worker.add_argument("--concurrency", metavar="N", type=positive(int),
                        default=queue_worker.CONCURRENCY,
                        help="handler tasks, each taking a batch of deliveries at a time "
                             "(default: %(default)s)")
    worker.add_argument("--batch", metavar="N", type=positive(int),
                        default=queue_worker.BATCH,
                        help="deliveries at most whose effects go to PostgreSQL in one "
                             "statement; 1 gives each its own (default: %(default)s)")
    worker.add_argument("--failure-rate", metavar="P", type=share, default=0.0,
                        help="fail this share of attempts (0..1), to watch retries and the "
                             "dead-letter queue (default: %(default)s)")
    worker.add_argument("--name", default=None,
                        help="written in each notification it applies, so 'status' can count "
                             "the work by worker (default: worker-PID)")
    _servers(worker, "consume", database="write effects")
    _log_level(worker, "INFO logs each retry and dead letter")
    replay = commands.add_parser(
        "replay", help="move the dead-letter queue's messages back to the work queue",
        description="Move the messages waiting in QUEUE_DEAD_LETTER (as many as there are "
                    "when it starts, or --limit) back to QUEUE_WORK, each with its attempt "
                    "and death headers dropped and x-replayed counted, published with a "
                    "confirm before it is acked in the dead-letter queue: at least once, "
                    "never lost. For after the cause of the failures was fixed; an invalid "
                    "message comes back to the dead-letter queue at once.")
    replay.add_argument("--limit", metavar="N", type=positive(int), default=None,
                        help="move at most N (default: all that are waiting)")
    _servers(replay, "connect")
    status = commands.add_parser(
        "status", help="where the events are: queues, outbox, notifications by worker",
        description="Print each queue's ready messages (and the work queue's consumers), "
                    "the outbox rows waiting for the relay and those published, the "
                    "idempotency keys, and the notifications counted by the worker that "
                    "applied them. Changes nothing. Each side is read on its own: exit 1 "
                    "if RabbitMQ or PostgreSQL could not be read (the other is shown).")
    _servers(status, "read", database="read")
    return parser


async def check_schema(database_url: str) -> None:
    """A database without challenge 5's tables is a mistake to report, not an outage to
    wait out; a database that cannot be reached is left to the worker, which waits."""
    try:
        conn = await asyncpg.connect(database_url, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return  # unreachable now: the worker logs it and retries until it answers
    try:
        if await conn.fetchval("SELECT to_regclass('processed_messages')") is None:
            raise TopologyError("the database has no processed_messages table: run "
                                "'python -m lab.db migrate' first")
    finally:
        await conn.close()


def stop_on_signal() -> asyncio.Event:
    """An event SIGTERM and SIGINT set: the loop finishes its work in flight, then stops."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def run_worker(args: argparse.Namespace, database_url: str, rabbitmq_url: str,
                     topology: Topology) -> None:
    await check_schema(database_url)
    stop = stop_on_signal()  # started deliveries finish first
    worker = queue_worker.Worker(rabbitmq_url, database_url, topology,
                                 prefetch=args.prefetch, concurrency=args.concurrency,
                                 batch=args.batch,
                                 fail=FailureRate(args.failure_rate),
                                 name=args.name or f"worker-{os.getpid()}")
    await worker.run(stop)


async def run_relay(args: argparse.Namespace, database_url: str, rabbitmq_url: str,
                    topology: Topology) -> None:
    stop = stop_on_signal()  # the batch in flight finishes first
    relay = outbox_relay.Relay(database_url, rabbitmq_url, topology,
                               batch_size=args.batch_size, interval=args.interval,
                               confirm_timeout=args.confirm_timeout)
    await relay.run(stop)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    # aiormq logs a failed connection attempt itself; with no handler configured Python
    # would print that record to stderr too, and the user would read the error twice.
    logging.getLogger("aiormq").addHandler(logging.NullHandler())
    try:
        settings = lab_settings.load()
        url = args.rabbitmq_url or settings.rabbitmq_url
        if args.command in ("relay", "worker"):
            logging.getLogger("aiormq").propagate = False  # the relay logs the outage once
            logging.basicConfig(level=args.log_level or settings.log_level, stream=sys.stderr,
                                format="%(asctime)s %(name)s %(levelname)s %(message)s")
            run = run_relay if args.command == "relay" else run_worker
            # uvloop when installed: about a fifth more events/s with confirms on this machine.
            with asyncio.Runner(loop_factory=loop_factory("auto")[1]) as runner:
                runner.run(run(args, args.database_url or settings.database_url, url,
                               plan_from(settings)))
            return 0
        if args.command == "replay":
            asyncio.run(queue_replay.replay(url, plan_from(settings), args.limit,
                                            report=lambda line: print(line, flush=True)))
            return 0
        if args.command == "status":
            found = asyncio.run(queue_status.gather(
                url, args.database_url or settings.database_url, plan_from(settings)))
            print("\n".join(queue_status.render(found)))
            return 0 if found.ok else 1
        asyncio.run(apply(url, plan_from(settings), report=lambda line: print(line, flush=True)))
    except (TopologyError, ValueError) as exc:  # ValueError: a bad setting
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

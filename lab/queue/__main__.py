"""``python -m lab.queue topology``: challenge 5's RabbitMQ objects, from the command line.

``topology`` declares the exchange, the work, retry and dead-letter queues and the
binding (``lab/queue/topology.py``), printing one line for each, with the number
of messages ready in each queue; running it again changes nothing. The worker
and the outbox relay (``worker``, ``relay``) come next and will declare the same
topology on start.

A broker that cannot be reached or that refuses a declaration (a queue that exists
with other arguments: PRECONDITION_FAILED) is one line on stderr and exit 1; a bad
flag is one line and exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from urllib.parse import urlsplit

from lab import settings as lab_settings
from lab.cli import OneLineParser
from lab.queue.topology import ROUTING_KEY, TopologyError, apply, plan_from

PROG = "python -m lab.queue"


def amqp_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        # Not the text itself: it may hold a password.
        raise argparse.ArgumentTypeError("not a URL like amqp://USER:PASSWORD@127.0.0.1:5672/")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=(
        "Challenge 5 on RabbitMQ: task events through a topic exchange to a work queue, "
        "retried with growing delays, dead-lettered for good. This release has "
        "'topology'; the 'worker' (the consumer) and 'relay' (the outbox publisher) "
        "come next."))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    topology = commands.add_parser(
        "topology", help="declare the exchange and queues (idempotent), print them",
        description=f"Declare, idempotently: the durable topic exchange QUEUE_EXCHANGE; "
                    f"the durable work queue QUEUE_WORK bound to it with '{ROUTING_KEY}'; "
                    f"one retry queue per delay in QUEUE_RETRY_DELAYS, whose messages "
                    f"go back to the work queue when their TTL expires; the dead-letter "
                    f"queue QUEUE_DEAD_LETTER. Prints one line per object.")
    topology.add_argument("--rabbitmq-url", metavar="URL", type=amqp_url, default=None,
                          help="connect here instead of RABBITMQ_URL (from the environment, "
                               ".env or .env.example)")
    return parser


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
        asyncio.run(apply(url, plan_from(settings), report=lambda line: print(line, flush=True)))
    except (TopologyError, ValueError) as exc:  # ValueError: a bad setting
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m lab``: what the lab holds, the command that starts each part, its port.

A component counts as built when its package has a ``__main__`` module (the
command-line entry point DESIGN.md promises), so the overview stays honest as
the challenges land, with nothing to edit here. Ports come from ``lab.settings``,
so a port changed in ``.env`` shows up here too.

``python -m lab up`` and ``down`` start and stop the whole stack at once --
the queue's workers and relay, the API instances, the balancers -- in the order
``lab/stack.py`` explains.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from lab import settings as lab_settings
from lab import stack
from lab.cli import OneLineParser, positive, share

PROG = "python -m lab"


def count(text: str) -> int:
    """0, 1, 2 ...: an argparse type."""
    if not (text.isascii() and text.isdigit()):  # also refuses "-1", "+1" and " 1"
        raise argparse.ArgumentTypeError(f"not a whole number 0 or more: {text!r}")
    return int(text)


@dataclass(frozen=True)
class Component:
    name: str
    command: str
    port: int | None
    challenge: int
    module: str | None  # built when "<module>.__main__" exists; None: not built yet

    @property
    def built(self) -> bool:
        return self.module is not None and has_main(self.module)


def has_main(package: str) -> bool:
    try:
        return importlib.util.find_spec(f"{package}.__main__") is not None
    except ModuleNotFoundError:  # the package itself does not exist yet
        return False


def components(s: lab_settings.Settings) -> list[Component]:
    """The rows of the overview, in the order of the challenges."""
    return [
        Component("cache", f"python -m lab.cache serve --port {s.cache_port}",
                  s.cache_port, 1, "lab.cache"),
        Component("Task API", f"python -m lab.api --port {s.api_port} --store memory|postgres",
                  s.api_port, 2, "lab.api"),
        Component("database", "python -m lab.db migrate|status|seed|explain", None, 3,
                  "lab.db"),
        Component("load balancer", f"python -m lab.lb --port {s.lb_port} --backend HOST:PORT ...",
                  s.lb_port, 4, "lab.lb"),
        # NGINX is the comparison for lab.lb, in front of the same backends.
        Component("NGINX (compared with lab.lb)",
                  f"python -m lab.lb.nginx start --port {s.nginx_port} --backend HOST:PORT ...",
                  s.nginx_port, 4, "lab.lb"),
        Component("whole stack", "python -m lab up | python -m lab down", None, 4, "lab"),
        Component("queue", "python -m lab.queue topology|relay|worker|status|replay",
                  None, 5, "lab.queue"),
        Component("benchmarks", "python -m bench  (results in bench/results/)", None, 1, "bench"),
    ]


def overview(s: lab_settings.Settings) -> str:
    rows = [("component", "command", "port", "state")]
    for c in components(s):
        state = "ready" if c.built else f"coming in challenge {c.challenge}"
        rows.append((c.name, c.command, "-" if c.port is None else str(c.port), state))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["System Design Lab: components, commands and ports", ""]
    for row in rows:  # pad every column but the last
        lines.append("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[3]]))
    servers = ", ".join(
        f"{name} {urlsplit(url).hostname}:{urlsplit(url).port or default}"
        for name, url, default in [("PostgreSQL", s.database_url, 5432),
                                   ("Redis", s.redis_url, 6379),
                                   ("RabbitMQ", s.rabbitmq_url, 5672)]
    )
    lines += [
        "",
        f"Servers (infra/services.sh start|stop|status): {servers}, NGINX 127.0.0.1:80",
        "Settings: the environment, then .env, then .env.example (see lab/settings.py).",
        "Tests and benchmarks: make test, make bench.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog=PROG, description="List the lab's components, their commands "
                     "and ports (with no command), or start and stop the whole stack.")
    commands = parser.add_subparsers(dest="command", metavar="{up,down}")
    up = commands.add_parser(
        "up", help="start the whole stack in the background: queue, API instances, balancers",
        description="Start, each once the one before is ready: with the PostgreSQL store, "
                    "challenge 5's queue (the RabbitMQ topology declared, W workers, one "
                    "outbox relay); N Task API instances (API_PORT, API_PORT+1 ...) with the "
                    "Redis read cache; lab.lb (LB_PORT) and/or NGINX (NGINX_PORT) in front "
                    "of them. Logs in .run/stack/. Stop with 'down'.")
    up.add_argument("--instances", type=positive(int), default=3,
                    help="how many API instances (default: 3)")
    up.add_argument("--balancer", choices=stack.BALANCERS, default="both",
                    help="lab.lb, NGINX, or both in front of the same instances (default: both)")
    up.add_argument("--strategy", choices=("round-robin", "least-conn"), default="round-robin",
                    help="how the balancers pick an instance (default: round-robin)")
    up.add_argument("--store", choices=("postgres", "memory"), default="postgres",
                    help="the instances' store; memory gives each instance its own data, "
                         "so it is not a stateless stack, and writes no outbox, so it "
                         "starts no queue processes (default: postgres)")
    up.add_argument("--workers", metavar="W", type=count, default=None,
                    help="queue workers ('python -m lab.queue worker') consuming QUEUE_WORK, "
                         "started with one relay ('python -m lab.queue relay') that "
                         "publishes the outbox; 0 starts neither; needs RabbitMQ and "
                         f"--store postgres (default: {stack.WORKERS} with postgres, "
                         "0 with memory)")
    up.add_argument("--failure-rate", metavar="P", type=share, default=0.0,
                    help="each worker fails this share of attempts on purpose (0..1), to "
                         "watch retries and the dead-letter queue (default: 0)")
    up.add_argument("--cache", action=argparse.BooleanOptionalAction, default=True,
                    help="the instances' Redis read cache (default: on)")
    down = commands.add_parser("down", help="stop what 'up' started",
                               description="Stop the balancers, then the API instances "
                                           "(requests in flight finish), then the relay (its "
                                           "batch in flight is published), then the workers "
                                           "(each finishes or gives back what it holds): "
                                           "SIGTERM, and SIGKILL after 10 s.")
    for command in (up, down):
        command.add_argument("--run-dir", type=Path, default=stack.RUN_DIR, metavar="DIR",
                             help="where the logs and the list of started processes go "
                                  "(default: .run/stack)")
    args = parser.parse_args(argv)
    # aiormq logs a failed connection itself; with no handler configured Python would print
    # that record to stderr too, before up's own line: the user would read the error twice.
    logging.getLogger("aiormq").addHandler(logging.NullHandler())
    try:
        s = lab_settings.load()
        if args.command == "up":
            started = stack.up(args.instances, args.balancer, args.strategy, args.store,
                               args.cache, args.run_dir, workers=args.workers,
                               failure_rate=args.failure_rate)
            front = next(item for item in reversed(started) if item.program in ("lab.lb", "nginx"))
            print(f"up: {len(started)} processes. Try: curl -si http://127.0.0.1:{front.port}"
                  f"/health | grep X-Instance   Stop: {PROG} down")
            return 0
        if args.command == "down":
            if not stack.down(args.run_dir):
                print("down: nothing was running")
            return 0
    except (ValueError, stack.StackError) as err:
        print(f"{' '.join(filter(None, (PROG, args.command)))}: {err}", file=sys.stderr)
        return 1
    try:
        print(overview(s), flush=True)
    except BrokenPipeError:  # piped into head, which stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
    return 0


if __name__ == "__main__":
    sys.exit(main())

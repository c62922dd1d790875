"""``python -m lab.lb``: the hand-built load balancer, until SIGINT or SIGTERM.

    python -m lab.lb --port 8080 --backend 127.0.0.1:8001 --backend 127.0.0.1:8002=2

It prints one line, flushed, once the socket listens, so a parent process (a
test, ``python -m lab up``) can wait for it and read the port it got::

    lab.lb listening on http://127.0.0.1:8080 (round-robin over 2 backends, loop=uvloop)

Every number it shares with its NGINX twin (timeouts, max_fails, limits) is a
flag of the same name in both commands (``tuning.add_tuning_arguments``). On a
signal it stops accepting, closes idle client connections, lets requests in
flight finish for up to ``--shutdown-timeout`` seconds, closes its pools and
exits 0. A bad flag is one line on stderr and exit 2; a port in use, one line
and exit 1; never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from lab import settings as lab_settings
from lab.cli import OneLineParser, positive, run_server
from lab.cli import port as tcp_port
from lab.lb.proxy import SHUTDOWN_TIMEOUT, STATUS_PATH, Proxy
from lab.lb.tuning import (
    CONNECTIONS,
    STRATEGIES,
    add_tuning_arguments,
    backend_argument,
    tuning_from_arguments,
)

PROG = "python -m lab.lb"


def _keepalive(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"not an integer 0 or more: {text!r}")
    return int(text)


def _status_path(text: str) -> str | None:
    if text in ("", "off"):
        return None
    if not text.startswith("/") or any(c in text for c in " ?#"):
        raise argparse.ArgumentTypeError(f"a path like /lb-status, or off: {text!r}")
    return text


def build_parser(default_port: int) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=(
        "The hand-built HTTP/1.1 load balancer (challenge 4): a reverse proxy in front of "
        "API instances, with round-robin or least-connections, passive health "
        "(max_fails/fail_timeout), retries on the next backend, keep-alive pools. Every "
        "path is forwarded to a backend, except the status document (--status-path)."))
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=tcp_port, default=default_port,
                        help=f"TCP port; 0 picks a free one (default: {default_port}, "
                             "LB_PORT in .env)")
    parser.add_argument("--backend", type=backend_argument, action="append", required=True,
                        metavar="HOST:PORT[=WEIGHT]",
                        help="a backend (an API instance), weight 1 unless given; repeatable")
    parser.add_argument("--strategy", choices=STRATEGIES, default="round-robin",
                        help="how a backend is chosen: smooth weighted round-robin, or the "
                             "fewest requests in flight per weight (default: round-robin)")
    parser.add_argument("--keepalive", type=_keepalive, default=CONNECTIONS, metavar="N",
                        help="idle connections kept open to each backend for the next "
                             f"requests; 0: a new connection per request (default: "
                             f"{CONNECTIONS}, as NGINX's keepalive)")
    parser.add_argument("--status-path", type=_status_path, default=STATUS_PATH,
                        metavar="PATH",
                        help="GET PATH is answered by the balancer itself: per-backend state, "
                             f"counters and connections as JSON; off: none (default: "
                             f"{STATUS_PATH})")
    parser.add_argument("--health-check-interval", type=positive(float), metavar="SECONDS",
                        help="also GET /health on every backend every SECONDS; a failed "
                             "check takes a backend out at once (default: off, passive only)")
    parser.add_argument("--shutdown-timeout", type=positive(float), default=SHUTDOWN_TIMEOUT,
                        metavar="SECONDS",
                        help="on SIGTERM/SIGINT, how long requests in flight may take to "
                             f"finish before they are cut (default: {SHUTDOWN_TIMEOUT:g})")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="event loop: uvloop if installed (auto), or force one "
                             "(default: auto)")
    tuning = parser.add_argument_group(
        "shared with the NGINX twin", "the same flags as python -m lab.lb.nginx start, "
        "rendered there under NGINX's names")
    add_tuning_arguments(tuning)
    return parser


async def _serve_until_signal(args: argparse.Namespace, loop_name: str) -> None:
    proxy = Proxy(args.backend, strategy=args.strategy, tuning=tuning_from_arguments(args),
                  keepalive=args.keepalive, status_path=args.status_path,
                  check_interval=args.health_check_interval,
                  shutdown_timeout=args.shutdown_timeout)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)  # a signal only wakes the main task
    host, port = await proxy.start(args.host, args.port)
    try:
        count = len(args.backend)
        print(f"lab.lb listening on http://{host}:{port} ({args.strategy} over {count} "
              f"backend{'s' if count > 1 else ''}, loop={loop_name})", flush=True)
        await stop.wait()
    finally:  # on a signal, and on any error: requests in flight finish, pools close
        await proxy.close()


def main(argv: list[str] | None = None) -> int:
    try:
        s = lab_settings.load()
    except ValueError as exc:  # a setting in the environment or .env is wrong
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    args = build_parser(s.lb_port).parse_args(argv)
    try:
        tuning_from_arguments(args)
    except ValueError as exc:  # e.g. --header-buffers 1 with a tiny buffer size
        print(f"{PROG}: error: {exc} (see --help)", file=sys.stderr)
        return 2
    logging.basicConfig(level=s.log_level, format="%(asctime)s %(name)s %(message)s",
                        stream=sys.stderr)
    return run_server(PROG, f"{args.host}:{args.port}", args.loop,
                      lambda loop_name: _serve_until_signal(args, loop_name))


if __name__ == "__main__":
    sys.exit(main())

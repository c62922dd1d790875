"""``python -m lab.cache serve``: run the cache as a RESP server until SIGINT or SIGTERM.

The command line only: it parses flags, builds a ``TTLCache``, picks the event
loop (uvloop when installed, as a Redis-backed Python service would run it),
serves with ``server.serve`` and shuts down cleanly on a signal -- stop
accepting, let clients take their last replies, exit 0. When the socket is
listening it prints one line, flushed, so a parent process (a test, the
benchmark harness) can wait for it::

    lab.cache listening on 127.0.0.1:6380 (maxsize=1000000, ttl=none, loop=uvloop)

Every mistake -- a bad flag, a bad value, a port in use -- is one line on
stderr and a non-zero exit (2 for usage, 1 for the rest), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from lab.cache.resp import PROTO_MAX_BULK_LEN
from lab.cache.server import HZ, serve
from lab.cache.ttl import TTLCache
from lab.cli import OneLineParser, port, positive, run_server

PROG = "python -m lab.cache"
DEFAULT_HOST = "127.0.0.1"  # loopback: the lab never listens on a public interface by default
DEFAULT_PORT = 6380  # Redis's port plus one, so both can run side by side
DEFAULT_MAXSIZE = 1_000_000
def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="The hand-built cache of challenge 1, served over Redis's protocol (RESP2).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")  # each a _Parser too
    serve_cmd = commands.add_parser(
        "serve",
        help="listen for Redis clients (redis-cli, redis-benchmark, redis-py)",
        description=(
            "Serve a TTLCache to Redis clients until SIGINT or SIGTERM. Try "
            "'redis-cli -p 6380' or 'redis-benchmark -p 6380 -t get,set -q'."
        ),
    )
    serve_cmd.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default: {DEFAULT_HOST}, loopback only)",
    )
    serve_cmd.add_argument(
        "--port",
        type=port,
        default=DEFAULT_PORT,
        help=f"TCP port to listen on; 0 picks a free one (default: {DEFAULT_PORT})",
    )
    serve_cmd.add_argument(
        "--maxsize",
        type=positive(int),
        default=DEFAULT_MAXSIZE,
        help=(
            "most keys held at once; when full, the least recently used key is evicted "
            f"(like Redis's maxmemory-policy allkeys-lru) (default: {DEFAULT_MAXSIZE})"
        ),
    )
    serve_cmd.add_argument(
        "--ttl",
        type=positive(float),
        default=None,
        metavar="SECONDS",
        help=(
            "default time to live of keys written without EX/PX, in seconds "
            "(default: none, keys live until deleted or evicted, as in Redis)"
        ),
    )
    serve_cmd.add_argument(
        "--max-bulk-bytes",
        type=positive(int),
        default=PROTO_MAX_BULK_LEN,
        metavar="BYTES",
        help=(
            "largest string a client may send; a longer declared length is refused "
            "before it is read (Redis's proto-max-bulk-len) (default: 536870912, 512 MiB)"
        ),
    )
    serve_cmd.add_argument(
        "--hz",
        type=positive(float),
        default=HZ,
        help=f"active-expiry sweeps per second (Redis's hz) (default: {HZ})",
    )
    serve_cmd.add_argument(
        "--loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="event loop: uvloop if installed (auto), or force one (default: auto)",
    )
    return parser


async def _serve_until_signal(args: argparse.Namespace, loop_name: str) -> None:
    cache = TTLCache(args.maxsize, ttl=args.ttl)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)  # a signal only wakes the main task
    async with serve(
        cache, args.host, args.port, max_bulk_len=args.max_bulk_bytes, hz=args.hz
    ) as server:
        ttl = "none" if args.ttl is None else f"{args.ttl:g}s"
        print(
            f"lab.cache listening on {server.host}:{server.port} "
            f"(maxsize={args.maxsize}, ttl={ttl}, loop={loop_name})",
            flush=True,  # a parent process waits for this line
        )
        await stop.wait()
    # Leaving the "async with" stopped accepting, flushed and closed every client.


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return run_server(PROG, f"{args.host}:{args.port}", args.loop,
                      lambda loop_name: _serve_until_signal(args, loop_name))

if __name__ == "__main__":
    sys.exit(main())

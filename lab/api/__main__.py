"""``python -m lab.api``: serve the Task API until SIGINT or SIGTERM.

It prints one line, flushed, once the socket listens, so a parent process (a
test, the benchmark harness) can wait for it::

    lab.api listening on http://127.0.0.1:8001 (store=memory, loop=uvloop)

With ``--redis-url`` the reads of tasks go through a Redis read cache
(``readcache.py``), and the line ends with ``read-cache=<url>``; a Redis that
does not answer is not an error, at start or later: the store answers until it
does. Several instances (``--port 8001``, ``--port 8002``...) sharing one Redis
and one PostgreSQL each name themselves in ``X-Instance`` (``--instance``).

On a signal it stops accepting, lets requests in flight finish, and exits 0.
Every mistake -- a bad flag, a port in use -- is one line on stderr and a
non-zero exit (2 for usage, 1 for the rest), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from urllib.parse import parse_qsl, urlsplit

import asyncpg

from lab import settings as lab_settings
from lab.api import readcache
from lab.api.app import build_app
from lab.api.memory import MemoryStore
from lab.api.store import Store
from lab.cli import OneLineParser, port, positive, run_server
from lab.db import migrator
from lab.db.store import PostgresStore
from lab.http.app import serve
from lab.http.request import DEFAULT_MAX_BODY_SIZE

PROG = "python -m lab.api"
log = logging.getLogger("lab.api")


async def memory_store(s: lab_settings.Settings, migrate: bool) -> Store:
    return MemoryStore()


async def postgres_store(s: lab_settings.Settings, migrate: bool) -> Store:
    if migrate:  # as the schema's owner; the API itself runs as lab_app (DATABASE_URL)
        conn = await asyncpg.connect(s.database_owner_url, timeout=10)
        try:
            await migrator.migrate(conn, report=log.info)
        finally:
            await conn.close()
    return await PostgresStore.connect(s.database_url)


STORES = {"memory": memory_store, "postgres": postgres_store}


def cache_prefix(store: str, s: lab_settings.Settings) -> str:
    """The read cache's keys' prefix: one per set of data, since one Redis may serve several.

    Instances on the same database share their cache (and its generation); a stack on
    another database or schema, or a memory store (data of this process alone), must not.
    """
    if store == "memory":
        return f"lab:memory-{os.getpid()}:tasks"
    parts = urlsplit(s.database_url)
    search_path = dict(parse_qsl(parts.query)).get("search_path", "")
    return f"lab:{parts.hostname}:{parts.port or 5432}{parts.path}:{search_path}:tasks"


def redis_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise argparse.ArgumentTypeError("not a Redis URL like redis://127.0.0.1:6379/0")
    return text


def build_parser(default_port: int, redis_default: str) -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description=("The Task Management API (users, categories, tasks) on the lab's "
                     "hand-built REST layer. Docs at /api-docs, the OpenAPI document at "
                     "/openapi.json."))
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, loopback only)")
    parser.add_argument("--port", type=port, default=default_port,
                        help=f"TCP port; 0 picks a free one (default: {default_port}, "
                             "API_PORT in .env)")
    parser.add_argument("--store", choices=sorted(STORES), default="memory",
                        help="where data lives: memory, in this process, needs no server; "
                             "postgres, DATABASE_URL as lab_app (default: memory)")
    parser.add_argument("--migrate", action=argparse.BooleanOptionalAction, default=True,
                        help="with --store postgres: apply pending migrations first, as "
                             "DATABASE_OWNER_URL; safe when several instances start at once "
                             "(default: on)")
    parser.add_argument("--max-body-size", type=positive(int), default=DEFAULT_MAX_BODY_SIZE,
                        metavar="BYTES",
                        help="larger request bodies are refused with 413 "
                             f"(default: {DEFAULT_MAX_BODY_SIZE}, 1 MiB)")
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                        help="log one line per request to stderr (default: on)")
    parser.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto",
                        help="event loop: uvloop if installed (auto), or force one "
                             "(default: auto)")
    cache = parser.add_argument_group(
        "read cache (challenge 4)", "GET /tasks and GET /tasks/{id} through Redis, cache-aside; "
        "every write starts a new cache generation. State and counters: GET /cache.")
    cache.add_argument("--redis-url", type=redis_url, nargs="?", const=redis_default,
                       metavar="URL",
                       help="turn the read cache on, with this Redis; the flag alone uses "
                            f"REDIS_URL from .env ({lab_settings.redact(redis_default)}) "
                            "(default: off)")
    cache.add_argument("--cache-ttl", type=positive(float), default=readcache.DEFAULT_TTL,
                       metavar="SECONDS",
                       help="how long an answer lives in Redis; also how stale another "
                            "instance can be if a write's INCR is lost "
                            f"(default: {readcache.DEFAULT_TTL:g})")
    cache.add_argument("--l1-ttl", type=positive(float), default=None, metavar="SECONDS",
                       help="also keep answers in this process for SECONDS; the generation "
                            "is still checked in Redis on every read, so no answer is ever "
                            "stale (default: off)")
    cache.add_argument("--redis-timeout", type=positive(float),
                       default=readcache.DEFAULT_TIMEOUT, metavar="SECONDS",
                       help="the longest wait for one Redis command before the store answers "
                            f"instead (default: {readcache.DEFAULT_TIMEOUT:g})")
    parser.add_argument("--instance", metavar="NAME",
                        help="this instance's name in the X-Instance header "
                             "(default: HOST:PORT as bound)")
    return parser


async def _serve_until_signal(args: argparse.Namespace, s: lab_settings.Settings,
                              loop_name: str) -> None:
    try:
        store = await STORES[args.store](s, args.migrate)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise RuntimeError(f"cannot prepare the {args.store} store: "
                           f"{getattr(exc, 'strerror', None) or exc}") from None
    except migrator.MigrationError as exc:
        raise RuntimeError(str(exc)) from None
    reads = None
    if args.redis_url is not None:
        reads = readcache.ReadCache.from_url(args.redis_url, timeout=args.redis_timeout,
                                             ttl=args.cache_ttl, l1_ttl=args.l1_ttl,
                                             prefix=cache_prefix(args.store, s))
        if not await reads.ping():  # not fatal: requests are served from the store meanwhile
            log.warning("redis at %s does not answer yet; serving from the store until it does",
                        reads.name)
    # Named now by the address asked for; renamed below if port 0 was asked (known once bound).
    app = build_app(store, max_body_size=args.max_body_size, read_cache=reads,
                    instance=args.instance or f"{args.host}:{args.port}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)  # a signal only wakes the main task
    try:
        async with serve(app, args.host, args.port) as (host, bound_port):
            if args.instance is None:
                app.instance = f"{host}:{bound_port}"  # known only now, when port 0 was asked
            cache = "" if reads is None else f", read-cache={reads.name}"
            print(f"lab.api listening on http://{host}:{bound_port} "
                  f"(store={store.name}, loop={loop_name}{cache})", flush=True)
            await stop.wait()
        # Leaving "async with" let requests in flight finish and closed every connection.
    finally:
        if reads is not None:
            await reads.close()
        await store.close()


def main(argv: list[str] | None = None) -> int:
    try:
        s = lab_settings.load()
    except ValueError as exc:  # a setting in the environment or .env is wrong
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    args = build_parser(s.api_port, s.redis_url).parse_args(argv)
    logging.basicConfig(level=s.log_level, format="%(asctime)s %(name)s %(message)s",
                        stream=sys.stderr)
    logging.getLogger("lab.http.access").setLevel(
        logging.INFO if args.access_log else logging.WARNING)
    return run_server(PROG, f"{args.host}:{args.port}", args.loop,
                      lambda loop_name: _serve_until_signal(args, s, loop_name))

if __name__ == "__main__":
    sys.exit(main())

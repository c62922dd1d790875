"""``python -m lab.db migrate|status|seed|explain``: the database, from the command line.

All connect as the schema's owner (``DATABASE_OWNER_URL``: migrations create
tables, which the API's role may not). ``migrate`` prints one line per file it
applies; ``status`` lists every migration, applied (when) or pending, and
flags a file edited after it was applied; ``seed`` replaces the data with
generated rows, with a progress display; ``explain`` prints the plans of the
repository's queries (``lab/db/explain.py``).

Every failure -- PostgreSQL unreachable, a wrong password, a tampered
migration -- is one line on stderr and exit 1; a bad flag is exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from urllib.parse import urlsplit

import asyncpg

from lab import settings as lab_settings
from lab.cli import OneLineParser, positive
from lab.db import seed
from lab.db.explain import QUERIES, report
from lab.db.migrator import MigrationError, applied_migrations, discover, migrate

PROG = "python -m lab.db"
CONNECT_TIMEOUT = 10  # seconds


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=(
        "The Task API's PostgreSQL schema: plain-SQL migrations in lab/db/migrations."))
    parser.add_argument("--database-url", metavar="URL", default=None,
                        help="connect here instead of DATABASE_OWNER_URL (from the "
                             "environment, .env or .env.example)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("migrate", help="apply the pending migrations, each in a transaction",
                        description="Apply every pending migration, in order, each in its own "
                                    "transaction; safe to run from several processes at once.")
    commands.add_parser("status", help="list the migrations: applied (when) or pending",
                        description="List every migration file with when it was applied, or "
                                    "'pending'; a file edited after it was applied is flagged.")
    seed_cmd = commands.add_parser(
        "seed", help="replace the data with realistic generated rows (COPY)",
        description="Empty users, categories and tasks, then load generated rows with COPY; "
                    "the same --seed gives the same rows. Run migrate first.")
    seed_cmd.add_argument("--users", type=positive(int), default=1_000,
                          help="how many users (default: 1000)")
    seed_cmd.add_argument("--categories", type=positive(int), default=12,
                          help="how many categories (default: 12)")
    seed_cmd.add_argument("--tasks", type=positive(int), default=100_000,
                          help="how many tasks (default: 100000; 1000000 takes under a minute)")
    seed_cmd.add_argument("--seed", type=int, default=1,
                          help="random seed: the same seed, the same data (default: 1)")
    explain_cmd = commands.add_parser(
        "explain", help="plan the repository's queries (EXPLAIN); flag seq scans, misestimates",
        description="Run each repository query (or --query NAME) under EXPLAIN, print a "
                    "compact plan tree and warnings; --analyze runs them (actual rows, time, "
                    "buffers); --without-index shows the plan with that index dropped inside a "
                    "rolled-back transaction, side by side; --with-index the plan with an "
                    "index built in one.")
    explain_cmd.add_argument("--query", choices=list(QUERIES), action="append", metavar="NAME",
                             help=f"one query, repeatable (default: all): {', '.join(QUERIES)}")
    explain_cmd.add_argument("--analyze", action="store_true",
                             help="run the queries too: actual rows, time and buffers")
    explain_cmd.add_argument("--without-index", metavar="INDEX",
                             help="also plan with INDEX dropped in a rolled-back transaction "
                                  "(the table is locked meanwhile: not on a busy database)")
    explain_cmd.add_argument("--with-index", metavar="DDL",
                             help="also plan with an index built by this CREATE INDEX "
                                  "statement in a rolled-back transaction (writes wait meanwhile)")
    return parser


def where(url: str) -> str:
    """``lab_owner@127.0.0.1:5432/lab``: the URL without its password, for messages."""
    parts = urlsplit(url)
    return f"{parts.username}@{parts.hostname}:{parts.port or 5432}{parts.path}"


async def _run(command: str, url: str, args: argparse.Namespace) -> None:
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise MigrationError(f"cannot connect to PostgreSQL as {where(url)}: {reason} "
                             "(is it running? make services starts it)") from None
    try:
        if command == "migrate":
            applied = await migrate(conn, report=lambda line: print(line, flush=True))
            if not applied:
                print("nothing to apply: the schema is up to date")
        elif command == "status":
            await _status(conn)
        elif command == "explain":
            for name in args.query or QUERIES:
                print(await report(conn, name, analyze=args.analyze, without=args.without_index,
                                   create_index=args.with_index),
                      end="\n\n", flush=True)
        else:
            await _seed(conn, args)
    finally:
        await conn.close()


async def _status(conn: asyncpg.Connection) -> None:
    applied = await applied_migrations(conn)
    for migration in discover():
        done = applied.get(migration.version)
        if done is None:
            state = "pending"
        elif done.checksum != migration.checksum:
            state = f"applied {done.applied_at:%Y-%m-%d %H:%M:%S %Z}, FILE CHANGED SINCE"
        else:
            state = f"applied {done.applied_at:%Y-%m-%d %H:%M:%S %Z}"
        print(f"{migration.label:32} {state}")


async def _seed(conn: asyncpg.Connection, args: argparse.Namespace) -> None:
    if await conn.fetchval("SELECT to_regclass('tasks')") is None:
        raise MigrationError("there is no tasks table yet: run 'python -m lab.db migrate' first")
    started = time.perf_counter()
    counts = await seed.seed(conn, user_count=args.users, category_count=args.categories,
                             task_count=args.tasks, seed_value=args.seed,
                             progress=seed.print_progress(sys.stderr))
    print(f"seeded {counts['users']:,} users, {counts['categories']:,} categories and "
          f"{counts['tasks']:,} tasks in {time.perf_counter() - started:.1f} s "
          f"(seed {args.seed}); VACUUM (ANALYZE) done")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        url = args.database_url or lab_settings.load().database_owner_url
        asyncio.run(_run(args.command, url, args))
    except (MigrationError, ValueError) as exc:  # ValueError: a bad setting
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except asyncpg.PostgresError as exc:  # a migration's SQL failed: nothing of it was kept
        print(f"{PROG}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

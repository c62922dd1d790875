"""``python -m lab.db migrate|status``: the database's schema, from the command line.

Both connect as the schema's owner (``DATABASE_OWNER_URL``: migrations create
tables, which the API's role may not). ``migrate`` prints one line per file it
applies; ``status`` lists every migration, applied (when) or pending, and
flags a file edited after it was applied.

Every failure -- PostgreSQL unreachable, a wrong password, a tampered
migration -- is one line on stderr and exit 1; a bad flag is exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from urllib.parse import urlsplit

import asyncpg

from lab import settings as lab_settings
from lab.cli import OneLineParser
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
    return parser


def where(url: str) -> str:
    """``lab_owner@127.0.0.1:5432/lab``: the URL without its password, for messages."""
    parts = urlsplit(url)
    return f"{parts.username}@{parts.hostname}:{parts.port or 5432}{parts.path}"


async def _run(command: str, url: str) -> None:
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
        else:
            await _status(conn)
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        url = args.database_url or lab_settings.load().database_owner_url
        asyncio.run(_run(args.command, url))
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

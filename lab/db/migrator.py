"""Plain-SQL migrations, applied in order, each exactly once, by a hand-built migrator.

A migration is a file ``lab/db/migrations/NNNN_name.sql``. The database keeps
what it has applied in ``schema_migrations`` (version, name, checksum,
applied_at), so ``migrate`` knows what is left to do:

1. take a PostgreSQL **advisory lock** for the schema. Several API instances
   starting at once all call ``migrate``; the first applies, the others wait
   on the lock, then find nothing left. The lock is taken before even
   ``CREATE TABLE IF NOT EXISTS schema_migrations``, which two sessions could
   otherwise race on;
2. compare the files with what was applied (``plan``, pure): an applied file
   whose **checksum** changed, or one that vanished, is refused with a clear
   message -- the database no longer matches the files, and re-running an
   edited migration would not fix it. Write a new migration instead;
3. apply each pending file in **its own transaction**, together with its row in
   ``schema_migrations``: a file that fails leaves nothing behind (PostgreSQL's
   DDL is transactional) and is tried again next time.

What Alembic adds: migrations generated from model changes (autogenerate),
downgrades, branches and merges, offline SQL scripts, and a Python API for
data migrations. What it shares: a version table, one transaction per step.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

MIGRATIONS = Path(__file__).with_name("migrations")
_FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""
# One lock per schema (tests migrate throwaway schemas side by side).
_LOCK = "SELECT pg_advisory_lock(hashtext('lab.db migrate ' || current_schema()))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext('lab.db migrate ' || current_schema()))"


class MigrationError(Exception):
    """The files and the database disagree in a way only a person can settle."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    checksum: str  # sha256 of the file's bytes

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True)
class Applied:
    version: int
    name: str
    checksum: str
    applied_at: datetime


def discover(directory: Path = MIGRATIONS) -> list[Migration]:
    """Every migration file in ``directory``, in version order; MigrationError on a bad name."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.fullmatch(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: a migration is named NNNN_name.sql "
                                 "(four digits, then lower-case words joined by _)")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path.name}: version {version:04d} is used twice")
        raw = path.read_bytes()
        found[version] = Migration(version, match.group(2), raw.decode("utf-8"),
                                   hashlib.sha256(raw).hexdigest())
    return [found[v] for v in sorted(found)]


def plan(available: list[Migration], applied: dict[int, Applied]) -> list[Migration]:
    """The migrations still to apply, in order; MigrationError if history was rewritten."""
    by_version = {m.version: m for m in available}
    for version, done in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"migration {version:04d}_{done.name} was applied but its file is gone; "
                "restore it (migrations are never deleted)")
        if migration.checksum != done.checksum:
            raise MigrationError(
                f"migration {migration.label}.sql was changed after it was applied "
                f"(checksum {done.checksum[:12]}… is now {migration.checksum[:12]}…); "
                "undo the edit and write a new migration instead")
    return [m for m in available if m.version not in applied]


async def applied_migrations(conn: asyncpg.Connection) -> dict[int, Applied]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, name, checksum, applied_at FROM schema_migrations")
    return {row["version"]: Applied(**row) for row in rows}


async def migrate(conn: asyncpg.Connection, available: list[Migration] | None = None,
                  report: Callable[[str], None] = lambda line: None) -> list[Migration]:
    """Apply what is pending; returns what this call applied (empty if nothing was left)."""
    available = discover() if available is None else available
    await conn.execute(_LOCK)  # waits while another migrator works on this schema
    try:
        await conn.execute(_CREATE_TABLE)
        pending = plan(available, await applied_migrations(conn))
        for migration in pending:
            started = time.perf_counter()
            async with conn.transaction():  # the file and its record, or neither
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version, migration.name, migration.checksum)
            report(f"applied {migration.label} "
                   f"({(time.perf_counter() - started) * 1000:.0f} ms)")
        return pending
    finally:
        # Session-level lock: released here, or by PostgreSQL if the connection dies.
        await conn.execute(_UNLOCK)

"""The migrator: pure planning without a server, then the real thing on PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime

import asyncpg
import pytest

from lab.db.migrator import Applied, MigrationError, discover, migrate, plan
from tests.db.conftest import with_search_path


def write(directory, files: dict[str, str]):
    directory.mkdir(exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return discover(directory)


# planning, no server -------------------------------------------------------------------
def test_the_lab_migrations_are_well_formed():
    found = discover()
    assert [m.label for m in found][:1] == ["0001_schema"]
    assert [m.version for m in found] == sorted({m.version for m in found})


@pytest.mark.parametrize("name", ["1_x.sql", "0001-x.sql", "0001_X.sql", "0001_.sql",
                                  "abcd_x.sql"])
def test_a_badly_named_file_is_refused(tmp_path, name):
    (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        discover(tmp_path)


def test_a_version_used_twice_is_refused(tmp_path):
    with pytest.raises(MigrationError, match="used twice"):
        write(tmp_path, {"0001_a.sql": "SELECT 1;", "0001_b.sql": "SELECT 2;"})


def applied(migration, checksum=None) -> Applied:
    return Applied(migration.version, migration.name, checksum or migration.checksum,
                   datetime(2026, 1, 1, tzinfo=UTC))


def test_plan_returns_what_is_pending_in_order(tmp_path):
    first, second, third = write(tmp_path, {"0003_c.sql": "SELECT 3;", "0001_a.sql": "SELECT 1;",
                                            "0002_b.sql": "SELECT 2;"})
    assert [m.label for m in (first, second, third)] == ["0001_a", "0002_b", "0003_c"]
    assert plan([first, second, third], {1: applied(first)}) == [second, third]
    assert plan([first, second, third], {m.version: applied(m) for m in (first, second, third)}
                ) == []


def test_plan_refuses_an_edited_migration(tmp_path):
    (first,) = write(tmp_path, {"0001_a.sql": "SELECT 1;"})
    with pytest.raises(MigrationError, match=r"0001_a\.sql was changed after it was applied"):
        plan([first], {1: applied(first, checksum="0" * 64)})


def test_plan_refuses_a_vanished_migration(tmp_path):
    (first,) = write(tmp_path, {"0001_a.sql": "SELECT 1;"})
    with pytest.raises(MigrationError, match="0001_a was applied but its file is gone"):
        plan([], {1: applied(first)})


# on PostgreSQL -------------------------------------------------------------------------
async def test_a_fresh_schema_gets_every_migration_once(owner):
    lines = []
    done = await migrate(owner, report=lines.append)
    assert [m.label for m in done] == [m.label for m in discover()]
    assert len(lines) == len(done) and lines[0].startswith("applied 0001_schema (")
    rows = await owner.fetch("SELECT version, name, checksum FROM schema_migrations ORDER BY 1")
    assert [(r["version"], r["name"], r["checksum"]) for r in rows] == [
        (m.version, m.name, m.checksum) for m in discover()]
    tables = {r["tablename"] for r in await owner.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    assert {"users", "categories", "tasks", "schema_migrations"} <= tables
    assert await migrate(owner) == []  # a second run finds nothing to do


async def test_two_migrators_at_once_apply_each_file_exactly_once(owner_url, schema, tmp_path):
    # The first file sleeps, so the second migrator surely arrives while the first works.
    files = write(tmp_path, {
        "0001_slow.sql": "CREATE TABLE a (x int); SELECT pg_sleep(0.5);",
        "0002_more.sql": "CREATE TABLE b (y int);",
    })
    url = with_search_path(owner_url, schema)
    first, second = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        results = await asyncio.gather(migrate(first, files), migrate(second, files))
    finally:
        await first.close()
        await second.close()
    assert sorted(len(applied) for applied in results) == [0, 2]  # one did all, one waited


async def test_a_failing_migration_leaves_nothing_and_is_retried(owner, tmp_path):
    files = write(tmp_path, {"0001_ok.sql": "CREATE TABLE a (x int);",
                             "0002_bad.sql": "CREATE TABLE b (y int); SELECT no_such_column;"})
    with pytest.raises(asyncpg.UndefinedColumnError):
        await migrate(owner, files)
    assert await owner.fetchval("SELECT to_regclass('b')") is None  # rolled back whole
    assert await owner.fetchval("SELECT max(version) FROM schema_migrations") == 1
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE b (y int);")
    assert [m.label for m in await migrate(owner, discover(tmp_path))] == ["0002_bad"]


async def test_an_edited_migration_is_refused_and_nothing_runs(owner, tmp_path):
    await migrate(owner, write(tmp_path, {"0001_a.sql": "CREATE TABLE a (x int);"}))
    edited = write(tmp_path, {"0001_a.sql": "CREATE TABLE a (x bigint);",
                              "0002_b.sql": "CREATE TABLE b (y int);"})
    with pytest.raises(MigrationError, match="changed after it was applied"):
        await migrate(owner, edited)
    assert await owner.fetchval("SELECT to_regclass('b')") is None


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.db", *args], capture_output=True,
                          text=True, timeout=60)


async def test_the_cli_migrates_reports_and_refuses_a_tampered_history(owner_url, owner, schema):
    url = with_search_path(owner_url, schema)
    first = run_cli("--database-url", url, "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied 0001_schema (")
    again = run_cli("--database-url", url, "migrate")
    assert (again.returncode, again.stdout) == (0, "nothing to apply: the schema is up to date\n")
    status = run_cli("--database-url", url, "status")
    assert status.returncode == 0 and "0001_schema" in status.stdout
    assert "pending" not in status.stdout
    await owner.execute("UPDATE schema_migrations SET checksum = 'feed' WHERE version = 1")
    refused = run_cli("--database-url", url, "migrate")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "0001_schema.sql was changed after it was applied" in refused.stderr
    assert "FILE CHANGED SINCE" in run_cli("--database-url", url, "status").stdout


def test_the_cli_says_in_one_line_when_postgres_is_unreachable():
    result = run_cli("--database-url", "postgresql://lab_owner:x@127.0.0.1:1/lab", "status")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "cannot connect to PostgreSQL as lab_owner@127.0.0.1:1/lab" in result.stderr


@pytest.mark.parametrize("args", [["nope"], ["--bogus"]])
def test_bad_usage_is_one_line_and_exit_2(args):
    result = run_cli(*args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1

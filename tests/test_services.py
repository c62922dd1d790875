"""infra/services.sh against the real servers: they answer, and the roles are as promised.

lab_owner and lab_app log in to lab_test with the passwords of the settings
(.env.example unless overridden) over 127.0.0.1; lab_app may read and write
rows but not create tables; lab_owner may, and lab_app may use what it creates.
"""

from __future__ import annotations

import subprocess
import uuid

import asyncpg
import pytest

pytestmark = pytest.mark.integration


def services(repo_root, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(repo_root / "infra" / "services.sh"), command],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=900, check=False)


@pytest.fixture(scope="module", autouse=True)
def started(repo_root) -> None:
    result = services(repo_root, "start")
    assert result.returncode == 0, result.stdout + result.stderr


def test_status_reports_all_four_answering(repo_root) -> None:
    result = services(repo_root, "status")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "postgres: answering on 127.0.0.1:5432",
        "redis: answering on 127.0.0.1:6379",
        "rabbitmq: answering on 127.0.0.1:5672",
        "nginx: answering on 127.0.0.1:80",
    ]


@pytest.mark.parametrize(("url", "role"), [("test_database_owner_url", "lab_owner"),
                                           ("test_database_url", "lab_app")])
async def test_role_logs_in_with_its_password(lab_settings, url: str, role: str) -> None:
    conn = await asyncpg.connect(getattr(lab_settings, url), timeout=10)
    try:
        assert await conn.fetchval("SELECT current_user") == role
        assert await conn.fetchval("SELECT current_database()") == "lab_test"
    finally:
        await conn.close()


async def test_app_cannot_create_a_table(lab_settings) -> None:
    conn = await asyncpg.connect(lab_settings.test_database_url, timeout=10)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"CREATE TABLE probe_{uuid.uuid4().hex} (id int)")
    finally:
        await conn.close()


async def test_owner_creates_a_table_that_app_can_write(lab_settings) -> None:
    table = f"probe_{uuid.uuid4().hex}"  # unique: other runs may share lab_test
    owner = await asyncpg.connect(lab_settings.test_database_owner_url, timeout=10)
    try:
        await owner.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, note text)")
        app = await asyncpg.connect(lab_settings.test_database_url, timeout=10)
        try:
            # Default privileges: rows and the serial's sequence, with no GRANT by the owner.
            await app.execute(f"INSERT INTO {table} (note) VALUES ('hello')")
            assert await app.fetchval(f"SELECT note FROM {table}") == "hello"
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(f"DROP TABLE {table}")
        finally:
            await app.close()
    finally:
        await owner.execute(f"DROP TABLE IF EXISTS {table}")  # clean up, whatever happened
        await owner.close()

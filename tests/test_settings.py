"""lab.settings: where each value comes from, and what a bad one says. No server needed."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from lab import settings

EXAMPLE = settings.REPO_ROOT / ".env.example"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A directory holding only a copy of the repository's .env.example."""
    shutil.copy(EXAMPLE, tmp_path / ".env.example")
    return tmp_path


def load(environ: dict[str, str], *dirs: Path) -> settings.Settings:
    return settings.load(environ=environ, dirs=dirs)


def test_defaults_come_from_env_example(checkout: Path) -> None:
    s = load({}, checkout)
    assert s.database_url == "postgresql://lab_app:lab_app_pw@127.0.0.1:5432/lab"
    assert s.database_owner_url == "postgresql://lab_owner:lab_owner_pw@127.0.0.1:5432/lab"
    assert s.test_database_url.endswith("@127.0.0.1:5432/lab_test")
    assert s.test_database_owner_url.startswith("postgresql://lab_owner:")
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.rabbitmq_url == "amqp://guest:guest@127.0.0.1:5672/"
    assert (s.cache_port, s.api_port, s.lb_port, s.nginx_port) == (6380, 8001, 8080, 8081)
    assert s.log_level == "INFO"
    assert (s.queue_exchange, s.queue_work, s.queue_dead_letter) == (
        "lab.tasks", "lab.tasks.work", "lab.tasks.dead")
    assert s.queue_retry_delays == (1.0, 5.0, 25.0)


def test_env_example_lists_every_setting() -> None:
    listed = settings.parse_env_file(EXAMPLE)
    assert set(listed) == {f.name.upper() for f in dataclasses.fields(settings.Settings)}


def test_dotenv_wins_over_env_example(checkout: Path) -> None:
    (checkout / ".env").write_text("CACHE_PORT=7000\n")
    s = load({}, checkout)
    assert s.cache_port == 7000
    assert s.api_port == 8001  # not in .env: still from .env.example


def test_environment_wins_over_dotenv(checkout: Path) -> None:
    (checkout / ".env").write_text("CACHE_PORT=7000\nLOG_LEVEL=debug\n")
    s = load({"CACHE_PORT": "7100"}, checkout)
    assert s.cache_port == 7100
    assert s.log_level == "DEBUG"


def test_first_directory_with_a_dotenv_wins(checkout: Path, tmp_path_factory) -> None:
    here = tmp_path_factory.mktemp("cwd")
    (here / ".env").write_text("API_PORT=9001\n")
    (checkout / ".env").write_text("API_PORT=9002\n")
    assert load({}, here, checkout).api_port == 9001


def test_load_looks_in_the_current_directory(checkout: Path, monkeypatch) -> None:
    for f in dataclasses.fields(settings.Settings):
        monkeypatch.delenv(f.name.upper(), raising=False)
    (checkout / ".env").write_text("LB_PORT=9080\n")
    monkeypatch.chdir(checkout)
    assert settings.load().lb_port == 9080


def test_dotenv_syntax(checkout: Path) -> None:
    (checkout / ".env").write_text(
        "# a comment\n"
        "\n"
        "export API_PORT=9001\n"
        "LB_PORT = '9080'\n"
        'REDIS_URL="redis://127.0.0.1:6379/1"\n'
        "NGINX_PORT=1\n"
        "NGINX_PORT=9081\n"  # the last line wins
    )
    s = load({}, checkout)
    assert (s.api_port, s.lb_port, s.nginx_port) == (9001, 9080, 9081)
    assert s.redis_url == "redis://127.0.0.1:6379/1"


@pytest.mark.parametrize("value", ["abc", "", "0", "65536", "+80", "8_0", "80.0", "-1"])
def test_a_bad_port_names_the_variable(checkout: Path, value: str) -> None:
    with pytest.raises(ValueError, match=r"^CACHE_PORT must be a TCP port number"):
        load({"CACHE_PORT": value}, checkout)


def test_a_bad_port_in_dotenv_names_the_variable(checkout: Path) -> None:
    (checkout / ".env").write_text("CACHE_PORT=abc\n")
    with pytest.raises(ValueError, match=r"CACHE_PORT.*'abc'"):
        load({}, checkout)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://lab_app:secret-pw@127.0.0.1/lab"),
        ("DATABASE_URL", "postgresql://lab_app:secret-pw@127.0.0.1:5432/"),
        ("TEST_DATABASE_OWNER_URL", "postgresql://lab_owner:secret-pw@127.0.0.1:port/x"),
        ("REDIS_URL", "127.0.0.1:6379"),
        ("RABBITMQ_URL", "amqp://guest:secret-pw@/"),
    ],
)
def test_a_bad_url_names_the_variable_but_not_the_password(
    checkout: Path, name: str, value: str
) -> None:
    with pytest.raises(ValueError, match=f"^{name} must") as caught:
        load({name: value}, checkout)
    assert "secret-pw" not in str(caught.value)


def test_a_bad_log_level(checkout: Path) -> None:
    with pytest.raises(ValueError, match=r"^LOG_LEVEL must be"):
        load({"LOG_LEVEL": "LOUD"}, checkout)


@pytest.mark.parametrize(("value", "delays"), [
    ("1,5,25", (1.0, 5.0, 25.0)),
    ("0.2, 0.4", (0.2, 0.4)),
    ("30", (30.0,)),
    ("0.001,999999.999", (0.001, 999999.999)),
])
def test_retry_delays_in_seconds(checkout: Path, value: str, delays: tuple) -> None:
    assert load({"QUEUE_RETRY_DELAYS": value}, checkout).queue_retry_delays == delays


@pytest.mark.parametrize("value", [
    "", "0", "0.0004", "5,1", "1,1", "1.2345", "-1", "1;5", "1,,5", "abc", "nan", "inf",
    "1e3", "1000000", "+1", "1,5,",
])
def test_bad_retry_delays(checkout: Path, value: str) -> None:
    with pytest.raises(ValueError, match=r"^QUEUE_RETRY_DELAYS must be growing delays"):
        load({"QUEUE_RETRY_DELAYS": value}, checkout)


@pytest.mark.parametrize("name", ["QUEUE_EXCHANGE", "QUEUE_WORK", "QUEUE_DEAD_LETTER"])
@pytest.mark.parametrize("value", ["", "amq.tasks", "two words", "x" * 256, "tâches", "a/b"])
def test_bad_queue_names(checkout: Path, name: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be an exchange or queue name"):
        load({name: value}, checkout)


def test_queue_names_may_use_dots_dashes_colons(checkout: Path) -> None:
    s = load({"QUEUE_WORK": "app-1:tasks.work_q", "QUEUE_EXCHANGE": "x" * 255}, checkout)
    assert s.queue_work == "app-1:tasks.work_q" and s.queue_exchange == "x" * 255


def test_a_missing_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^DATABASE_URL is not set"):
        load({}, tmp_path)  # no .env, no .env.example


def test_a_malformed_dotenv_line_names_file_and_line(checkout: Path) -> None:
    (checkout / ".env").write_text("CACHE_PORT=7000\nthis is not a setting\n")
    with pytest.raises(ValueError, match=r"\.env:2: expected KEY=VALUE"):
        load({}, checkout)


def test_settings_are_frozen_and_hide_passwords(checkout: Path) -> None:
    s = load({}, checkout)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.cache_port = 1  # type: ignore[misc]
    shown = repr(s)
    assert "lab_app_pw" not in shown and "lab_owner_pw" not in shown
    assert "postgresql://lab_app:***@127.0.0.1:5432/lab" in shown
    assert "cache_port=6380" in shown


def test_redact() -> None:
    assert settings.redact("amqp://guest:guest@127.0.0.1:5672/") == "amqp://guest:***@127.0.0.1:5672/"
    assert settings.redact("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"

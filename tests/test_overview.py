"""``python -m lab``: the overview of components, commands and ports. No server needed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lab import settings
from lab.__main__ import components, has_main, main, overview


def run_lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True,
                          cwd=settings.REPO_ROOT, timeout=60, check=False)


def test_overview_lists_every_command_and_port(capsys, lab_settings) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in [
        f"python -m lab.cache serve --port {lab_settings.cache_port}",
        f"python -m lab.api --port {lab_settings.api_port} --store memory|postgres",
        "python -m lab.db migrate|status|seed|explain",
        f"python -m lab.lb --port {lab_settings.lb_port} --backend HOST:PORT ...",
        "python -m lab.queue topology",
        "python -m lab up | python -m lab down",
        "python -m bench",
    ]:
        assert command in out
    assert str(lab_settings.nginx_port) in out
    assert "PostgreSQL 127.0.0.1:5432" in out and "NGINX 127.0.0.1:80" in out


def test_each_row_is_marked_honestly(lab_settings) -> None:
    text = overview(lab_settings)
    for c in components(lab_settings):
        line = next(line for line in text.splitlines() if line.startswith(c.name + "  "))
        if c.module is not None and has_main(c.module):
            assert line.endswith("ready")
        else:
            assert line.endswith(f"coming in challenge {c.challenge}")


def test_what_is_built_today(lab_settings) -> None:
    built = {c.name for c in components(lab_settings) if c.built}
    assert {"cache", "Task API", "database", "whole stack", "benchmarks"} <= built


def test_help() -> None:
    result = run_lab("--help")
    assert result.returncode == 0
    assert "usage: python -m lab" in result.stdout
    assert "start the whole stack" in result.stdout and "stop what 'up' started" in result.stdout


@pytest.mark.parametrize("args", [["nonsense"], ["--nonsense"]])
def test_a_bad_command_is_one_line_on_stderr(args: list[str]) -> None:
    result = run_lab(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("python -m lab: error:")


def test_up_explains_its_flags_and_refuses_bad_ones() -> None:
    # Starting and stopping the stack for real: tests/test_stack.py.
    result = run_lab("up", "--help")
    assert result.returncode == 0
    for flag in ("--instances", "--balancer", "--strategy", "--store", "--cache", "--run-dir"):
        assert flag in result.stdout
    result = run_lab("up", "--instances", "0")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1


def test_a_bad_setting_is_one_line_on_stderr(monkeypatch, capsys) -> None:
    monkeypatch.setenv("CACHE_PORT", "abc")
    assert main([]) == 1
    err = capsys.readouterr().err
    assert err == "python -m lab: CACHE_PORT must be a TCP port number 1..65535, got 'abc'\n"

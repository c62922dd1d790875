"""Fixtures shared by every test package; keep this file small."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import settings


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return settings.REPO_ROOT


@pytest.fixture(scope="session")
def lab_settings() -> settings.Settings:
    """The settings as the lab reads them: environment, then .env, then .env.example."""
    return settings.load()

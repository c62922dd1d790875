"""Fixtures shared by every benchmark module.

``record(id, value, unit)`` keeps a measurement that pytest-benchmark does not
time itself (throughput from a C load generator, memory from tracemalloc). The
harness (``python -m bench``) passes ``--lab-results PATH`` and reads them back;
without it (``make test`` runs the modules once with ``--benchmark-disable``)
the figures are only printed, so the modules still run and never rot.

``quick`` is True under ``--benchmark-disable``: load tests then run a token
amount of work, enough to prove they work, not to measure.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--lab-results", default=None, help="JSON-lines file for record()")


@pytest.fixture(scope="session")
def quick(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("benchmark_disable"))


@pytest.fixture(scope="session")
def record(request: pytest.FixtureRequest):
    path = request.config.getoption("--lab-results")

    def record(measurement: str, value: float, unit: str) -> None:
        line = json.dumps({"id": measurement, "value": value, "unit": unit})
        if path:
            with Path(path).open("a") as out:
                out.write(line + "\n")
        else:
            print(f"\n  {line}")

    return record

"""A pytest plugin the harness loads into its benchmark run to follow progress.

It appends one JSON line per event to the file named by ``--lab-events``:
``{"total": N}`` once collection is done, ``{"start": nodeid}`` as each test
begins, and ``{"done": nodeid, "outcome": ...}`` as it ends. The harness tails
that file to draw its progress bar, while pytest's own output goes to a log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--lab-events", default=None, help="JSON-lines file of progress events")


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--lab-events")
    if path:
        config.pluginmanager.register(Events(Path(path)), "lab-events")


class Events:
    def __init__(self, path: Path) -> None:
        self.path = path

    def emit(self, event: dict) -> None:
        with self.path.open("a") as out:
            out.write(json.dumps(event) + "\n")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.emit({"total": len(session.items)})

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self.emit({"start": nodeid})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.emit({"done": report.nodeid, "when": report.when, "outcome": report.outcome})

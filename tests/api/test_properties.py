"""The Task API against its own OpenAPI document: schemathesis generates the requests.

``python -m lab.api --port 0`` runs in a subprocess for the whole module (schemathesis
sends synchronous requests, so the server needs a loop of its own), with a few users,
categories and tasks created first so that generated ids can name something.

Two runs, each bounded and reproducible (a fixed seed, ``deterministic``, no example
database): valid requests (``positive``) must get answers that the document declares --
status, content type, body schema -- and never a 5xx; invalid ones (``negative``) must
never get a 5xx either, and must be refused with a 4xx.

The server's stderr (its access log and any traceback) goes to a file, which the last test
reads: no unhandled error, no 5xx, and every operation really received its share of the
generated requests -- so a run that quietly sent nothing cannot pass.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 15  # seconds to start, to answer one request, to stop
MAX_EXAMPLES = 30  # per operation, in the fuzzing phase
SEED = 20240517
LISTENING = re.compile(r"lab\.api listening on (http://127\.0\.0\.1:\d+) ")


def wait_for_line(process: subprocess.Popen, deadline: float) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
    assert ready, "python -m lab.api printed nothing in time"
    return process.stdout.readline()


@pytest.fixture(scope="module")
def server_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab-api") / "stderr.log"


@pytest.fixture(scope="module")
def api(server_log: Path) -> Iterator[str]:
    """The base URL of a ``python -m lab.api`` on a free port, stopped by SIGTERM at the end."""
    with server_log.open("wb") as stderr:  # a file, not a pipe nobody drains
        process = subprocess.Popen(
            [sys.executable, "-m", "lab.api", "--port", "0", "--store", "memory",
             "--access-log"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = wait_for_line(process, time.monotonic() + TIMEOUT)
        found = LISTENING.match(line)
        assert found, (line, server_log.read_text())
        base = found.group(1)
        seed_data(base)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)  # graceful: in-flight requests finish, exit 0
        try:
            assert process.wait(TIMEOUT) == 0, server_log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            process.stdout.close()


def seed_data(base: str) -> None:
    """Three users, two categories, four tasks: ids 1.. exist when the fuzzing starts."""
    with requests.Session() as http:
        def post(path: str, body: dict) -> None:
            response = http.post(base + path, json=body, timeout=TIMEOUT)
            assert response.status_code == 201, (path, body, response.text)

        for n in range(1, 4):
            post("/users", {"name": f"User {n}", "email": f"user{n}@example.com",
                            "password": "secret-password"})
        for name in ("Work", "Home"):
            post("/categories", {"name": name})
        post("/tasks", {"title": "Write the report", "userId": 1, "categoryId": 1})
        post("/tasks", {"title": "Buy milk", "userId": 2, "categoryId": 2,
                        "status": "completed"})
        post("/tasks", {"title": "Call Ada", "description": "about the engine", "userId": 3})
        post("/tasks", {"title": "Plan", "userId": 1, "status": "in-progress"})


def config(mode: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict({
        "seed": SEED,
        "generation": {"mode": mode, "max-examples": MAX_EXAMPLES, "deterministic": True,
                       "database": "none"},
    })


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:  # keep-alive across the generated requests
        yield session


@pytest.fixture(scope="module")
def positive_schema(api: str):
    return schemathesis.openapi.from_url(f"{api}/openapi.json", config=config("positive"))


@pytest.fixture(scope="module")
def negative_schema(api: str):
    return schemathesis.openapi.from_url(f"{api}/openapi.json", config=config("negative"))


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's from_fixture reads and rewrites ``Node._nodeid``, which pytest 9.2
    # renamed (``Node._id``); without this it fails with AttributeError before any request.
    # Its rewrites only label the per-operation subtests.
    request.node._nodeid = request.node.nodeid


positive = schemathesis.pytest.from_fixture("positive_schema")
# GET /health takes no input at all, so there is nothing invalid to send it.
negative = schemathesis.pytest.from_fixture("negative_schema").exclude(path="/health")

CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance,
               response_schema_conformance]


@positive.parametrize()
def test_valid_requests_get_declared_answers(case, http):
    case.call_and_validate(session=http, checks=CONFORMANCE, timeout=TIMEOUT)


@negative.parametrize()
def test_invalid_requests_are_refused_without_a_server_error(case, http):
    case.call_and_validate(session=http, timeout=TIMEOUT, checks=[
        not_a_server_error, negative_data_rejection, status_code_conformance,
        content_type_conformance, response_schema_conformance])


ACCESS_LINE = re.compile(r"lab\.http\.access \S+ ([A-Z]+) (/[^ ?]*)\S* (\d{3}) ")
RESOURCE_ID = re.compile(r"^/(users|categories|tasks)/[^/]+$")


def test_the_runs_reached_every_operation_and_the_server_never_failed(api, server_log):
    """Reads the server's own log of the two runs above (pytest keeps file order)."""
    requests.get(f"{api}/health", timeout=TIMEOUT).raise_for_status()
    log = server_log.read_text()
    assert "unhandled error" not in log and "Traceback" not in log, log

    seen: dict[tuple[str, str], list[int]] = {}
    for method, path, status in ACCESS_LINE.findall(log):
        template = RESOURCE_ID.sub(r"/\1/{id}", path)
        seen.setdefault((method, template), []).append(int(status))
    assert not [key for key, statuses in seen.items() if max(statuses) >= 500], seen

    documented = requests.get(f"{api}/openapi.json", timeout=TIMEOUT).json()["paths"]
    for path, item in documented.items():
        for method, operation in item.items():
            statuses = seen.get((method.upper(), path), [])
            takes_input = "parameters" in operation or "requestBody" in operation
            assert len(statuses) >= (MAX_EXAMPLES if takes_input else 1), (
                f"{method.upper()} {path} got {len(statuses)} requests; run the whole file")
            if "{" not in path:  # a random id rarely names a row; a list or a create always can
                assert min(statuses) < 300, f"{method.upper()} {path} never succeeded"

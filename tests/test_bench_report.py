"""bench/report.py: rows to README tables, without running a benchmark."""

from __future__ import annotations

from dataclasses import asdict

from bench.registry import Comparison
from bench.report import Row, markdown, rows_from, write_readmes

MACHINE = {"cpu": "a CPU", "cores": 2, "python": "3.11.7", "platform": "Linux"}


def record(*rows: Row) -> dict:
    return {"date": "2026-12-05T11:00:00", "machine": MACHINE, "failures": 0,
            "rows": [asdict(r) for r in rows]}


def test_a_lab_only_row_bounds_the_labs_figure_and_shows_no_ratio() -> None:
    relay = Comparison("queue", "relay (events/s)", "queue/relay/lab", None, "—",
                       (">=", 5000))
    [row] = rows_from([relay], {"queue/relay/lab": {"value": 9128.0, "unit": "ops/s"}})
    assert (row.production, row.ratio, row.meets) == (None, None, True)
    table = markdown(record(row), "queue")
    assert "| relay (events/s) | lab | — | 9,128 ops/s | — | — | ≥ 5,000 ops/s met |" in table


def test_a_ratio_row_is_lab_over_production_against_its_target() -> None:
    bare = Comparison("queue", "consume + ack", "queue/bare/lab", "queue/bare/aio-pika",
                      "aio-pika", (">=", 1.2))
    [row] = rows_from([bare], {"queue/bare/lab": {"value": 11.0, "unit": "ops/s"},
                               "queue/bare/aio-pika": {"value": 10.0, "unit": "ops/s"}})
    assert round(row.ratio, 2) == 1.1 and row.meets is False
    assert "| 1.10× | ≥ 1.2× **missed** |" in markdown(record(row), "queue")


def test_only_the_sections_this_run_measured_are_rewritten(tmp_path) -> None:
    (tmp_path / "lab" / "queue").mkdir(parents=True)
    (tmp_path / "lab" / "cache").mkdir()
    old = "<!-- bench:cache -->\nthe table of an earlier run\n<!-- /bench:cache -->\n"
    (tmp_path / "lab" / "cache" / "README.md").write_text(old)
    (tmp_path / "lab" / "queue" / "README.md").write_text(
        "# Queue\n<!-- bench:queue -->\n<!-- /bench:queue -->\nafter\n")
    row = Row("queue", "relay (events/s)", "lab", "—", "ops/s", 9128.0, None, None,
              "≥ 5,000 ops/s", True)
    changed = write_readmes(record(row), root=tmp_path)
    assert changed == [tmp_path / "lab" / "queue" / "README.md"]
    assert (tmp_path / "lab" / "cache" / "README.md").read_text() == old
    queue = (tmp_path / "lab" / "queue" / "README.md").read_text()
    assert queue.startswith("# Queue\n<!-- bench:queue -->\nMeasured 2026-12-05 on 2 cores")
    assert "| relay (events/s) |" in queue and queue.endswith("<!-- /bench:queue -->\nafter\n")

"""What the harness compares: one ``Comparison`` per row of the results table.

A benchmark module declares its rows in a module-level ``COMPARISONS`` list;
each row names two measurements by id -- the lab's and the production tool's --
and, when the issue set one, the target ratio. Measurements come from two
places, both keyed by the same ids:

* pytest-benchmark tests put ``benchmark.extra_info["id"]`` and ``["ops"]``
  (operations per round), and the harness turns the median round into ns/op;
* load and memory tests call the ``record(id, value, unit)`` fixture
  (``bench/conftest.py``), for figures pytest-benchmark does not time
  (``redis-benchmark`` ops/s, tracemalloc bytes).

The ratio is always lab / production. Whether lower or higher is better
follows from the unit: times and memory want low, throughput wants high.

A row with ``production=None`` has no production side (an end-to-end latency,
or a figure the issue bounds absolutely, "≥ 5,000 events/s"): it shows the
lab's figure alone, and its target, if any, bounds that figure, not a ratio.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass

HIGHER_IS_BETTER = {"ops/s"}


@dataclass(frozen=True)
class Comparison:
    component: str  # "cache": the README section the row belongs to
    operation: str  # what is measured, as a reader would say it
    lab: str  # measurement id of the lab's side
    production: str | None  # measurement id of the production side; None: lab only
    production_name: str  # "cachetools.LRUCache", "Redis 7 (redis-server)"
    target: tuple[str, float] | None = None  # ("<=", 0.5): lab/production must be ≤ 0.5

    def meets(self, value: float) -> bool | None:
        """Whether ``value`` -- the ratio, or the lab's figure in a lab-only row -- is in bounds."""
        if self.target is None:
            return None
        op, bound = self.target
        return value <= bound if op == "<=" else value >= bound

    @property
    def target_text(self) -> str:
        if self.target is None:
            return ""
        op, bound = self.target
        return f"{'≤' if op == '<=' else '≥'} {bound:,g}{'' if self.production is None else '×'}"


def all_comparisons() -> list[Comparison]:
    """Every ``COMPARISONS`` row of every module under ``bench/``, in module order."""
    import bench

    rows: list[Comparison] = []
    for info in sorted(pkgutil.walk_packages(bench.__path__, "bench."), key=lambda i: i.name):
        if info.name.rsplit(".", 1)[-1].startswith("test_"):
            module = importlib.import_module(info.name)
            rows.extend(getattr(module, "COMPARISONS", ()))
    return rows

"""A query plan, as ``EXPLAIN (FORMAT JSON)`` gives it: a tree to print and to check. Pure.

**Reading a plan.** Each node pulls rows from its children; the root's rows are
the answer. For every node, ``EXPLAIN (ANALYZE, BUFFERS)`` reports

* *estimated rows*: what the planner expected, from the statistics ``ANALYZE``
  keeps (``pg_stats``); *actual rows*: what came out. Both are **per loop**;
  *loops* counts how often the node ran (the inner side of a nested loop runs
  once per outer row), so multiply rows and time by loops;
* *time*: milliseconds until the node's last row, its children included (per loop);
* *buffers*: 8 kB pages touched, children included: *hit* in PostgreSQL's
  shared buffers, *read* from the operating system. Pages measure the work
  whatever the cache holds; time also depends on who else is running.

``warnings()`` flags the two things to look for first:

* **a Seq Scan on a large table** reads every page: its cost grows with the
  table, not with the answer. On a small table it is the right choice (fewer
  pages than walking an index), hence the size threshold;
* **an estimate off by more than 10×**: the planner prices each alternative by
  row counts, so a wrong count picks the wrong join or scan for every node
  above it. Usual causes: stale statistics (``ANALYZE``), an expression the
  statistics cannot see (``lower(title) = $1``), correlated columns (``CREATE
  STATISTICS``). A node under a ``Limit`` is stopped early, so fewer rows than
  estimated is expected there, not a miss.

Running EXPLAIN is ``lab.db.explain``'s job; this module only reads its output.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

LARGE_TABLE_ROWS = 10_000
MISESTIMATE = 10  # a factor between estimated and actual rows
_TINY = 10  # rows; below this on both sides a factor means nothing
# Nodes that read all their input before returning a row: below them, a Limit stops nothing.
_READS_ALL_INPUT = {"Sort", "Hash", "Aggregate", "HashAggregate"}


@dataclass(repr=False)
class PlanNode:
    node_type: str  # as psql's text EXPLAIN names it: "Index Scan Backward", "Hash Left Join"
    relation: str | None = None
    index: str | None = None
    alias: str | None = None
    estimated_rows: float = 0
    actual_rows: float | None = None  # None without ANALYZE; per loop
    loops: int = 1
    total_ms: float | None = None  # to the last row, children included, per loop
    shared_hit: int | None = None
    shared_read: int | None = None
    children: list[PlanNode] = field(default_factory=list)
    schema: str | None = None  # the relation's
    table_rows: float | None = None  # the relation's size (pg_class.reltuples), if known

    def walk(self) -> Iterator[PlanNode]:
        """This node, then every node below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    @property
    def label(self) -> str:
        """``Index Scan using tasks_pkey on tasks t``, as psql's text EXPLAIN says it."""
        text = self.node_type
        if self.index and self.relation:
            text += f" using {self.index}"
        target = self.relation or self.index or self.alias
        if target:
            text += f" on {target}"
        if self.relation and self.alias and self.alias != self.relation:
            text += f" {self.alias}"
        return text

    def __repr__(self) -> str:
        actual = "" if self.actual_rows is None else f" / actual {self.actual_rows:g}"
        return (f"<PlanNode {self.label} rows est {self.estimated_rows:g}{actual}, "
                f"{len(self.children)} children>")


@dataclass
class Plan:
    root: PlanNode
    planning_ms: float | None = None  # both None without ANALYZE
    execution_ms: float | None = None

    def nodes(self) -> Iterator[PlanNode]:
        return self.root.walk()


def _node_name(raw: dict[str, Any]) -> str:
    """The node's name as explain.c prints it in text, from the JSON's separate fields."""
    name = raw["Node Type"]
    if name == "Aggregate":
        name = {"Sorted": "GroupAggregate", "Hashed": "HashAggregate",
                "Mixed": "MixedAggregate"}.get(raw.get("Strategy"), name)
    elif name == "ModifyTable":
        name = raw.get("Operation", name)
    join = raw.get("Join Type", "Inner")
    if join != "Inner":
        name = f"{name.removesuffix(' Join')} {join} Join"
    if raw.get("Scan Direction") == "Backward":
        name += " Backward"
    if raw.get("Partial Mode", "Simple") != "Simple":
        name = f"{raw['Partial Mode']} {name}"
    return f"Parallel {name}" if raw.get("Parallel Aware") else name


def parse(document: list[dict[str, Any]]) -> Plan:
    """A Plan from EXPLAIN's JSON (the list it returns, of one object)."""
    def node(raw: dict[str, Any]) -> PlanNode:
        return PlanNode(
            _node_name(raw), raw.get("Relation Name"), raw.get("Index Name"), raw.get("Alias"),
            raw["Plan Rows"], raw.get("Actual Rows"), raw.get("Actual Loops", 1),
            raw.get("Actual Total Time"), raw.get("Shared Hit Blocks"),
            raw.get("Shared Read Blocks"), [node(child) for child in raw.get("Plans", ())],
            raw.get("Schema"))
    top = document[0]
    return Plan(node(top["Plan"]), top.get("Planning Time"), top.get("Execution Time"))


def _count(rows: float) -> str:
    return f"{rows:,.0f}" if rows >= 10 or rows == int(rows) else f"{rows:.2f}"


def render(plan: Plan) -> str:
    """One line per node, drawn as a tree, then planning and execution time."""
    lines: list[str] = []

    def draw(node: PlanNode, lead: str, branch: str) -> None:
        parts = [f"{lead}{branch}{node.label}", f"rows est {_count(node.estimated_rows)}"]
        if node.loops == 0:
            parts[-1] += ", never executed"
        elif node.actual_rows is not None:
            parts[-1] += f" / actual {_count(node.actual_rows)}"
            if node.loops != 1:
                parts[-1] += f" × {node.loops:,} loops"
        if node.total_ms is not None and node.loops:
            parts.append(f"{node.total_ms:,.3f} ms")
        if node.shared_hit is not None and node.loops:
            read = f" read {node.shared_read:,}" if node.shared_read else ""
            parts.append(f"buffers hit {node.shared_hit:,}{read}")
        lines.append("  ".join(parts))
        below = lead + {"": "", "├─ ": "│  ", "└─ ": "   "}[branch]
        for i, child in enumerate(node.children):
            draw(child, below, "└─ " if i == len(node.children) - 1 else "├─ ")

    draw(plan.root, "", "")
    if plan.execution_ms is None:
        lines.append("estimates only: nothing was run (ANALYZE runs it)")
    else:
        lines.append(f"planning {plan.planning_ms:,.3f} ms, execution {plan.execution_ms:,.3f} ms")
    return "\n".join(lines)


def _stops_early(parent: PlanNode, child: int) -> bool:
    """Whether ``parent`` may stop reading its ``child``-th input before the end."""
    kind = parent.node_type
    return (kind == "Limit"
            # a unique, semi or anti join stops at the inner side's first match
            or (kind.startswith("Nested Loop") and child == 1)
            or (kind.startswith("Merge") and kind.endswith("Join")))  # when one side runs out


def warnings(plan: Plan, large_table_rows: int = LARGE_TABLE_ROWS) -> list[str]:
    """Sequential scans of large tables, and row estimates off by more than 10×."""
    found: list[str] = []

    def check(node: PlanNode, cut_short: bool) -> bool:
        """Warn about the subtree; True if the node's row count is off (a miss it carries)."""
        if "Seq Scan" in node.node_type:
            size = node.table_rows
            if size is None:  # never analyzed: what the node itself saw is the best guess
                size = max(node.estimated_rows, (node.actual_rows or 0) * node.loops)
            if size >= large_table_rows:
                found.append(f"{node.label} reads all ~{size:,.0f} rows; if the query wants "
                             "few of them, an index on what it filters or sorts by skips the rest")
        inherited = any([  # a list, not a generator: every child is checked
            check(child, _stops_early(node, i) or
                  (cut_short and node.node_type not in _READS_ALL_INPUT))
            for i, child in enumerate(node.children)])
        est, actual = node.estimated_rows, node.actual_rows
        if actual is None or node.loops == 0 or max(est, actual) < _TINY:
            return False
        factor = max(est, 1) / max(actual, 1)
        if 1 / MISESTIMATE <= factor <= MISESTIMATE:
            return False
        excused = factor > 1 and cut_short  # stopped early: fewer rows than estimated is no miss
        if not excused and not inherited:  # warn where a miss starts, not at each node above
            more = "more" if actual > est else "fewer"
            found.append(f"{node.label}: estimated {_count(est)} rows, actually {_count(actual)} "
                         f"({max(factor, 1 / factor):,.0f}× {more}); the plan above it was "
                         "chosen for the wrong count")
        return not excused or inherited

    check(plan.root, False)
    return found


def side_by_side(left: str, right: str,
                 titles: tuple[str, str] = ("with the index", "without it")) -> str:
    """Two renders in columns, to compare line by line."""
    left_lines, right_lines = left.splitlines(), right.splitlines()
    width = max(len(line) for line in [titles[0], *left_lines])
    rule = "─" * width + "─┼─" + "─" * max(len(line) for line in [titles[1], *right_lines])
    rows = itertools.zip_longest(left_lines, right_lines, fillvalue="")
    return "\n".join([f"{titles[0]:<{width}} │ {titles[1]}", rule,
                      *(f"{a:<{width}} │ {b}".rstrip() for a, b in rows)])

"""EXPLAIN tooling: plans read by hand (no server), then real plans on a throwaway schema.

The data is sized so that the planner would read the whole of ``tasks`` for a
filtered query if no index served it: 30,000 tasks, 100 users (300 tasks each),
10 categories, analyzed.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from lab.api.store import TaskQuery
from lab.db.explain import (
    QUERIES,
    TITLE_CONTAINS_LOWER,
    TITLE_PHRASE,
    Plan,
    PlanNode,
    assert_uses_index,
    explain,
    render,
    report,
    side_by_side,
    warnings,
    with_index,
    without_index,
)
from lab.db.migrator import migrate
from lab.db.plan import parse
from lab.db.store import list_tasks_sql
from tests.db.conftest import with_search_path

integration = pytest.mark.integration
INDEX = "tasks_user_created_at_idx"  # from 0002_list_indexes.sql


def node(node_type: str, *children: PlanNode, **fields) -> PlanNode:
    return PlanNode(node_type, children=list(children), **fields)


def scan(node_type: str = "Seq Scan", rows: float = 20, actual: float | None = 20,
         **fields) -> PlanNode:
    return node(node_type, relation="tasks", alias="t", estimated_rows=rows, actual_rows=actual,
                **fields)


# render: pure --------------------------------------------------------------------------------
def test_render_draws_one_line_per_node_with_rows_time_and_buffers():
    plan = Plan(node(
        "Limit",
        node("Index Scan Backward", relation="tasks", alias="t", index="tasks_status_created_idx",
             estimated_rows=20, actual_rows=20, total_ms=0.04, shared_hit=12, shared_read=3),
        estimated_rows=20, actual_rows=20, total_ms=0.05, shared_hit=15, shared_read=0),
        planning_ms=0.1, execution_ms=0.2)
    assert render(plan) == (
        "Limit  rows est 20 / actual 20  0.050 ms  buffers hit 15\n"
        "└─ Index Scan Backward using tasks_status_created_idx on tasks t  rows est 20 / actual 20"
        "  0.040 ms  buffers hit 12 read 3\n"
        "planning 0.100 ms, execution 0.200 ms")


def test_render_draws_branches_loops_and_nodes_never_run():
    plan = Plan(node(
        "Nested Loop Left Join",
        node("Hash Join", node("Seq Scan", relation="users", alias="u", estimated_rows=100),
             node("Hash", scan("Index Scan", index="tasks_pkey", rows=1, actual=None),
                  estimated_rows=1),
             estimated_rows=1),
        node("Materialize", node("Seq Scan", relation="categories", alias="c",
                                 estimated_rows=10),
             estimated_rows=1, actual_rows=1, loops=300),
        node("Memoize", estimated_rows=1, actual_rows=0, loops=0),
        estimated_rows=1))
    assert render(plan) == "\n".join([
        "Nested Loop Left Join  rows est 1",
        "├─ Hash Join  rows est 1",
        "│  ├─ Seq Scan on users u  rows est 100",
        "│  └─ Hash  rows est 1",
        "│     └─ Index Scan using tasks_pkey on tasks t  rows est 1",
        "├─ Materialize  rows est 1 / actual 1 × 300 loops",
        "│  └─ Seq Scan on categories c  rows est 10",
        "└─ Memoize  rows est 1, never executed",
        "estimates only: nothing was run (ANALYZE runs it)"])


@pytest.mark.parametrize(("fields", "name"), [
    ({"Node Type": "Index Scan", "Scan Direction": "Backward"}, "Index Scan Backward"),
    ({"Node Type": "Hash Join", "Join Type": "Left"}, "Hash Left Join"),
    ({"Node Type": "Nested Loop", "Join Type": "Anti"}, "Nested Loop Anti Join"),
    ({"Node Type": "Aggregate", "Strategy": "Hashed"}, "HashAggregate"),
    ({"Node Type": "Aggregate", "Strategy": "Sorted", "Partial Mode": "Finalize"},
     "Finalize GroupAggregate"),
    ({"Node Type": "Seq Scan", "Parallel Aware": True}, "Parallel Seq Scan"),
    ({"Node Type": "ModifyTable", "Operation": "Insert"}, "Insert"),
])
def test_parse_names_each_node_as_psql_text_explain_does(fields, name):
    plan = parse([{"Plan": {"Plan Rows": 1, **fields}}])
    assert plan.root.node_type == name


def test_parse_keeps_rows_loops_time_buffers_and_children():
    document = [{"Plan": {
        "Node Type": "Limit", "Plan Rows": 20, "Actual Rows": 20, "Actual Loops": 1,
        "Actual Total Time": 0.05, "Shared Hit Blocks": 7, "Shared Read Blocks": 1,
        "Plans": [{"Node Type": "Seq Scan", "Relation Name": "tasks", "Schema": "s",
                   "Alias": "t", "Plan Rows": 900, "Actual Rows": 20, "Actual Loops": 1}]},
        "Planning Time": 0.1, "Execution Time": 0.2}]
    plan = parse(document)
    assert (plan.planning_ms, plan.execution_ms) == (0.1, 0.2)
    assert (plan.root.shared_hit, plan.root.shared_read, plan.root.total_ms) == (7, 1, 0.05)
    [child] = plan.root.children
    assert (child.label, child.schema, child.estimated_rows) == ("Seq Scan on tasks t", "s", 900)


# warnings: pure ------------------------------------------------------------------------------
def test_a_seq_scan_is_flagged_on_a_large_table_only():
    assert warnings(Plan(scan(table_rows=50_000))) == [
        "Seq Scan on tasks t reads all ~50,000 rows; if the query wants few of them, "
        "an index on what it filters or sorts by skips the rest"]
    assert warnings(Plan(scan(table_rows=5_000))) == []
    assert warnings(Plan(scan(table_rows=5_000)), large_table_rows=1_000) != []
    assert warnings(Plan(scan(rows=40_000, actual=None))) != []  # size unknown: its own rows
    assert warnings(Plan(scan("Index Scan", index="i", table_rows=50_000))) == []


@pytest.mark.parametrize(("rows", "actual", "flagged"), [
    (150, 15_000, True),  # 100× more than estimated
    (5_000, 40, True),  # 125× fewer
    (20, 200, False),  # exactly 10×: not more than
    (1, 9, False),  # tiny on both sides
    (20, 0, True),
])
def test_an_estimate_off_by_more_than_10x_either_way_is_flagged(rows, actual, flagged):
    found = warnings(Plan(scan("Index Scan", index="i", rows=rows, actual=actual)))
    assert bool(found) is flagged, found


def test_the_miss_is_reported_where_it_starts_not_at_every_node_above():
    plan = Plan(node("Aggregate", node("Hash Join", scan(rows=100, actual=5_000),
                                       node("Hash", estimated_rows=10, actual_rows=10),
                                       estimated_rows=100, actual_rows=5_000),
                     estimated_rows=100, actual_rows=5_000))
    assert warnings(plan) == ["Seq Scan on tasks t: estimated 100 rows, actually 5,000 "
                              "(50× more); the plan above it was chosen for the wrong count"]


def test_fewer_rows_than_estimated_is_no_miss_where_a_parent_stops_early():
    limit = Plan(node("Limit", scan("Index Scan", index="i", rows=100_000, actual=20),
                      estimated_rows=20, actual_rows=20))
    assert warnings(limit) == []  # the Limit stopped the scan after 20 rows
    inner = Plan(node("Nested Loop Left Join", scan("Index Scan", index="i", rows=1, actual=1),
                      node("Seq Scan", relation="users", estimated_rows=100, actual_rows=1),
                      estimated_rows=1, actual_rows=1))
    assert warnings(inner) == []  # a unique inner side stops at its first match
    more = Plan(node("Limit", scan("Index Scan", index="i", rows=2, actual=500),
                     estimated_rows=20, actual_rows=20))
    assert len(warnings(more)) == 1  # more rows than estimated is a miss anywhere


def test_below_a_sort_a_limit_stops_nothing():
    plan = Plan(node("Limit", node("Sort", scan(rows=100_000, actual=20, table_rows=1_000),
                                   estimated_rows=100_000, actual_rows=20),
                     estimated_rows=20, actual_rows=20))
    assert warnings(plan) == ["Seq Scan on tasks t: estimated 100,000 rows, actually 20 "
                              "(5,000× fewer); the plan above it was chosen for the wrong count"]


def test_side_by_side_puts_two_renders_in_columns():
    assert side_by_side("a\nbb", "ccc", ("left", "right")) == "\n".join([
        "left │ right",
        "─────┼──────",
        "a    │ ccc",
        "bb   │"])


# real plans ----------------------------------------------------------------------------------
_DATA = """
INSERT INTO users (email, name, password_hash)
    SELECT 'user' || i || '@example.com', 'User ' || i, 'h' FROM generate_series(1, 100) i;
INSERT INTO categories (name) SELECT 'Category ' || i FROM generate_series(1, 10) i;
INSERT INTO tasks (title, status, user_id, category_id, created_at)
    SELECT (ARRAY['Write the report', 'Fix the bug'])[1 + i % 2],
           (ARRAY['pending', 'in-progress', 'completed'])[1 + i % 3],
           1 + i % 100, 1 + i % 10, now() - i * interval '1 minute'
    FROM generate_series(1, 30000) i;
ANALYZE users, categories, tasks;
"""


@pytest.fixture
async def db(owner):
    await migrate(owner)
    await owner.execute(_DATA)
    return owner


def by_user() -> tuple[str, list]:
    return list_tasks_sql(TaskQuery(user_id=3, limit=20))


async def index_exists(db, name: str) -> bool:
    return await db.fetchval("SELECT EXISTS (SELECT FROM pg_indexes WHERE schemaname = "
                             "current_schema() AND indexname = $1)", name)


@integration
async def test_render_of_a_real_plan_names_nodes_relations_indexes_and_rows(db):
    text = render(await explain(db, *by_user(), analyze=True))
    assert text.startswith("Sort  rows est 20 / actual 20  ")
    # The page walks the index newest first and stops at 20; the count reads all 300.
    assert re.search(rf"Index Scan Backward using {INDEX} on tasks t_1  rows est [\d,]+ / "
                     r"actual 20  [\d.]+ ms  buffers hit \d+", text), text
    assert re.search(rf"Scan (using|on) {INDEX}\b.* / actual 300  ", text), text  # any kind
    assert re.search(r"\nplanning [\d.]+ ms, execution [\d.]+ ms$", text), text


@integration
async def test_a_seq_scan_on_tasks_is_flagged_without_the_index_and_not_with_it(db):
    plan = await explain(db, *by_user(), analyze=True)
    assert not [w for w in warnings(plan) if "Seq Scan" in w]
    plan = await without_index(db, INDEX, *by_user(), analyze=True)
    [seq_scan] = [n for n in plan.nodes() if n.node_type == "Seq Scan" and n.relation == "tasks"]
    assert seq_scan.table_rows == 30_000  # pg_class.reltuples, from ANALYZE
    assert any(w.startswith("Seq Scan on tasks t reads all ~30,000 rows") for w in warnings(plan))


@integration
async def test_without_index_shows_the_seq_scan_and_the_index_is_never_gone(db):
    with_it = await explain(db, *by_user(), analyze=True)
    without = await without_index(db, INDEX, *by_user(), analyze=True)
    assert INDEX in render(with_it) and INDEX not in render(without)
    assert "Seq Scan on tasks t" in render(without)
    assert await index_exists(db, INDEX) and not db.is_in_transaction()
    lines = side_by_side(render(with_it), render(without),
                         (f"with {INDEX}", f"without {INDEX}")).splitlines()
    middle = lines[0].index("│")
    left = "\n".join(line[:middle] for line in lines)
    right = "\n".join(line[middle + 2:] for line in lines)
    assert left.rstrip().endswith(render(with_it).splitlines()[-1])
    assert INDEX in left and "Seq Scan on tasks t" not in left
    assert "Seq Scan on tasks t" in right and f"using {INDEX}" not in right


@integration
async def test_without_index_drops_a_primary_key_with_its_constraint_too(db):
    sql, args = await QUERIES["get-task"](db)
    plan = await without_index(db, "tasks_pkey", sql, args, analyze=False)
    assert "Seq Scan on tasks t" in render(plan)
    assert await index_exists(db, "tasks_pkey")
    with pytest.raises(ValueError, match="no index named 'nope'"):
        await without_index(db, "nope", sql, args)


@integration
async def test_assert_uses_index_passes_with_the_index_and_raises_without_it(db):
    await assert_uses_index(db, *by_user(), INDEX)
    transaction = db.transaction()
    await transaction.start()
    try:
        await db.execute(f"DROP INDEX {INDEX}")
        with pytest.raises(AssertionError, match=f"does not use {INDEX}; its scans: "
                                                 "Seq Scan on tasks t"):
            await assert_uses_index(db, *by_user(), INDEX)
    finally:
        await transaction.rollback()  # the index is back


@integration
async def test_get_task_uses_the_primary_key(db):
    await assert_uses_index(db, *await QUERIES["get-task"](db), "tasks_pkey")


@integration
async def test_an_expression_hidden_from_the_statistics_misleads_the_estimate(db):
    # No statistics on lower(title): the planner guesses 0.5% of rows; half of them match.
    plan = await explain(db, "SELECT id FROM tasks WHERE lower(title) = $1", ["fix the bug"],
                         analyze=True)
    assert [w for w in warnings(plan) if "actually 15,000" in w] == [
        "Seq Scan on tasks: estimated 150 rows, actually 15,000 (100× more); "
        "the plan above it was chosen for the wrong count"]


@integration
async def test_explain_analyze_of_a_write_leaves_nothing_behind(db):
    plan = await explain(db, "INSERT INTO categories (name) VALUES ($1)", ["ghost"], analyze=True)
    assert plan.root.node_type == "Insert" and plan.root.relation == "categories"
    assert await db.fetchval("SELECT count(*) FROM categories WHERE name = 'ghost'") == 0


@integration
async def test_every_named_query_runs_under_explain_analyze(db):
    for name in QUERIES:
        text = await report(db, name, analyze=True)
        assert text.startswith(f"== {name}\n") and "execution" in text, text
    sql, args = await QUERIES["list-users"](db)  # taken from the store itself
    assert "FROM users" in sql and args == [20, 0]
    with pytest.raises(ValueError, match="no query named 'nope'"):
        await report(db, "nope")


@integration
async def test_report_shows_the_plan_without_an_index_beside_the_plan_with_it(db):
    text = await report(db, "list-by-user", analyze=True, without=INDEX)
    assert re.fullmatch(f"with {INDEX} +│ without {INDEX}", text.splitlines()[1])
    assert await index_exists(db, INDEX)


def test_the_cli_prints_the_plan_of_a_named_query(owner_url, schema):
    url = with_search_path(owner_url, schema)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "lab.db", "--database-url", url, *args],
                              capture_output=True, text=True, timeout=120)

    assert cli("migrate").returncode == 0
    assert cli("seed", "--users", "5", "--categories", "2", "--tasks", "2000").returncode == 0
    done = cli("explain", "--query", "get-task", "--analyze")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("== get-task\n")
    assert "Index Scan using tasks_pkey on tasks t" in done.stdout
    assert "execution" in done.stdout
    refused = cli("explain", "--query", "get-task", "--without-index", "no_such_index")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    refused = cli("explain", "--query", "get-task", "--with-index", "DROP TABLE tasks")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "takes a CREATE INDEX statement" in refused.stderr


# the hot queries use the indexes of 0002_list_indexes.sql --------------------------------
@integration
@pytest.mark.parametrize(("name", "index", "fallback"), [
    ("get-task", "tasks_pkey", "Seq Scan on tasks t"),
    ("list-pending", "tasks_status_created_at_idx", "Seq Scan on tasks t"),
    ("list-by-user", "tasks_user_created_at_idx", "Seq Scan on tasks t"),
    ("list-by-category", "tasks_category_created_at_idx", "Seq Scan on tasks t"),
    ("deep-keyset", "tasks_created_at_idx", "Seq Scan on tasks t"),
    ("title-contains", "tasks_title_trgm_idx", "Seq Scan on tasks"),
    # A third of the tasks are pending: walking the creation-time index and skipping
    # the others also finds a page fast, so that is the planner's second choice.
    ("next-pending", "tasks_status_created_at_idx",
     "Index Scan Backward using tasks_created_at_idx on tasks t"),
])
async def test_each_hot_query_uses_its_index_and_falls_back_without_it(db, name, index,
                                                                       fallback):
    sql, args = await QUERIES[name](db)
    await assert_uses_index(db, sql, args, index)
    without = render(await without_index(db, index, sql, args))
    assert index not in without and fallback in without, without


@integration
async def test_a_lower_title_index_does_not_serve_a_contains_search_and_trigrams_do(db):
    created = "CREATE INDEX tasks_title_lower_idx ON tasks (lower(title))"
    plan = render(await with_index(db, created, TITLE_CONTAINS_LOWER, [TITLE_PHRASE]))
    assert "tasks_title_lower_idx" not in plan and "Seq Scan on tasks" in plan
    # The same B-tree does serve what it sorts by: an equality, or a prefix.
    plan = render(await with_index(db, created, "SELECT id FROM tasks WHERE lower(title) = $1",
                                   ["fix the bug!"]))
    assert "tasks_title_lower_idx" in plan
    assert not await index_exists(db, "tasks_title_lower_idx") and not db.is_in_transaction()
    sql, args = await QUERIES["title-contains"](db)
    await assert_uses_index(db, sql, args, "tasks_title_trgm_idx")


@integration
async def test_with_index_takes_only_a_create_index_statement(db):
    with pytest.raises(ValueError, match="takes a CREATE INDEX statement"):
        await with_index(db, "DROP TABLE tasks", "SELECT 1")
    assert await db.fetchval("SELECT count(*) FROM tasks") == 30_000
    text = await report(db, "title-contains-lower", create_index="CREATE INDEX ON tasks "
                                                                 "(lower(title))")
    assert re.fullmatch(r"as it is +│ with CREATE INDEX ON tasks \(lower\(title\)\)",
                        text.splitlines()[1])

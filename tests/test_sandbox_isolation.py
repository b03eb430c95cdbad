"""A trajectory's SQL runs logged in as its sandbox's role: it reaches its own tables and nothing else.

These tests send raw SQL straight to SandboxManager.execute, past the SQL guard, to show what the database role
alone enforces: even a statement the guard would have let through by mistake cannot reach another sandbox, the
domain's source schema, TurnForge's own tables or the server's settings, and a runaway query is cancelled.
"""
from __future__ import annotations

import psycopg
import pytest

from shared.data.demo_databases import build_demo
from shared.env.sandbox import SandboxManager

pytestmark = pytest.mark.integration

DENIED = (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedFunction)


@pytest.fixture
def manager(postgres_dsn):
    m = SandboxManager(postgres_dsn)
    m.register_domain(build_demo("telecom"))
    return m


@pytest.fixture
def two_sandboxes(manager):
    return manager.create("traj-a", "telecom"), manager.create("traj-b", "telecom")


def run(manager, sandbox, sql, timeout_ms=2000):
    return manager.execute(sandbox, sql, {}, timeout_ms=timeout_ms)


def hashes(manager):
    schema = manager.domain_schema("telecom")
    return (manager.state_hash("traj-b", "telecom"), manager.schema_state_hash("domain_telecom", schema))


@pytest.mark.parametrize("template", [
    "SELECT * FROM {t}.customers",
    "UPDATE {t}.customers SET status = 'hacked'",
    "DELETE FROM {t}.customers",
    "INSERT INTO {t}.plans (plan_id) VALUES (999999)",
    "TRUNCATE {t}.customers",
    "DROP TABLE {t}.customers",
    "ALTER TABLE {t}.customers ADD COLUMN x int",
    "CREATE TABLE {t}.planted (x int)",
])
@pytest.mark.parametrize("target", ["other_sandbox", "domain_source"])
def test_cannot_read_or_change_another_sandbox_or_the_domain_source(manager, two_sandboxes, template, target):
    a, b = two_sandboxes
    schema = b if target == "other_sandbox" else "domain_telecom"
    before = hashes(manager)
    with pytest.raises(DENIED):
        run(manager, a, template.format(t=schema))
    assert hashes(manager) == before


@pytest.mark.parametrize("table", ["public.tf_sandboxes", "public.tf_domains", "public.tf_tool_calls"])
def test_cannot_touch_turnforge_own_tables(manager, two_sandboxes, table):
    a, _ = two_sandboxes
    with pytest.raises(DENIED):
        run(manager, a, f"SELECT * FROM {table}")
    with pytest.raises(DENIED):
        run(manager, a, f"DELETE FROM {table}")


@pytest.mark.parametrize("sql", [
    "SET ROLE postgres",
    "SELECT set_config('role', 'postgres', false)",
    "SET SESSION AUTHORIZATION postgres",
    "ALTER SYSTEM SET max_connections = 5",
    "SELECT set_config('log_statement', 'all', false)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_ls_dir('.')",
    "COPY (SELECT 1) TO PROGRAM 'id'",
    "COPY customers TO '/tmp/leak.csv'",
    "ALTER ROLE CURRENT_USER SUPERUSER",
    "CREATE ROLE intruder LOGIN",
    "CREATE SCHEMA planted",
    "CREATE TABLE planted (x int)",
    "CREATE TEMP TABLE customers (x int)",
    "CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'postgres'",
    "SELECT pg_reload_conf()",
])
def test_cannot_change_server_settings_roles_or_schemas(manager, two_sandboxes, sql):
    a, _ = two_sandboxes
    try:
        run(manager, a, sql)
    except psycopg.errors.InsufficientPrivilege:
        pass  # the expected refusal
    except psycopg.Error as e:  # refused another way (e.g. the function is not granted): still refused
        assert not isinstance(e, psycopg.errors.QueryCanceled), e
    else:
        pytest.fail(f"the sandbox role was allowed to run: {sql}")
    # Whatever it tried, the next statement runs as the sandbox's role, not as anyone else.
    assert run(manager, a, "SELECT current_user AS u, session_user AS s").rows == [{"u": a, "s": a}]


def test_reset_role_cannot_climb_back_to_the_service_account(manager, two_sandboxes):
    a, _ = two_sandboxes
    run(manager, a, "RESET ROLE")
    assert run(manager, a, "SELECT current_user AS u").rows == [{"u": a}]
    assert run(manager, a, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").rows == [{"rolsuper": False}]


def test_own_sandbox_stays_usable(manager, two_sandboxes):
    a, _ = two_sandboxes
    out = run(manager, a, "UPDATE customers SET status = 'vip' WHERE customer_id = 1 RETURNING status")
    assert out.rows == [{"status": "vip"}]


def test_multiple_statements_are_refused(manager, two_sandboxes):
    a, _ = two_sandboxes
    with pytest.raises(psycopg.errors.SyntaxError):  # bound parameters: one statement per call, by protocol
        run(manager, a, "SELECT 1; DROP TABLE customers")
    assert run(manager, a, "SELECT count(*) AS n FROM customers").rows[0]["n"] > 0


def test_a_runaway_query_is_cancelled_by_the_statement_timeout(manager, two_sandboxes):
    a, _ = two_sandboxes
    with pytest.raises(psycopg.errors.QueryCanceled):
        run(manager, a, "SELECT pg_sleep(30)", timeout_ms=300)
    # Turning the timeout off in one call does not carry over: every call gets a fresh session with its own.
    run(manager, a, "SELECT set_config('statement_timeout', '0', false)")
    with pytest.raises(psycopg.errors.QueryCanceled):
        run(manager, a, "SELECT count(*) FROM customers c1, customers c2, customers c3, customers c4", timeout_ms=300)


def test_a_repeated_call_with_the_same_key_writes_once(manager, two_sandboxes):
    a, _ = two_sandboxes
    insert = ("INSERT INTO plans (name, plan_type, data_gb, monthly_fee, includes_roaming, status, launched_date,"
              " created_at) SELECT name, plan_type, data_gb, monthly_fee, includes_roaming, status, launched_date,"
              " created_at FROM plans ORDER BY plan_id LIMIT 1 RETURNING plan_id")
    count = lambda: run(manager, a, "SELECT count(*) AS n FROM plans").rows[0]["n"]
    before = count()
    first = manager.execute(a, insert, {}, timeout_ms=2000, idempotency_key="7/call_1")
    again = manager.execute(a, insert, {}, timeout_ms=2000, idempotency_key="7/call_1")
    assert again == first and count() == before + 1
    manager.execute(a, insert, {}, timeout_ms=2000, idempotency_key="9/call_1")  # another event: a new call
    assert count() == before + 2
    # A sandbox cannot plant outcomes for another sandbox: the recording function keys rows by its login.
    _, b = two_sandboxes
    assert manager.recorded_outcome(b, "7/call_1") is None

"""Sandboxes against a real PostgreSQL: isolation, idempotence, state hashes, timeouts."""
from __future__ import annotations

import psycopg
import pytest

from shared.data.demo_databases import build_demo
from shared.env.sandbox import SandboxManager, sandbox_name

pytestmark = pytest.mark.integration


@pytest.fixture
def manager(postgres_dsn):
    m = SandboxManager(postgres_dsn)
    m.register_domain(build_demo("telecom"))
    return m


def test_create_is_idempotent_and_copies_the_domain(manager):
    name = manager.create("traj-a", "telecom")
    assert manager.create("traj-a", "telecom") == name == sandbox_name("traj-a")
    domain_hash = manager.schema_state_hash("domain_telecom", manager.domain_schema("telecom"))
    assert manager.state_hash("traj-a", "telecom") == domain_hash
    assert manager.live_sandboxes() == ["traj-a"]
    assert manager.drop("traj-a") is True
    assert manager.drop("traj-a") is False
    assert manager.live_sandboxes() == []


def test_a_write_changes_only_its_own_sandbox_and_the_hash(manager):
    a, b = manager.create("traj-a", "telecom"), manager.create("traj-b", "telecom")
    before = manager.state_hash("traj-b", "telecom")
    out = manager.execute(a, "UPDATE customers SET status = %(s)s WHERE customer_id = 1 RETURNING status",
                          {"s": "suspended-x"}, timeout_ms=2000)
    assert out.rows == [{"status": "suspended-x"}]
    assert manager.state_hash("traj-a", "telecom") != before
    assert manager.state_hash("traj-b", "telecom") == before
    # The new identity values continue after the copied rows.
    inserted = manager.execute(a, "INSERT INTO plans (name, plan_type, data_gb, monthly_fee, includes_roaming, status,"
                                  " launched_date, created_at) SELECT name, plan_type, data_gb, monthly_fee,"
                                  " includes_roaming, status, launched_date, created_at FROM plans LIMIT 1"
                                  " RETURNING plan_id", {}, timeout_ms=2000)
    assert inserted.rows[0]["plan_id"] > 40


def test_sandbox_role_cannot_reach_another_sandbox_or_the_domain(manager):
    a = manager.create("traj-a", "telecom")
    b = manager.create("traj-b", "telecom")
    for target in (f"{b}.customers", "domain_telecom.customers", "public.tf_sandboxes"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            manager.execute(a, f"SELECT count(*) FROM {target}", {}, timeout_ms=2000)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # server settings are out of reach too
        manager.execute(a, "SELECT set_config('log_statement', 'all', false)", {}, timeout_ms=2000)


def test_runaway_query_is_stopped_by_the_statement_timeout(manager):
    a = manager.create("traj-a", "telecom")
    with pytest.raises(psycopg.errors.QueryCanceled):
        manager.execute(a, "SELECT count(*) FROM customers c1, customers c2, customers c3, customers c4",
                        {}, timeout_ms=200)


def test_registry_setup_and_sandbox_churn_run_side_by_side(manager, postgres_dsn):
    """Registry setup rewrites the outcome function's catalog row; so do sandbox create/drop (its grant). Run
    side by side they once failed a drop with "tuple concurrently updated" and left the sandbox behind."""
    import threading

    errors: list[BaseException] = []
    stop = threading.Event()

    def set_up_registries():
        try:
            while not stop.is_set():
                fresh = SandboxManager(postgres_dsn)  # a service process starting: sets the registry up once
                fresh.ensure_registry()
                fresh.connection().close()
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            errors.append(e)

    threads = [threading.Thread(target=set_up_registries) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for i in range(25):
            manager.create(f"churn-{i}", "telecom")
            assert manager.drop(f"churn-{i}")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert manager.live_sandboxes() == []


def test_scratch_copies_are_found_by_their_seed(manager):
    from shared.env.sandbox import scratch_owner
    from shared.env.trajectory import trajectory_id_for, trajectory_id_prefix

    for owner in (scratch_owner(trajectory_id_for("seed-1", 0)), scratch_owner(trajectory_id_for("seed-10", 0)),
                  trajectory_id_for("seed-1", 1)):
        manager.create(owner, "telecom")
    found = manager.owners_starting_with(scratch_owner(trajectory_id_prefix("seed-1")))
    assert found == ["golden:seed-1-t0000"]  # not seed-10's copy, not seed-1's live trajectory sandbox

"""The trajectory registry against a real PostgreSQL: one outcome per trajectory, and the plans a seed retry reuses."""
from __future__ import annotations

import pytest

from shared.runtime.bus import MessageInfo, ProcessedLedger
from shared.lifecycle.registry import STUCK, VERDICT, TrajectoryRegistry

pytestmark = pytest.mark.integration


def test_the_first_claim_wins(postgres_dsn):
    ProcessedLedger(postgres_dsn)  # the sweeper names the last step a service finished, from the ledger
    registry = TrajectoryRegistry(postgres_dsn)
    registry.register([("a", "s", 0.0), ("b", "s", 1e12)])
    assert [o.trajectory_id for o in registry.claim_overdue(now=10.0)] == ["a"]  # past its deadline
    assert registry.outcome("a") == STUCK and not registry.claim_verdict("a")  # a late verdict stays out
    assert registry.claim_verdict("b") and registry.claim_verdict("b")  # a redelivered verdict may go again
    assert registry.outcome("b") == VERDICT
    registry.mark_dead_lettered("b")
    assert registry.outcome("b") == VERDICT


def test_plans_are_kept_until_their_trajectory_ends(postgres_dsn):
    registry = TrajectoryRegistry(postgres_dsn)
    registry.save_planned("a", "turns.user", b"state-a", {"traceparent": "00-ab-cd-01"})
    registry.save_planned("a", "deadletter", b"other", {})  # a second save keeps the first plan
    registry.save_planned("b", "deadletter", b"letter-b", {})
    assert registry.planned("a") == ("turns.user", b"state-a", {"traceparent": "00-ab-cd-01"})
    assert registry.planned("b") == ("deadletter", b"letter-b", {})
    registry.register([("a", "s", 1e12), ("b", "s", 1e12)])
    registry.claim_verdict("a")
    assert registry.forget_planned(max_age_s=3600) == 1  # a ended; b is still under way
    assert registry.planned("a") is None and registry.planned("b") is not None
    assert registry.forget_planned(max_age_s=0) == 1  # a seed that never finished: dropped once old enough
    assert registry.planned("b") is None


def test_the_ledger_forgets_trajectories_that_ended_and_are_past_their_deadline(postgres_dsn):
    ledger = ProcessedLedger(postgres_dsn)
    registry = TrajectoryRegistry(postgres_dsn)
    registry.register([("ended-long-ago", "s", 100.0), ("ended-recently", "s", 5000.0), ("running", "s", 50.0)])
    registry.claim_verdict("ended-long-ago")
    registry.claim_verdict("ended-recently")
    for entity in ("ended-long-ago", "ended-recently", "running", "seed-s"):
        for step in (1, 2):
            ledger.mark("agent", "tf.turns.agent", MessageInfo(entity=entity, step=step))

    assert registry.forget_processed(deadline_before=1000.0) == 2

    def seen(entity):
        return ledger.seen("agent", "tf.turns.agent", MessageInfo(entity=entity, step=2))

    assert not seen("ended-long-ago")
    assert seen("ended-recently")  # within its deadline: a redelivery must still be skipped
    assert seen("running")  # past its deadline but unresolved: the sweeper names its last step from these rows
    assert seen("seed-s")  # not a trajectory


def test_a_seed_toolset_is_stored_once_and_kept_until_every_trajectory_of_its_seed_ended(postgres_dsn):
    registry = TrajectoryRegistry(postgres_dsn)
    first = registry.store_seed_toolset("s", b"toolset", now=1000.0)
    again = registry.store_seed_toolset("s", b"another toolset", now=2000.0)  # a redelivered seed
    assert first == again == 1000.0 and registry.seed_toolset("s") == b"toolset"
    assert registry.seed_toolset("unknown") is None

    # Stored but not registered yet (the fan-out is between the two): kept while it is young.
    assert registry.forget_seed_toolsets(max_age_s=1e12) == 0
    registry.register([("s-t0000", "s", 1e12), ("s-t0001", "s", 1e12)])
    registry.claim_verdict("s-t0000")
    assert registry.forget_seed_toolsets(max_age_s=0) == 0  # s-t0001 may still wait to be planned
    registry.mark_dead_lettered("s-t0001")
    assert registry.forget_seed_toolsets(max_age_s=1e12) == 1 and registry.seed_toolset("s") is None

    # A seed whose fan-out never registered anything (it failed in between) is dropped once old enough.
    registry.store_seed_toolset("orphan", b"toolset", now=1000.0)
    assert registry.forget_seed_toolsets(max_age_s=60) == 1

"""A seed's fan-out and its trajectories' planning, handled again after a failure: the same messages and events come
out, and what was planned is sent as planned, not paid twice."""
from __future__ import annotations

import uuid

import psycopg
import pytest

from services.schema_predictor.service import SchemaPredictor
from services.task_generator.service import TaskGenerator
from services.tool_synth.service import ToolSynth
from shared.ops import stack
from shared.run import runner
from shared.runtime import tracing
from shared.runtime.config import Settings
from shared.contracts import SeededTrajectory, SeedToolset, Topics, TrajectoryState
from shared.runtime.errors import TransientError
from shared.ops.local_postgres import create_database

pytestmark = pytest.mark.integration


def test_a_redelivered_seed_and_redelivered_trajectories_reuse_what_was_planned(postgres_server, fake_llm):
    dsn = create_database(postgres_server, "seed_retry_" + uuid.uuid4().hex[:8])
    stack.load_demo_domains(dsn)
    settings = Settings(postgres={"dsn": dsn},
                        llm={"default": {"base_url": fake_llm.base_url, "model": "fake",
                                         "structured_output": "json_schema", "timeout_s": 30, "extra_body": {}}})
    config = runner.RunConfig(domains=["telecom"], num_trajectories=3, write_task_share=0.5, random_seed=5)
    (seed,) = runner.build_seed_events(config, "run-retry", settings)
    (synthesized,) = ToolSynth(settings).handle(seed)
    (ready,) = SchemaPredictor(settings).handle(synthesized.message)
    tids = [f"{seed.seed_id}-t{i:04d}" for i in range(3)]

    # The fan-out: one small message per trajectory, each registered (with the deadline it carries) before any leaves.
    generator = TaskGenerator(settings)
    requests_before = sum(fake_llm.by_fingerprint.values())
    fanned = generator.fan_out(ready.message)
    assert sum(fake_llm.by_fingerprint.values()) == requests_before  # no model call: planning happens per trajectory
    assert [o.key for o in fanned] == tids and all(o.topic == Topics.TRAJECTORIES_SEEDED for o in fanned)
    assert [o.message.index for o in fanned] == [0, 1, 2]
    with psycopg.connect(dsn) as conn:
        registered = dict(conn.execute("SELECT trajectory_id, deadline FROM tf_trajectories WHERE seed_id = %s",
                                       (seed.seed_id,)).fetchall())
    assert registered == {o.key: o.message.deadline for o in fanned}
    # The messages name the seed; its toolset is stored once, not copied into each.
    assert all(len(o.message.SerializeToString()) < 200 for o in fanned)
    assert SeedToolset.FromString(generator.registry.seed_toolset(seed.seed_id)) == ready.message
    # A redelivered seed (handled again before the ledger remembered it) yields the very same messages.
    assert [(o.key, o.message) for o in generator.fan_out(ready.message)] == [(o.key, o.message) for o in fanned]

    plan = generator.new_trajectory
    planned, fail_at = [], {2}

    def flaky_plan(prepared, db_schema, seeded: SeededTrajectory, llm):
        if seeded.index in fail_at:  # the database or the model goes away while the third trajectory is planned
            fail_at.discard(seeded.index)
            raise TransientError("database connection lost")
        before = sum(fake_llm.by_fingerprint.values())
        out = plan(prepared, db_schema, seeded, llm)
        planned.append((seeded.index, sum(fake_llm.by_fingerprint.values()) - before))
        return out

    generator.new_trajectory = flaky_plan
    first = {}
    for out in fanned:
        try:
            (first[out.key],) = generator.plan(out.message)
        except TransientError:
            pass  # the bus retries this one trajectory's message; its siblings went out already
    assert sorted(first) == tids[:2]
    saved = {tid: generator.registry.planned(tid) for tid in tids}
    assert saved[tids[2]] is None and all(saved[t] is not None for t in tids[:2])
    assert [i for i, _ in planned] == [0, 1] and all(calls > 0 for _, calls in planned)

    # Every message is delivered again, to another replica: only the third trajectory is planned now.
    replica = TaskGenerator(settings)
    replica.new_trajectory = flaky_plan
    requests_before = sum(fake_llm.by_fingerprint.values())
    outputs = [out for seeded in fanned for out in replica.plan(seeded.message)]
    assert [i for i, _ in planned] == [0, 1, 2]
    assert sum(fake_llm.by_fingerprint.values()) - requests_before == planned[-1][1]
    assert [o.key for o in outputs] == tids and all(o.topic == Topics.TURNS_USER for o in outputs)
    assert all(o.message.deadline == registered[o.key] for o in outputs)  # the deadline the sweeper knows
    for out in outputs[:2]:  # the very events the first attempt planned, in the trace it started
        topic, state, carrier = saved[out.key]
        assert topic == Topics.TURNS_USER and out.message == first[out.key].message
        assert out.message == TrajectoryState.FromString(state)
        assert tracing.carrier_from_context(out.trace_context) == carrier

    # Once a trajectory has an outcome (here a dead letter), a late redelivery of its message sends nothing more.
    replica.registry.mark_dead_lettered(tids[2])
    assert replica.plan(fanned[2].message) == []

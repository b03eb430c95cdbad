"""A seed whose fan-out fails half-way and is handled again: what was planned is sent as planned, not paid twice."""
from __future__ import annotations

import uuid

import pytest

from services.schema_predictor.service import SchemaPredictor
from services.task_generator.service import TaskGenerator
from services.tool_synth.service import ToolSynth
from shared.ops import stack
from shared.run import runner
from shared.runtime import tracing
from shared.runtime.config import Settings
from shared.contracts import Topics, TrajectoryState
from shared.runtime.errors import TransientError
from shared.ops.local_postgres import create_database

pytestmark = pytest.mark.integration


def test_a_retried_seed_reuses_the_trajectories_it_planned(postgres_server, fake_llm):
    dsn = create_database(postgres_server, "seed_retry_" + uuid.uuid4().hex[:8])
    stack.load_demo_domains(dsn)
    settings = Settings(postgres={"dsn": dsn},
                        llm={"default": {"base_url": fake_llm.base_url, "model": "fake",
                                         "structured_output": "json_schema", "timeout_s": 30, "extra_body": {}}})
    config = runner.RunConfig(domains=["telecom"], num_trajectories=3, write_task_share=0.5, random_seed=5)
    (seed,) = runner.build_seed_events(config, "run-retry", settings)
    (synthesized,) = ToolSynth(settings).handle(seed)
    (ready,) = SchemaPredictor(settings).handle(synthesized.message)

    generator = TaskGenerator(settings)
    plan = generator.new_trajectory
    planned, fail_at = [], {2}

    def flaky_plan(prepared, db_schema, index, llm):
        if index in fail_at:  # the database or the model goes away while the third trajectory is planned
            fail_at.discard(index)
            raise TransientError("database connection lost")
        before = sum(fake_llm.by_fingerprint.values())
        out = plan(prepared, db_schema, index, llm)
        planned.append((index, sum(fake_llm.by_fingerprint.values()) - before))
        return out

    generator.new_trajectory = flaky_plan
    with pytest.raises(TransientError):
        generator.handle(ready.message)
    tids = [f"{seed.seed_id}-t{i:04d}" for i in range(3)]
    saved = {tid: generator.registry.planned(tid) for tid in tids}
    assert saved[tids[2]] is None and all(saved[t] is not None for t in tids[:2])
    assert [i for i, _ in planned] == [0, 1] and all(calls > 0 for _, calls in planned)

    requests_before = sum(fake_llm.by_fingerprint.values())
    outputs = generator.handle(ready.message)  # the bus retries the seed
    assert [i for i, _ in planned] == [0, 1, 2]  # only the third is planned now
    assert sum(fake_llm.by_fingerprint.values()) - requests_before == planned[-1][1]
    assert [o.key for o in outputs] == tids and all(o.topic == Topics.TURNS_USER for o in outputs)
    for out in outputs[:2]:  # the very events the first attempt planned, in the trace it started
        topic, state, carrier = saved[out.key]
        assert topic == Topics.TURNS_USER
        assert out.message == TrajectoryState.FromString(state)
        assert tracing.carrier_from_context(out.trace_context) == carrier

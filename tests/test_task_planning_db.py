"""Planned golden actions run: every kind of task, planned on a demo database with its verified toolset, executes
in a sandbox without error, and its read subtasks get the values they ask for."""
from __future__ import annotations

import json
import random

import pytest

from services.task_generator import logic
from services.task_generator.golden_state import GoldenState
from services.task_generator.planning import TrajectoryEdits, plan_task
from shared.contracts import EFFECT_KIND_OF_NAME, ActionMix, GenerationSettings, SeedEvent, SeedToolset
from shared.data.demo_databases import build_demo
from shared.env.domain_rows import DomainRows
from shared.env.sandbox import SandboxManager, domain_schema_name
from shared.toolgen.preparation import prepare_database_tools
from shared.toolgen.toolset import toolset_from_verifications

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("kind", ["read", "insert", "update", "delete"])
def test_every_kind_of_task_runs_and_reads_get_their_values(postgres_dsn, kind):
    manager = SandboxManager(postgres_dsn)
    manager.register_domain(build_demo("telecom"))
    db_schema = manager.domain_schema("telecom")
    tools = prepare_database_tools(manager.connection(), domain_schema_name("telecom"), db_schema,
                                   synthesizer="template", max_tools=200)
    seed = SeedEvent(seed_id="s", domain="telecom", settings=GenerationSettings(
        tasks_per_trajectory=3, action_mix=ActionMix(**{kind: 1.0})))
    seed.settings.difficulty_mix.easy = seed.settings.difficulty_mix.medium = seed.settings.difficulty_mix.hard = 1
    seed.database.domain_database = "telecom"
    prepared = SeedToolset(seed=seed, toolset=toolset_from_verifications(seed, tools.verifications, tools.kept))
    rows = DomainRows(manager, "telecom")
    golden = GoldenState(manager, janitor=None, statement_timeout_ms=3000)
    for trajectory in range(4):
        rng, edits, previous, planned = random.Random(trajectory), TrajectoryEdits(), None, []
        for _ in range(3):  # later tasks build on earlier ones, over the rows as those leave them
            previous = plan_task(prepared, db_schema, rows, rng, previous, edits)
            edits.record(db_schema, previous)
            planned.append(previous)
        assert {p.actions[-1].tool.effect.kind for p in planned} == {EFFECT_KIND_OF_NAME[kind]}
        actions = [a.golden() for p in planned for a in p.actions]
        run = golden.run_actions(f"plan-{kind}-{trajectory}", prepared, db_schema, actions)  # raises on failure
        offset = 0
        for p in planned:
            results = run.results[offset:offset + len(p.actions)]
            offset += len(p.actions)
            for action, result in zip(p.actions, results):
                values = logic.expected_values(action, result)
                assert (values is not None) == bool(action.asks_for)
                if kind == "read" and action is p.actions[-1]:
                    assert values, (action.tool.name, result)
                    assert all(v not in (None, [], [None]) for v in values.values())
            assert json.loads(p.tree.as_json())["record"]

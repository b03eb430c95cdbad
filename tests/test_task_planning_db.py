"""Planned golden actions run, on databases the planner was not written for: every kind of task, planned on the demo
databases and the Spider databases with their verified toolsets, executes in a sandbox; each key a call needs came
from the person or from an earlier call's real result; a later task that builds on an earlier one uses what that
one found; and no two trajectories of a seed are planned alike.

The Spider databases live outside the repository (../shared/data/spider, or $TURNFORGE_SPIDER_DIR); their cases
skip when the folder is missing."""
from __future__ import annotations

import json
import os
import random
from collections import Counter
from pathlib import Path

import pytest

from services.task_generator import logic
from services.task_generator.actions import key_like
from services.task_generator.golden_state import GoldenState
from services.task_generator.planning import Position, TrajectoryEdits, plan_signature, plan_task
from shared.contracts import EFFECT_KIND_OF_NAME, ActionMix, GenerationSettings, SeedEvent, SeedToolset
from shared.data.demo_databases import build_demo
from shared.data.import_db import import_database
from shared.env.domain_rows import DomainRows
from shared.env.json_values import json_value
from shared.env.sandbox import SandboxManager, domain_schema_name
from shared.ops.local_postgres import create_database
from shared.toolgen.preparation import prepare_database_tools
from shared.toolgen.toolset import toolset_from_verifications

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
SPIDER_DIR = Path(os.environ.get("TURNFORGE_SPIDER_DIR", REPO.parent / "shared" / "data" / "spider"))
SPIDER_DBS = ["car_1", "customers_card_transactions", "flight_2", "hospital_1", "insurance_policies", "pets_1",
              "small_bank_1", "world_1"]
TRAJECTORIES, TASKS = 12, 3


@pytest.fixture(scope="module")
def domains(postgres_server):
    """One database with the telecom and retail demos and whichever Spider databases are present."""
    dsn = create_database(postgres_server, "t_planning")
    manager = SandboxManager(dsn)
    for name in ("telecom", "retail"):
        manager.register_domain(build_demo(name))
    for name in SPIDER_DBS:
        path = SPIDER_DIR / name / f"{name}.sqlite"
        if path.is_file():
            import_database(dsn, str(path), name)
    return manager


def prepared_seed(manager: SandboxManager, domain: str, **mix) -> SeedToolset:
    if domain not in manager.domains():
        pytest.skip(f"Spider database {domain} not found under {SPIDER_DIR}")
    db_schema = manager.domain_schema(domain)
    tools = prepare_database_tools(manager.connection(), domain_schema_name(domain), db_schema,
                                   synthesizer="template", max_tools=200)
    seed = SeedEvent(seed_id="s", domain=domain, settings=GenerationSettings(
        tasks_per_trajectory=TASKS, num_trajectories=TRAJECTORIES, action_mix=ActionMix(**mix)))
    seed.settings.difficulty_mix.easy, seed.settings.difficulty_mix.medium, seed.settings.difficulty_mix.hard = 1, 1, 1
    seed.database.domain_database = domain
    return SeedToolset(seed=seed, toolset=toolset_from_verifications(seed, tools.verifications, tools.kept))


def plan_trajectories(manager: SandboxManager, prepared: SeedToolset) -> list[list]:
    domain = prepared.seed.domain
    db_schema, rows = manager.domain_schema(domain), DomainRows(manager, domain)
    out = []
    for index in range(TRAJECTORIES):
        rng, edits, planned = random.Random(f"{domain}/{index}"), TrajectoryEdits(), []
        for k in range(TASKS):
            task = plan_task(prepared, db_schema, rows, rng, edits, Position(index, k, TRAJECTORIES, TASKS, domain))
            edits.record(db_schema, task, k)
            planned.append(task)
        out.append(planned)
    return out


def _scalars(value) -> list:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in _scalars(v)]
    return [value]


@pytest.mark.parametrize("domain", ["telecom", "retail", *SPIDER_DBS])
def test_planned_keys_are_discovered_and_later_tasks_use_what_earlier_ones_found(domains, domain):
    prepared = prepared_seed(domains, domain, read=0.3, insert=0.1, update=0.5, delete=0.1)
    db_schema = domains.domain_schema(domain)
    golden = GoldenState(domains, janitor=None, statement_timeout_ms=3000)
    trajectories = plan_trajectories(domains, prepared)
    built_on = chained = given_keys = 0
    for index, planned in enumerate(trajectories):
        actions = [a for task in planned for a in task.actions]
        run = golden.run_actions(f"plan-{domain}-{index}", prepared, db_schema, [a.golden() for a in actions])
        returned: list[list] = []  # the values each earlier call really returned, in order
        task_of_call = [k for k, task in enumerate(planned) for _ in task.actions]
        for i, (action, result) in enumerate(zip(actions, run.results)):
            for param, value in action.arguments.items():
                table, _, column = action.tool.sql.parameter_columns.get(param, "").partition(".")
                if param in action.looked_up:
                    # Found, not given: an earlier call of the trajectory returned exactly this value.
                    sources = [k for k, values in enumerate(returned) if json_value(value) in values]
                    assert sources, (domain, action.tool.name, param, value)
                    chained += 1
                    task = planned[task_of_call[i]]
                    if task.builds_on >= 0 and task_of_call[sources[-1]] < task_of_call[i]:
                        built_on += 1
                elif key_like(db_schema, table, column):
                    given_keys += 1  # said by the person: only where no route reached the record
            returned.append(_scalars(json.loads(result or "null")))
        for action, result in zip(actions, run.results):  # every value a request asks for is in its call's result
            expected = logic.expected_values(action, result)
            assert (expected is not None) == bool(action.asks_for)
            assert expected is None or expected, (domain, action.tool.name, action.asks_for, result)
    # Most keys are found rather than given, and later tasks do use what earlier ones found.
    tasks = [t for p in trajectories for t in p]
    if domain in ("telecom", "retail"):
        assert chained >= len(tasks) and given_keys <= len(tasks) * 0.25, (domain, chained, given_keys, len(tasks))
        later = len(trajectories) * (TASKS - 1)
        assert sum(t.builds_on >= 0 for t in tasks) >= later / 3 and built_on > 0  # a third at least
        assert max(t.hops for t in tasks) >= 2


@pytest.mark.parametrize("domain", ["telecom", "car_1", "world_1"])
def test_no_two_trajectories_of_a_seed_are_planned_alike_and_roots_spread(domains, domain):
    prepared = prepared_seed(domains, domain, read=0.5, update=0.5)
    trajectories = plan_trajectories(domains, prepared)
    signatures = [plan_signature(p) for p in trajectories]
    assert len(set(signatures)) == len(signatures)
    tasks = Counter(t.signature() for p in trajectories for t in p)
    assert len(tasks) >= 0.85 * sum(tasks.values()), tasks.most_common(2)  # tasks themselves seldom repeat
    kinds = Counter(t.kind for p in trajectories for t in p)
    assert abs(kinds["update"] - kinds["read"]) <= len(trajectories) * TASKS * 0.2, kinds  # balanced as asked
    assert {t.kind for p in trajectories for t in p} <= {name for name in EFFECT_KIND_OF_NAME} | {"read"}


def test_a_trajectory_planned_like_another_of_its_seed_is_refused_by_the_registry(postgres_dsn):
    from shared.lifecycle.registry import TrajectoryRegistry

    registry = TrajectoryRegistry(postgres_dsn)
    assert registry.claim_plan("seed", "sig-a", "t1")
    assert registry.claim_plan("seed", "sig-a", "t1")  # the same trajectory planned again (a redelivery)
    assert not registry.claim_plan("seed", "sig-a", "t2")  # another trajectory with the same golden calls
    assert registry.claim_plan("other-seed", "sig-a", "t3")  # other seeds may repeat it
    registry.close()

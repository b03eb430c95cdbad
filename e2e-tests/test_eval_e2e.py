"""End to end: `turnforge eval`'s harness on frozen task sets, through the seven services, a real broker and
PostgreSQL, with the reference agents (oracle, noop) and the scripted fake model as the instruction-driven user.

The oracle replays the golden actions, so it must pass every task; noop calls no tool, so it must pass none of
tasks that change data or ask for values. One task set is imported from a tiny DySQL-format file (raw SQL through
execute_sql), the other exported from a generation run.
"""
from __future__ import annotations

import json
import sqlite3

import pytest

from harness import live_sandboxes, service_logs
from shared.contracts import AgentKind, Topics, TrajectoryState
from shared.evaluation import report
from shared.evaluation.dysql import import_dysql, write_task_set
from shared.evaluation.task_set import export_task_set, load_task_set
from shared.run import evaluation, runner, stats
from shared.runtime.toolsets import ToolsetStore
from test_pipeline_e2e import read_topic, wait_for

pytestmark = pytest.mark.e2e

ORACLE = evaluation.AgentUnderTest("oracle", AgentKind.AGENT_KIND_ORACLE)
NOOP = evaluation.AgentUnderTest("noop", AgentKind.AGENT_KIND_NOOP)

DYSQL_TASKS = [
    {"user_id": "1", "instruction": "I'm Ann Lee (PlayerID 1). Please change my team to Eagles.",
     "actions": [{"name": "sql", "kwargs": {"sql": "UPDATE Players SET Team = 'Eagles' WHERE PlayerID = 1;"}}]},
    {"user_id": "2", "instruction": "Add a new player Cy Doe (PlayerID 3) to team Hawks, then tell me how many "
                                    "players Hawks has.",
     "actions": [{"name": "sql", "kwargs": {"sql": "INSERT INTO Players (PlayerID, Name, Team) VALUES "
                                                   "(3, 'Cy Doe', 'Hawks');"}},
                 {"name": "sql", "kwargs": {"sql": "SELECT COUNT(*) AS n FROM Players WHERE Team = 'Hawks';"}}]},
    {"user_id": "3", "instruction": "Which team does Bo Ray play for?",
     "actions": [{"name": "sql", "kwargs": {"sql": "SELECT Team FROM Players WHERE Name = 'Bo Ray';"}}]},
]


@pytest.fixture(scope="module")
def dysql_task_set(services, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dysql")
    db = folder / "league.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE Players (PlayerID INTEGER PRIMARY KEY, Name TEXT NOT NULL, Team TEXT NOT NULL)")
        conn.executemany("INSERT INTO Players VALUES (?, ?, ?)", [(1, "Ann Lee", "Hawks"), (2, "Bo Ray", "Owls")])
    (folder / "tasks.json").write_text(json.dumps({"league": DYSQL_TASKS}))
    imported = import_dysql(services.postgres.dsn, folder / "tasks.json", "league", db, "dysql_league")
    assert not imported.skipped, imported.skipped
    write_task_set(imported.tasks, folder / "tasks.jsonl")
    return load_task_set(folder / "tasks.jsonl")


def test_oracle_passes_every_dysql_task_and_noop_none(services, dysql_task_set, tmp_path):
    result = evaluation.run_evaluation(services, dysql_task_set, [ORACLE, NOOP], k=2, timeout_s=240)
    assert result.missing == 0 and result.dead_lettered == 0, service_logs(services)

    oracle = report.agent_figures(result.trials["oracle"], len(dysql_task_set))
    assert oracle["executable"] == 3 and oracle["trials"] == 6
    assert oracle["pass_hat_k"] == {"1": 1.0, "2": 1.0}
    assert oracle["dsr"] == 1.0 and oracle["tca"] == 1.0 and oracle["failed_sql_calls"] == 0

    noop = report.agent_figures(result.trials["noop"], len(dysql_task_set))
    assert noop["pass_hat_k"] == {"1": 0.0, "2": 0.0}  # every task changes data or asks for a value
    assert noop["tca"] is None  # no call made: nothing to be right or wrong about

    # The agent was offered execute_sql alone, with the schema in its system prompt; each trial had its own sandbox.
    states = [TrajectoryState.FromString(r.value) for r in read_topic(services, Topics.TRAJECTORIES_COMPLETE)]
    trials = [s for s in states if s.seed_id.startswith(result.run_id)]
    toolsets = ToolsetStore(services.postgres.dsn)
    for s in trials:  # the topic carries each trial's toolset by reference
        toolsets.restore(s)
    assert len({s.trajectory_id for s in trials}) == 12
    assert all([t.name for t in s.toolset.tools] == ["execute_sql"] for s in trials)
    assert all('CREATE TABLE "players"' in s.messages[0].content for s in trials)
    assert all(s.is_task_complete for s in trials)  # the user said ###STOP###
    assert wait_for(lambda: live_sandboxes(services) == []), live_sandboxes(services)

    figures = report.figures(result.trials, len(dysql_task_set))
    written = report.write_report(figures, tmp_path, result.run_id, notes=[])
    assert {p.name for p in written} == {"report.md", "pass_hat_k.png", "accuracy_by_turn.png",
                                         "success_by_domain.png"}
    assert "| oracle | 3 | 3 | 6 | 1.000 | 1.000 |" in (tmp_path / "report.md").read_text()


def test_oracle_passes_tasks_exported_from_a_generation_run(services, tmp_path):
    config = runner.RunConfig(domains=["telecom"], num_trajectories=2, tasks_per_trajectory=2,
                              action_mix={"read": 0.5, "update": 0.5}, random_seed=5, timeout_s=180,
                              output_dir=str(tmp_path / "run"))
    generated = runner.run(services, config)
    assert generated.accepted >= 1, (tmp_path / "run" / "report.md").read_text() + service_logs(services)

    exported = export_task_set(stats.load_records([tmp_path / "run" / "dataset.jsonl"]), accepted_only=True)
    assert len(exported.tasks) == generated.accepted and not exported.skipped
    assert all(t["benchmark"] == "turnforge" and t["golden_hash"] for t in exported.tasks)

    result = evaluation.run_evaluation(services, exported.tasks, [ORACLE, NOOP], k=1, timeout_s=240)
    assert result.missing == 0, service_logs(services)
    assert report.agent_figures(result.trials["oracle"], len(exported.tasks))["pass_hat_k"] == {"1": 1.0}
    noop = report.agent_figures(result.trials["noop"], len(exported.tasks))
    assert noop["pass_hat_k"] == {"1": 0.0}

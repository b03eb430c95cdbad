"""End to end: `turnforge eval`'s harness on frozen task sets, through the seven services, a real broker and
PostgreSQL, with the reference agents (oracle, noop) and their scripted user, and with the fake model as an agent
under test, for which the fake model also plays the instruction-driven user.

The oracle replays the golden actions, so it must pass every task; noop calls no tool, so it must pass none of
tasks that change data or ask for values. One task set is imported from a tiny DySQL-format file (raw SQL through
execute_sql), one exported from a generation run, and one from DySQL-Bench's bowling sample.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from fake_llm import _schema_of, kind_of
from harness import live_sandboxes, service_logs
from shared.contracts import AgentKind, Topics, TrajectoryState
from shared.evaluation import report
from shared.evaluation.dysql import import_dysql, write_task_set
from shared.evaluation.task_set import export_task_set, load_task_set
from shared.run import evaluation, review, runner, stats
from shared.runtime.toolsets import ToolsetStore
from test_pipeline_e2e import read_topic, wait_for

pytestmark = pytest.mark.e2e

ORACLE = evaluation.AgentUnderTest("oracle", AgentKind.AGENT_KIND_ORACLE)
NOOP = evaluation.AgentUnderTest("noop", AgentKind.AGENT_KIND_NOOP)
DYSQL_DIR = Path(os.environ.get("TURNFORGE_DYSQL_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" /
                                "dysql"))


def user_turns_asked(fake_llm) -> int:
    return sum(kind_of(_schema_of(body)) == "user_turn" for body in fake_llm.requests)

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


def test_oracle_passes_every_dysql_task_and_noop_none(services, dysql_task_set, fake_llm, tmp_path):
    asked_before = user_turns_asked(fake_llm)
    result = evaluation.run_evaluation(services, dysql_task_set, [ORACLE, NOOP], k=2, timeout_s=240)
    assert result.missing == 0 and result.dead_lettered == 0, service_logs(services)
    assert user_turns_asked(fake_llm) == asked_before  # the scripted user played: no model was asked

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
    assert all(s.is_task_complete for s in trials)  # the user ended it
    instructions = {t["instruction"] for t in dysql_task_set}
    assert all(next(m.content for m in s.messages if m.role == "user") in instructions for s in trials)
    assert wait_for(lambda: live_sandboxes(services) == []), live_sandboxes(services)

    figures = report.figures(result.trials, len(dysql_task_set))
    written = report.write_report(figures, tmp_path, result.run_id, notes=[])
    assert {p.name for p in written} == {"report.md", "figures.json", "pass_hat_k.png", "accuracy_by_turn.png",
                                         "success_by_domain.png"}
    assert "| oracle | 3 | 3 | 6 | 1.000 | 1.000 |" in (tmp_path / "report.md").read_text()
    # The review page of the evaluation's folder: its figures, its three plots and every trial.
    evaluation.write_trials(result.verdicts, tmp_path)
    summaries, _, _ = review.page.page_data(review.read_inputs(tmp_path))
    outcomes = {(s["mode"], s["outcome"]) for s in summaries}
    assert len(summaries) == 12 and outcomes == {("oracle", "passed"), ("noop", "failed")}
    page = review.write_page(tmp_path).read_text()
    assert page.count("data:image/png;base64,") == 3 and '"pass_hat_k"' in page


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


def test_a_model_under_test_gets_the_model_as_its_user(services, dysql_task_set, fake_llm):
    """Only the reference agents have the scripted user: a real evaluation's user is the instruction-driven model."""
    requests_before = len(fake_llm.requests)
    agent = evaluation.AgentUnderTest("model", AgentKind.AGENT_KIND_MODEL)
    result = evaluation.run_evaluation(services, dysql_task_set[:1], [agent], k=1, timeout_s=240)
    assert result.missing == 0, service_logs(services)
    asked = [body for body in fake_llm.requests[requests_before:] if kind_of(_schema_of(body)) == "user_turn"]
    assert asked and dysql_task_set[0]["instruction"] in asked[0]["messages"][0]["content"]


@pytest.mark.skipif(not (DYSQL_DIR / "dysql_tasks_bowling.json").is_file(), reason="DySQL-Bench sample not present")
def test_the_reference_agents_check_44_bowling_tasks_in_minutes(services, fake_llm, tmp_path):
    """The harness check the issue timed at ten minutes without an outcome: 44 tasks (the bowling sample's executable
    ones, then again under other ids), oracle and noop, 88 trials. The bound is the evaluation's own timeout."""
    imported = import_dysql(services.postgres.dsn, DYSQL_DIR / "dysql_tasks_bowling.json", "bowling",
                            DYSQL_DIR / "BowlingLeague.sqlite", "dysql_bowling")
    tasks = [dict(t, task_id=f"{t['task_id']}-{n}") for n in range(3) for t in imported.tasks][:44]
    assert len(tasks) == 44, len(imported.tasks)
    asked_before, started = user_turns_asked(fake_llm), time.monotonic()
    result = evaluation.run_evaluation(services, tasks, [ORACLE, NOOP], k=1, timeout_s=600, progress_interval_s=10)
    wall_s = time.monotonic() - started
    assert result.missing == 0 and result.dead_lettered == 0, service_logs(services)
    assert report.agent_figures(result.trials["oracle"], len(tasks))["pass_hat_k"] == {"1": 1.0}
    assert report.agent_figures(result.trials["noop"], len(tasks))["pass_hat_k"]["1"] < 0.5
    assert user_turns_asked(fake_llm) == asked_before
    print(f"44 bowling tasks, oracle and noop: 88 trials in {wall_s:.0f} s")


def test_eval_without_a_stack_says_so_in_one_line(dysql_task_set, fake_llm, tmp_path):
    """No --embedded and nothing at the configured addresses: one line, exit 1, in seconds (5 s of waiting)."""
    from shared.runtime.ports import free_port

    write_task_set(dysql_task_set, tmp_path / "tasks.jsonl")
    config = tmp_path / "nothing.yaml"
    config.write_text(yaml.safe_dump({"kafka": {"bootstrap_servers": f"127.0.0.1:{free_port()}"},
                                      "postgres": {"dsn": f"postgresql://postgres@127.0.0.1:{free_port()}/x"},
                                      "llm": {"default": {"base_url": fake_llm.base_url, "model": "fake"}}}))
    done = subprocess.run([sys.executable, "-m", "shared.cli", "eval", "--tasks", str(tmp_path / "tasks.jsonl"),
                           "--agent", "oracle", "--config", str(config)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("turnforge: no Kafka broker answers at 127.0.0.1:") and "ECONNREFUSED" not in \
        done.stderr
    assert "PostgreSQL at 127.0.0.1:" in done.stderr and "model" not in done.stderr.split("(waited")[0]

"""The client side of an evaluation: frozen tasks in as seeds, trial outcomes out.

Every task of the set becomes one evaluation seed per agent under test, asking for k trajectories: each is one
trial in a sandbox of its own. The seeds go through the same services as generation (the tool-synth and
task-generator pass frozen tasks through), so an evaluation is at-least-once, traced and resumable like a run:
seed ids are the run id, the agent and the task id, and the services' ledgers skip what they already handled.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from shared.contracts import (AgentKind, Difficulty, EvaluationSettings, EvaluationTasks, GenerationSettings,
                              GoldenAction, SeedEvent, Subtask, Task, ToolExecution, Toolset, Verdict)
from shared.env.tool_spec import RAW_SQL_ARGUMENT, RAW_SQL_TOOL, raw_sql_tool
from shared.evaluation.measures import TrialOutcome
from shared.evaluation.task_set import DYSQL
from shared.evaluation.trials import failed_trial, trial_outcome
from shared.env.trajectory import trajectory_id_prefix
from shared.run.dataset import TRIALS_FILE, to_openai_record, tool_from_record
from shared.run.progress import PROGRESS_INTERVAL_S, ProgressReport
from shared.run.runner import ACCEPTED, REJECTED, RunTracker, new_run_id, outcome_consumer, produce_seeds
from shared.runtime.bus import ensure_topics
from shared.runtime.config import ROLES, Settings

DEFAULT_MAX_USER_TURNS = 30  # DySQL-Bench's cap on dialogue turns
AGENT_STEPS_PER_TURN = 10  # a DySQL task takes up to about six statements; the cap only stops a looping agent
REFERENCE_KINDS = {"oracle": AgentKind.AGENT_KIND_ORACLE, "noop": AgentKind.AGENT_KIND_NOOP}
DIFFICULTY_OF_LENGTH = {"short": Difficulty.DIFFICULTY_EASY, "long": Difficulty.DIFFICULTY_HARD}


@dataclass(frozen=True)
class AgentUnderTest:
    name: str
    kind: int  # AgentKind
    base_url: str = ""
    model: str = ""

    @property
    def scripted_user(self) -> bool:
        """The reference agents check the harness, not an agent: a scripted user serves them, in seconds a task."""
        return self.kind in REFERENCE_KINDS.values()


def parse_agent(spec: str) -> AgentUnderTest:
    """`oracle`, `noop`, `model` (the configured agent role), or `name=base_url[#model]` (another endpoint)."""
    if spec in REFERENCE_KINDS:
        return AgentUnderTest(spec, REFERENCE_KINDS[spec])
    if spec == "model":
        return AgentUnderTest(spec, AgentKind.AGENT_KIND_MODEL)
    name, sep, address = spec.partition("=")
    if not sep or not name or not address:
        raise ValueError(f"--agent {spec!r}: give oracle, noop, model or name=base_url[#model]")
    base_url, _, model = address.partition("#")
    return AgentUnderTest(name, AgentKind.AGENT_KIND_MODEL, base_url, model)


# -- frozen records as seeds -------------------------------------------------------------------------------------
def _dysql_task(record: dict) -> tuple[Task, Toolset]:
    """One subtask per golden statement: a read's values must be told, a write is held to the end state."""
    toolset = Toolset(domain=record["domain"], domain_database=record["domain"], tools=[raw_sql_tool()])
    task = Task(task_id=record["task_id"], description=record["instruction"], changes_data=record["changes_data"],
                difficulty=DIFFICULTY_OF_LENGTH.get(record.get("difficulty", ""), Difficulty.DIFFICULTY_UNSPECIFIED))
    for i, action in enumerate(record["golden_actions"]):
        task.golden_actions.append(GoldenAction(tool_name=RAW_SQL_TOOL,
                                                arguments_json=json.dumps({RAW_SQL_ARGUMENT: action["sql"]})))
        task.subtasks.append(_subtask(f"{action['kind']}: {action['source_sql']}", i, action))
    return task, toolset


def _turnforge_task(record: dict) -> tuple[Task, Toolset]:
    tools = [tool_from_record(spec, record["tool_bindings"]) for spec in record["tools"]]
    toolset = Toolset(domain=record["domain"], domain_database=record["domain"], tools=tools)
    task = Task(task_id=record["task_id"], description=record["instruction"], changes_data=record["changes_data"],
                difficulty=DIFFICULTY_OF_LENGTH.get(record.get("difficulty", ""), Difficulty.DIFFICULTY_UNSPECIFIED))
    for action in record["golden_actions"]:
        task.golden_actions.append(GoldenAction(
            tool_name=action["tool"], arguments_json=json.dumps(action["arguments"]),
            result_json=json.dumps(action["result"]) if action.get("result") is not None else ""))
    for sub in record["subtasks"]:
        action = record["golden_actions"][sub["golden_action"]] if sub["golden_action"] >= 0 else {}
        task.subtasks.append(_subtask(sub["description"], sub["golden_action"], action))
    return task, toolset


def _subtask(description: str, golden_action: int, action: dict) -> Subtask:
    subtask = Subtask(description=description, golden_action=golden_action)
    if "expected_values" in action:
        subtask.expected_values_json = json.dumps(action["expected_values"])
    return subtask


def evaluation_tasks(record: dict) -> EvaluationTasks:
    task, toolset = (_dysql_task if record["benchmark"] == DYSQL else _turnforge_task)(record)
    return EvaluationTasks(task_id=record["task_id"], toolset=toolset, tasks=[task],
                           instruction=record["instruction"], golden_state_hash=record["golden_hash"])


def seed_id_for(run_id: str, agent: AgentUnderTest, task_id: str) -> str:
    return f"{run_id}-{agent.name}-{task_id}"


def evaluation_seeds(records: list[dict], agents: list[AgentUnderTest], k: int, run_id: str, settings: Settings,
                     max_user_turns: int = DEFAULT_MAX_USER_TURNS) -> list[SeedEvent]:
    now = time.time()
    seeds = []
    for agent in agents:
        evaluation = EvaluationSettings(agent_kind=agent.kind, agent_name=agent.name, agent_base_url=agent.base_url,
                                        agent_model=agent.model, scripted_user=agent.scripted_user)
        for record in records:
            generation = GenerationSettings(
                tool_execution=ToolExecution.TOOL_EXECUTION_SQL, tasks_per_trajectory=1, num_trajectories=k,
                models={role: settings.llm.for_role(role).model for role in ROLES}, max_user_turns=max_user_turns,
                max_agent_steps_per_turn=AGENT_STEPS_PER_TURN, evaluation=evaluation)
            seeds.append(SeedEvent(seed_id=seed_id_for(run_id, agent, record["task_id"]), domain=record["domain"],
                                   settings=generation, created_at=now, evaluation=evaluation_tasks(record)))
    return seeds


# -- the run -----------------------------------------------------------------------------------------------------
@dataclass
class EvaluationResult:
    run_id: str
    trials: dict[str, list[TrialOutcome]]  # agent name -> its trials, every task k times
    dead_lettered: int
    missing: int
    wall_s: float
    timed_out: bool
    dead_letter_reasons: Counter[str] = field(default_factory=Counter)  # why trials were dead-lettered, counted
    verdicts: list[Verdict] = field(default_factory=list)  # every trial that reached a verdict


def write_trials(verdicts: list[Verdict], out: Path) -> Path:
    """trials.jsonl: each trial as a dataset record (metadata.verdict says whether it passed), for the review page.
    A separate name, so that no evaluation's dialogues are taken for training data."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / TRIALS_FILE
    path.write_text("".join(json.dumps(to_openai_record(v), ensure_ascii=False) + "\n" for v in verdicts))
    return path


def collect_trials(tracker: RunTracker, seeds: list[SeedEvent], k: int) -> dict[str, list[TrialOutcome]]:
    """Per agent, the trials of each task that reached at least one verdict (an executable task), k of them: a slot
    without a verdict (dead-lettered, or missing at the timeout) is a failed trial. A task none of whose trials
    reached a verdict is left out: nothing about the agent was learnt from it."""
    by_seed: dict[str, list[TrialOutcome]] = {s.seed_id: [] for s in seeds}
    for outcome in (ACCEPTED, REJECTED):
        for resolution in tracker.of(outcome):
            seed = next(s for s in seeds if resolution.trajectory_id.startswith(trajectory_id_prefix(s.seed_id)))
            by_seed[seed.seed_id].append(trial_outcome(resolution.verdict, seed.evaluation.task_id))
    trials: dict[str, list[TrialOutcome]] = {s.settings.evaluation.agent_name: [] for s in seeds}
    for seed in seeds:
        found = by_seed[seed.seed_id]
        if found:
            agent = seed.settings.evaluation.agent_name
            trials[agent] += found + [failed_trial(seed.evaluation.task_id, seed.domain, agent)] * (k - len(found))
    return trials


def trials_so_far(tracker: RunTracker, seeds: list[SeedEvent]) -> str:
    """Per agent: trials ended out of its trials, and how many passed (accepted), for the progress lines."""
    parts = []
    for agent in dict.fromkeys(s.settings.evaluation.agent_name for s in seeds):
        counts = [tracker.counts(s.seed_id) for s in seeds if s.settings.evaluation.agent_name == agent]
        total = sum(c["seeded"] for c in counts)
        parts.append(f"{agent} {total - sum(c['missing'] for c in counts)}/{total}, "
                     f"passed {sum(c[ACCEPTED] for c in counts)}")
    return " · ".join(parts)


def run_evaluation(settings: Settings, records: list[dict], agents: list[AgentUnderTest], k: int, *,
                   run_id: str | None = None, timeout_s: float = 3600, max_user_turns: int = DEFAULT_MAX_USER_TURNS,
                   console: Console | None = None,
                   progress_interval_s: float = PROGRESS_INTERVAL_S) -> EvaluationResult:
    """Seed every (agent, task) k times and wait for every trial's verdict (or the timeout).

    Resume: the same run id gives the same seed ids, so the services skip what they handled and the watcher reads
    every verdict from the start of the terminal topics."""
    run_id = run_id or new_run_id().replace("run-", "eval-")
    console = console or Console(stderr=True)
    started = time.time()
    seeds = evaluation_seeds(records, agents, k, run_id, settings, max_user_turns)
    tracker = RunTracker({s.seed_id: k for s in seeds})
    ensure_topics(settings)
    topics, consumer = outcome_consumer(settings, f"turnforge.eval.{run_id}", "turnforge-eval")
    deadline = time.monotonic() + timeout_s
    try:
        produce_seeds(settings, seeds)
        scripted = [a.name for a in agents if a.scripted_user]
        console.print(f"evaluation {run_id}: {len(records)} task(s) x {len(agents)} agent(s) x {k} trial(s)"
                      + (f"; the user is scripted for {', '.join(scripted)}" if scripted else ""), soft_wrap=True)
        with ProgressReport(f"evaluation {run_id}", len(seeds) * k, console=console,
                            interval_s=progress_interval_s) as progress:
            while not tracker.done and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=500).values():
                    for record in batch:
                        tracker.on_record(topics[record.topic], record.value, time.time())
                progress.update(len(seeds) * k - tracker.counts()["missing"], trials_so_far(tracker, seeds))
    finally:
        consumer.close(autocommit=False)
    counts = tracker.counts()
    return EvaluationResult(run_id=run_id, trials=collect_trials(tracker, seeds, k),
                            dead_lettered=counts["dead-lettered"], missing=counts["missing"],
                            wall_s=time.time() - started, timed_out=not tracker.done,
                            dead_letter_reasons=Counter(f"{d.service}: {d.reason}" for d in tracker.dead_letters),
                            verdicts=[r.verdict for outcome in (ACCEPTED, REJECTED) for r in tracker.of(outcome)])

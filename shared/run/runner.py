"""The client side of a generation run: produce seed events, then watch the terminal topics until done.

This is not an orchestrator: the services do all the work. The runner only knows how many trajectories it asked
for, collects verdicts and dead letters that belong to its seeds, and writes the dataset and a report.
"""
from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from google.protobuf.json_format import ParseDict
from google.protobuf.message import DecodeError
from kafka import KafkaConsumer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rich.console import Console

from shared.runtime.config import ROLES, Settings, get_settings
from shared.run import review, stats
from shared.run.progress import PROGRESS_INTERVAL_S, ProgressReport
from shared.run.dataset import (DATASET_FILE, DEAD_LETTERS_FILE, REJECTED_FILE, check_record, database_provenance,
                                to_openai_record)
from shared.runtime.bus import ensure_topics, make_producer
from shared.data.seed_tools import load_seed_tools
from shared.evaluation.alignment import read_statements
from shared.contracts import flow
from shared.contracts import (ActionMix, AlignmentTarget, DatabaseRef, DeadLetter, DifficultyMix, GenerationSettings,
                              PipelineMode, SeedEvent, ToolExecution, ToolSynthesizer, TaskWording, Topics, UserPersona,
                              Verdict, StartState, ChatMessage)

ACCEPTED, REJECTED, DEAD_LETTERED = "accepted", "rejected", "dead-lettered"


# -- configuration -----------------------------------------------------------------------------------------------
class DifficultyMixConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    easy: float = 0.4
    medium: float = 0.4
    hard: float = 0.2


class ActionMixConfig(BaseModel):
    """Weights of the kinds of tasks; a kind left out gets none."""

    model_config = ConfigDict(extra="forbid")
    read: float = Field(0, ge=0)
    insert: float = Field(0, ge=0)
    update: float = Field(0, ge=0)
    delete: float = Field(0, ge=0)


DYSQL_ACTION_MIX = ActionMixConfig(read=0.3, insert=0.1, update=0.5, delete=0.1)  # DySQL-Bench's tasks


class RunConfig(BaseModel):
    """The `generation:` section of the config file: what to generate (settings say where)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key must not silently fall back to a default
    domains: list[str] = Field(default_factory=lambda: ["telecom"], min_length=1)
    num_trajectories: int = Field(3, ge=1)  # per domain
    tasks_per_trajectory: int = Field(1, ge=1)
    pipeline_mode: Literal["user_oriented", "task_oriented"] = "user_oriented"
    tool_execution: Literal["sql", "simulated"] = "sql"
    max_user_turns: int = Field(6, ge=1)
    max_agent_steps_per_turn: int = Field(3, ge=1)
    # The kinds of tasks: action_mix weights, or the share of writes alone (split as DySQL-Bench splits them);
    # neither: DySQL-Bench's mix. Not both.
    action_mix: ActionMixConfig | None = None
    write_task_share: float | None = Field(None, ge=0, le=1)
    user_persona: Literal["casual", "expert"] = "casual"  # expert: states a whole task at once (ablation)
    tools_per_trajectory: int = Field(8, ge=0)
    # Continue from a state: {"prefix": [OpenAI chat messages], "setup_actions": [{"tool": name, "arguments": {...}}]}
    start_state: dict | None = None
    # Seed tools instead of a database (simulated execution): a JSON/JSONL file of OpenAI function specs or
    # Seal-Tools entries, optionally filtered by Seal-Tools field prefix and capped.
    seed_tools: str | None = None
    seed_tools_field: str = ""
    seed_tools_limit: int = Field(10, ge=1)  # the tasks' tools plus distractors; 0 offers the whole toolset
    # Seed tools only: ask questions, derive a tool spec per question and up to ten complementary tools first.
    expand_seed_tools: bool = False
    # Databases only: who proposes SQL tools. "both": the model's verified proposals over the schema templates.
    tool_synthesizer: Literal["template", "llm", "both"] = "template"
    # Databases only: who words each task. "model": the model, held to its golden actions by a mechanical check and
    # two judges, else worded from the actions; "rules": from the actions alone, no model call.
    task_wording: Literal["model", "rules"] = "model"
    # Who judges a trajectory that passed every deterministic check: "model" (the judge role, the paper's rubric
    # policy) or "none" (the checks decide alone).
    judge: Literal["model", "none"] = "model"
    # Databases only: a target SQL workload (a file, one statement a line) to select the toolset for (seed 003):
    # tool-synth keeps the verified tools whose SQL aligns best with it. The statements travel in the seed.
    align_to: str | None = None
    align_to_dialect: str = "sqlite"  # the target's SQL dialect, as sqlglot names it (Spider and DySQL: sqlite)
    difficulty_mix: DifficultyMixConfig = Field(default_factory=DifficultyMixConfig)
    random_seed: int = 7
    timeout_s: float = Field(1800, gt=0)
    # Per trajectory, from its start to its verdict; 0 keeps the services' default (service.trajectory_deadline_s).
    trajectory_deadline_s: float = Field(0, ge=0)
    # Keep seeding new rounds (next random seed) until this many are accepted, for at most max_rounds rounds.
    min_accepted: int = Field(0, ge=0)
    max_rounds: int = Field(1, ge=1)
    output_dir: str = "out"

    @model_validator(mode="after")
    def _one_task_mix(self) -> "RunConfig":
        if self.action_mix is not None and self.write_task_share is not None:
            raise ValueError("give action_mix or write_task_share, not both")
        if self.align_to and self.seed_tools:
            raise ValueError("align_to selects SQL tools of a database; seed tools have no SQL to align")
        return self

    @property
    def expected_trajectories(self) -> int:
        return self.num_trajectories * len(self.domains)


def load_run_config(path: str | Path | None) -> RunConfig:
    if not path:
        return RunConfig()
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    return RunConfig(**(data.get("generation") or {}))


def new_run_id() -> str:
    return f"run-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


# -- seeds -------------------------------------------------------------------------------------------------------
def generation_settings(run_config: RunConfig, settings: Settings) -> GenerationSettings:
    mix = run_config.difficulty_mix
    return GenerationSettings(
        pipeline_mode=PipelineMode.Value(f"PIPELINE_MODE_{run_config.pipeline_mode.upper()}"),
        tool_execution=ToolExecution.Value(f"TOOL_EXECUTION_{run_config.tool_execution.upper()}"),
        tasks_per_trajectory=run_config.tasks_per_trajectory,
        difficulty_mix=DifficultyMix(easy=mix.easy, medium=mix.medium, hard=mix.hard),
        num_trajectories=run_config.num_trajectories,
        models={role: settings.llm.for_role(role).model for role in ROLES},
        max_user_turns=run_config.max_user_turns,
        max_agent_steps_per_turn=run_config.max_agent_steps_per_turn,
        write_task_share=run_config.write_task_share or 0.0,
        action_mix=task_mix(run_config),
        tools_per_trajectory=run_config.tools_per_trajectory,
        user_persona=UserPersona.USER_PERSONA_EXPERT if run_config.user_persona == "expert"
        else UserPersona.USER_PERSONA_UNSPECIFIED,
        random_seed=run_config.random_seed,
        trajectory_deadline_s=run_config.trajectory_deadline_s,
        tool_synthesizer=ToolSynthesizer.Value(f"TOOL_SYNTHESIZER_{run_config.tool_synthesizer.upper()}"),
        expand_seed_tools=run_config.expand_seed_tools,
        task_wording=TaskWording.Value(f"TASK_WORDING_{run_config.task_wording.upper()}"),
        checks_only=run_config.judge == "none",
        align_to=alignment_target(run_config),
    )


def alignment_target(run_config: RunConfig) -> AlignmentTarget | None:
    """The target workload read here and embedded by value: the services run elsewhere and cannot read the file."""
    if not run_config.align_to:
        return None
    statements = read_statements(run_config.align_to)
    if not statements:
        raise ValueError(f"align_to: {run_config.align_to} holds no statement")
    return AlignmentTarget(statements=statements, dialect=run_config.align_to_dialect,
                           source=Path(run_config.align_to).name)


def task_mix(run_config: RunConfig) -> ActionMix:
    """The configured weights; empty when only write_task_share is given (the task generator splits it)."""
    if run_config.write_task_share is not None:
        return ActionMix()
    return ActionMix(**(run_config.action_mix or DYSQL_ACTION_MIX).model_dump())


def build_seed_events(run_config: RunConfig, run_id: str, settings: Settings | None = None) -> list[SeedEvent]:
    """One seed event per domain; each yields run_config.num_trajectories trajectories."""
    gen = generation_settings(run_config, settings or get_settings())
    now = time.time()
    start = start_state(run_config.start_state or {})
    seeds = []
    for domain in run_config.domains:
        seed = SeedEvent(seed_id=f"{run_id}-{domain}", domain=domain, settings=gen, created_at=now, start_state=start)
        if run_config.seed_tools:
            seed.seed_tools.tools.extend(load_seed_tools(run_config.seed_tools, field=run_config.seed_tools_field,
                                                         limit=run_config.seed_tools_limit))
            seed.settings.tool_execution = ToolExecution.TOOL_EXECUTION_SIMULATED
        else:
            seed.database.CopyFrom(DatabaseRef(domain_database=domain))
        seeds.append(seed)
    return seeds


def start_state(spec: dict) -> StartState:
    """The StartState of a run config's `start_state` (OpenAI-format prefix, setup tool calls)."""
    state = StartState()
    for m in spec.get("prefix", []):
        state.prefix.append(ParseDict(m, ChatMessage(), ignore_unknown_fields=False))
    for action in spec.get("setup_actions", []):
        state.setup_actions.add(tool_name=action["tool"], arguments_json=json.dumps(action.get("arguments", {})))
    return state


def outcome_consumer(settings: Settings, group_id: str, client_id: str) -> tuple[dict[str, str], KafkaConsumer]:
    """A consumer of the topics a run reads its outcomes from, with the logical name of each prefixed topic.

    A fresh group reading from the earliest offset sees every record of its run, whenever it was produced."""
    topics = {settings.topic(t): t for t in flow.consumed_by(flow.RUN)}
    consumer = KafkaConsumer(
        *topics, bootstrap_servers=settings.kafka.bootstrap_servers, group_id=group_id, client_id=client_id,
        auto_offset_reset="earliest", enable_auto_commit=False,
        isolation_level="read_committed" if settings.kafka.transactions else "read_uncommitted",
        session_timeout_ms=settings.kafka.session_timeout_ms,
        heartbeat_interval_ms=settings.kafka.heartbeat_interval_ms,
    )
    return topics, consumer


def produce_seeds(settings: Settings, seeds: list[SeedEvent]) -> None:
    ensure_topics(settings)
    producer = make_producer(settings)
    try:
        futures = [producer.send(settings.topic(Topics.SEEDS), key=s.seed_id.encode(), value=s.SerializeToString())
                   for s in seeds]
        for f in futures:
            f.get(timeout=60)  # a seed the broker did not take must fail the run now, not time out later
    finally:
        producer.close(10)


# -- watching ----------------------------------------------------------------------------------------------------
@dataclass
class Resolution:
    trajectory_id: str
    seed_id: str
    outcome: str  # ACCEPTED, REJECTED or DEAD_LETTERED
    arrived_at: float
    verdict: Verdict | None = None
    dead_letter: DeadLetter | None = None


class RunTracker:
    """Which of a run's trajectories are resolved. Pure: fed decoded records, it never touches Kafka.

    Delivery is at-least-once, so every record may arrive twice: a trajectory is counted once. A verdict is
    authoritative and replaces an earlier dead letter of the same trajectory (e.g. one about a redelivered
    duplicate); a dead letter never replaces a verdict. A dead letter with a seed id but no trajectory id means
    the seed failed as a whole: it closes the seed's remaining slots (a verdict still in flight takes one back).
    """

    def __init__(self, expected: dict[str, int]):
        self.expected = dict(expected)  # seed_id -> trajectories asked for
        self.resolved: dict[str, Resolution] = {}
        self.failed_seeds: dict[str, int] = {}  # seed_id -> slots closed by a seed-level dead letter
        self.dead_letters: list[DeadLetter] = []
        self.malformed = 0
        self._seen_letters: set[tuple] = set()

    # -- feeding -----------------------------------------------------------------------------------------------
    def on_record(self, topic: str, value: bytes | None, arrived_at: float | None = None) -> bool:
        """A raw record from ACCEPTED, REJECTED or DEAD_LETTER (logical names); True if it changed anything."""
        try:
            if topic == Topics.DEAD_LETTER:
                return self.on_dead_letter(DeadLetter.FromString(value or b""), arrived_at)
            verdict = Verdict.FromString(value or b"")
        except (DecodeError, ValueError, TypeError):  # anything on the topic that is not the contract
            self.malformed += 1
            return False
        if verdict.accepted != (topic == Topics.ACCEPTED):  # an accepted verdict on the rejected topic, or vice versa
            self.malformed += 1
            return False
        return self.on_verdict(verdict, arrived_at)

    def on_verdict(self, verdict: Verdict, arrived_at: float | None = None) -> bool:
        tid = verdict.trajectory_id or verdict.trajectory.trajectory_id
        seed_id = verdict.trajectory.seed_id
        if not tid or not seed_id:
            self.malformed += 1
            return False
        if seed_id not in self.expected:
            return False  # another run's
        previous = self.resolved.get(tid)
        if previous is not None and previous.outcome != DEAD_LETTERED:
            return False
        if previous is None and seed_id in self.failed_seeds:
            # A trajectory that was already under way when its seed failed: it takes back one closed slot.
            if self.failed_seeds[seed_id] == 0:
                return False
            self.failed_seeds[seed_id] -= 1
        self.resolved[tid] = Resolution(tid, seed_id, ACCEPTED if verdict.accepted else REJECTED,
                                        arrived_at or time.time(), verdict=verdict)
        return True

    def on_dead_letter(self, letter: DeadLetter, arrived_at: float | None = None) -> bool:
        if letter.seed_id not in self.expected:
            return False
        key = (letter.service, letter.source_topic, letter.partition, letter.offset, letter.trajectory_id)
        if key in self._seen_letters:
            return False
        self._seen_letters.add(key)
        self.dead_letters.append(letter)
        if not letter.trajectory_id:
            if letter.seed_id in self.failed_seeds:
                return False
            open_slots = self.expected[letter.seed_id] - self._resolved_of(letter.seed_id)
            self.failed_seeds[letter.seed_id] = max(open_slots, 0)
            return True
        if letter.trajectory_id in self.resolved or letter.seed_id in self.failed_seeds:
            return False
        self.resolved[letter.trajectory_id] = Resolution(letter.trajectory_id, letter.seed_id, DEAD_LETTERED,
                                                         arrived_at or time.time(), dead_letter=letter)
        return True

    # -- reading -----------------------------------------------------------------------------------------------
    def _resolved_of(self, seed_id: str) -> int:
        return sum(1 for r in self.resolved.values() if r.seed_id == seed_id)

    @property
    def done(self) -> bool:
        return all(seed in self.failed_seeds or self._resolved_of(seed) >= n for seed, n in self.expected.items())

    def counts(self, seed_id: str | None = None) -> dict[str, int]:
        """Trajectories seeded and how they ended (missing: not yet), of the run or of one of its seeds."""
        def of_seed(seed: str) -> bool:
            return seed_id is None or seed == seed_id
        by_outcome = Counter(r.outcome for r in self.resolved.values() if of_seed(r.seed_id))
        dead = by_outcome[DEAD_LETTERED] + sum(n for seed, n in self.failed_seeds.items() if of_seed(seed))
        seeded = sum(n for seed, n in self.expected.items() if of_seed(seed))
        resolved = by_outcome[ACCEPTED] + by_outcome[REJECTED] + dead
        return {"seeded": seeded, ACCEPTED: by_outcome[ACCEPTED], REJECTED: by_outcome[REJECTED],
                DEAD_LETTERED: dead, "missing": max(seeded - resolved, 0), "malformed": self.malformed}

    def of(self, outcome: str) -> list[Resolution]:
        return sorted((r for r in self.resolved.values() if r.outcome == outcome), key=lambda r: r.trajectory_id)


# -- the run -----------------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    run_id: str
    seeded: int
    accepted: int
    rejected: int
    dead_lettered: int
    missing: int
    malformed: int
    wall_s: float
    timed_out: bool
    output_dir: Path
    dataset_path: Path
    rejected_path: Path
    dead_letters_path: Path
    report_path: Path
    page_path: Path  # the review page of all of it

    @property
    def complete(self) -> bool:
        return self.missing == 0


def run(settings: Settings, run_config: RunConfig, *, run_id: str | None = None, console=None,
        resume: bool = False, progress_interval_s: float = PROGRESS_INTERVAL_S) -> RunResult:
    """Seed one run and wait for all its trajectories (or the timeout); writes dataset, rejections and report.

    Resume (same run id and config, e.g. after the stack was stopped): the seeds get the same ids, so the services'
    processed-ledger skips the ones already handled, and the watcher reads every outcome from the start of the
    terminal topics; only unfinished trajectories do more work."""
    run_id = run_id or new_run_id()
    console = console or Console()
    started = time.time()
    seeds = build_seed_events(run_config, run_id, settings)
    tracker = RunTracker({s.seed_id: run_config.num_trajectories for s in seeds})
    ensure_topics(settings)

    topics, consumer = outcome_consumer(settings, f"turnforge.runner.{run_id}", "turnforge-runner")
    timed_out = False
    try:
        produce_seeds(settings, seeds)
        console.print(f"{'resuming ' if resume else ''}run [bold]{run_id}[/]: {len(seeds)} seed(s), "
                      f"{tracker.counts()['seeded']} trajectories")
        with ProgressReport(f"run {run_id}", tracker.counts()["seeded"], interval_s=progress_interval_s) as progress:
            deadline = time.monotonic() + run_config.timeout_s
            round_no = 0
            while True:
                while not tracker.done and not timed_out:
                    timed_out = time.monotonic() > deadline
                    for records in consumer.poll(timeout_ms=500).values():
                        for record in records:
                            tracker.on_record(topics[record.topic], record.value, time.time())
                    c = tracker.counts()
                    progress.update(c["seeded"] - c["missing"], _progress_text(tracker), total=c["seeded"])
                round_no += 1
                if timed_out or tracker.counts()[ACCEPTED] >= run_config.min_accepted or round_no >= run_config.max_rounds:
                    break
                # Too few accepted: another round of fresh tasks (the next random seed), watched by the same consumer.
                more = build_seed_events(run_config.model_copy(update={"random_seed": run_config.random_seed + round_no}),
                                         f"{run_id}-r{round_no}", settings)
                tracker.expected.update({s.seed_id: run_config.num_trajectories for s in more})
                produce_seeds(settings, more)
                console.print(f"round {round_no + 1}: {tracker.counts()[ACCEPTED]} accepted so far, "
                              f"{len(more) * run_config.num_trajectories} more trajectories")
    finally:
        consumer.close(autocommit=False)

    wall_s = time.time() - started
    out = Path(run_config.output_dir)
    databases = {} if run_config.seed_tools else database_provenance(settings.postgres.dsn, run_config.domains)
    paths = write_outputs(tracker, run_config, run_id, wall_s, out, timed_out=timed_out, databases=databases)
    c = tracker.counts()
    return RunResult(run_id=run_id, seeded=c["seeded"], accepted=c[ACCEPTED], rejected=c[REJECTED],
                     dead_lettered=c[DEAD_LETTERED], missing=c["missing"], malformed=c["malformed"], wall_s=wall_s,
                     timed_out=timed_out, output_dir=out, **paths)


def _progress_text(tracker: RunTracker) -> str:
    c = tracker.counts()
    return (f"[green]accepted {c[ACCEPTED]}[/] · [yellow]rejected {c[REJECTED]}[/] · "
            f"[red]dead-lettered {c[DEAD_LETTERED]}[/]")


# -- outputs -----------------------------------------------------------------------------------------------------
def write_outputs(tracker: RunTracker, run_config: RunConfig, run_id: str, wall_s: float, out: Path, *,
                  timed_out: bool = False, databases: dict[str, dict] | None = None) -> dict[str, Path]:
    """`databases`: each domain database's provenance, copied into the records for the dataset card."""
    paths, records = write_records(tracker, out, databases)
    paths["report_path"] = out / "report.md"
    report = render_report(tracker, run_config, run_id, wall_s, timed_out=timed_out)
    if records:
        report += ("\n## Dataset statistics (accepted)\n\n```\n" + stats.render(stats.dataset_stats(records)) + "\n\n"
                   + stats.render_diversity(stats.diversity(records)) + "\n```\n")
    paths["report_path"].write_text(report)
    paths["page_path"] = review.write_page(out)
    return paths


def write_records(tracker: RunTracker, out: Path, databases: dict[str, dict] | None = None
                  ) -> tuple[dict[str, Path], list[dict[str, Any]]]:
    """dataset.jsonl (the accepted trajectories' records), rejected.jsonl (each rejection with its reasons) and
    dead_letters.jsonl (the dead letters of the run's seeds)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"dataset_path": out / DATASET_FILE, "rejected_path": out / REJECTED_FILE,
             "dead_letters_path": out / DEAD_LETTERS_FILE}
    records = [to_openai_record(r.verdict, databases) for r in tracker.of(ACCEPTED)]
    rejections = [rejection_record(r.verdict, databases) for r in tracker.of(REJECTED)]
    letters = [dead_letter_record(d) for d in tracker.dead_letters]
    for path, lines in ((paths["dataset_path"], records), (paths["rejected_path"], rejections),
                        (paths["dead_letters_path"], letters)):
        with open(path, "w") as f:
            f.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    return paths, records


def rejection_record(verdict: Verdict, databases: dict[str, dict] | None = None) -> dict[str, Any]:
    record = to_openai_record(verdict, databases)
    return {
        "trajectory_id": verdict.trajectory_id or verdict.trajectory.trajectory_id,
        "seed_id": verdict.trajectory.seed_id,
        "trace_id": verdict.trajectory.trace_id,  # `turnforge trace` finds the trace from here
        "reasons": list(verdict.reasons),
        "checks": [check_record(c) for c in verdict.checks],
        "judge_judgment": verdict.judge_judgment,
        "judge_reasoning": verdict.judge_reasoning,
        # The whole conversation, so a rejected trajectory can be read without its trace, and what it was asked to
        # do and could use, as a dataset record holds them (tasks with their golden actions, tools, verdict).
        "messages": record["messages"],
        "tools": record["tools"],
        "metadata": record["metadata"],
    }


def dead_letter_record(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter without its payload (the dead-letter topic keeps that)."""
    return {"service": letter.service, "seed_id": letter.seed_id, "trajectory_id": letter.trajectory_id,
            "reason": letter.reason, "error_type": letter.error_type, "attempts": letter.attempts,
            "source_topic": letter.source_topic, "partition": letter.partition, "offset": letter.offset,
            "failed_at": letter.failed_at}


def trajectory_stats(r: Resolution) -> dict[str, Any]:
    """One report row; dead-lettered trajectories have no state to measure."""
    if r.verdict is None:
        return {"turns": "-", "user_turns": "-", "tool_calls": "-", "tasks": "-", "tokens": "-", "wall_s": "-"}
    state = r.verdict.trajectory
    dialogue = [m for m in state.messages if m.role != "system"]
    return {
        "turns": len(dialogue),
        "user_turns": sum(1 for m in dialogue if m.role == "user"),
        "tool_calls": sum(len(m.tool_calls) for m in dialogue),
        "tasks": len(state.tasks),
        "tokens": state.counters.prompt_tokens + state.counters.completion_tokens,
        "wall_s": f"{r.arrived_at - state.started_at:.1f}" if state.started_at else "-",
    }


def _cell(text: Any, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


def _mix_words(cfg: RunConfig) -> str:
    if cfg.write_task_share is not None:
        return f"write-task share {cfg.write_task_share}"
    mix = cfg.action_mix or DYSQL_ACTION_MIX
    return "task mix: " + ", ".join(f"{kind} {weight}" for kind, weight in mix.model_dump().items())


def render_report(tracker: RunTracker, run_config: RunConfig, run_id: str, wall_s: float, *,
                  timed_out: bool = False) -> str:
    c = tracker.counts()
    cfg = run_config
    lines = [
        f"# TurnForge run {run_id}", "",
        f"- domains: {', '.join(cfg.domains)}; {cfg.num_trajectories} trajectories per domain, "
        f"{cfg.tasks_per_trajectory} task(s) each",
        f"- pipeline: {cfg.pipeline_mode}; tools: {cfg.tool_execution}; max user turns {cfg.max_user_turns}, "
        f"max agent steps per turn {cfg.max_agent_steps_per_turn}; {_mix_words(cfg)}",
        f"- difficulty mix: easy {cfg.difficulty_mix.easy}, medium {cfg.difficulty_mix.medium}, "
        f"hard {cfg.difficulty_mix.hard}; random seed {cfg.random_seed}",
        f"- wall time: {wall_s:.1f} s" + (f" (timed out after {cfg.timeout_s:.0f} s)" if timed_out else ""), "",
        "## Totals", "",
        "| seeded | accepted | rejected | dead-lettered | missing |",
        "|---:|---:|---:|---:|---:|",
        f"| {c['seeded']} | {c[ACCEPTED]} | {c[REJECTED]} | {c[DEAD_LETTERED]} | {c['missing']} |", "",
    ]
    if c["malformed"]:
        lines += [f"{c['malformed']} malformed record(s) on the terminal topics were skipped.", ""]

    lines += ["## Trajectories", "",
              "| trajectory | verdict | turns | user turns | tool calls | tasks | tokens | wall time (s) |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in sorted(tracker.resolved.values(), key=lambda r: r.trajectory_id):
        s = trajectory_stats(r)
        lines.append(f"| {_cell(r.trajectory_id)} | {r.outcome} | {s['turns']} | {s['user_turns']} | "
                     f"{s['tool_calls']} | {s['tasks']} | {s['tokens']} | {s['wall_s']} |")
    for seed, slots in sorted(tracker.failed_seeds.items()):
        if slots:
            lines.append(f"| {_cell(seed)} ({slots} not started) | {DEAD_LETTERED} | - | - | - | - | - | - |")
    lines.append("")

    # Counted per check (the text before the colon), each with one trajectory's own words as an example.
    reasons: Counter[str] = Counter()
    example: dict[str, str] = {}
    for r in tracker.of(REJECTED):
        failed = [f"{ch.name}: check failed" for ch in r.verdict.checks if not ch.passed]
        for reason in sorted(set(r.verdict.reasons) or set(failed) or {"(no reason given)"}):
            check = reason.split(":", 1)[0]
            reasons[check] += 1
            example.setdefault(check, reason)
    lines += ["## Rejection reasons", ""]
    if reasons:
        lines += ["| check | trajectories | example |", "|---|---:|---|"]
        lines += [f"| {_cell(check)} | {n} | {_cell(example[check])} |" for check, n in reasons.most_common()]
    else:
        lines.append("None.")
    lines.append("")

    # What generation asked for again (user turns, agent replies, task wordings), per role and reason.
    retries: Counter[str] = Counter()
    for r in tracker.resolved.values():
        if r.verdict is not None:
            retries.update(dict(r.verdict.trajectory.retries))
    lines += ["## Steps asked again", ""]
    if retries:
        lines += ["| role/reason | times |", "|---|---:|"]
        lines += [f"| {_cell(key)} | {n} |" for key, n in sorted(retries.items())]
    else:
        lines.append("None.")
    lines.append("")

    lines += ["## Dead letters", ""]
    if tracker.dead_letters:
        lines += ["| service | seed | trajectory | reason |", "|---|---|---|---|"]
        lines += [f"| {_cell(d.service)} | {_cell(d.seed_id)} | {_cell(d.trajectory_id or '(whole seed)')} | "
                  f"{_cell(d.reason)} |" for d in tracker.dead_letters]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"

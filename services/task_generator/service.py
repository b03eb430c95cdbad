"""task-generator: a ready toolset -> N trajectories, each with K descriptive tasks, rubrics and golden actions."""
from __future__ import annotations

import random
import time

from opentelemetry import context as otel_context

from services.task_generator import logic
from services.task_generator.golden_state import GoldenState
from services.task_generator.model_calls import TaskPhrasing, ToolArguments, WordingCheck
from services.task_generator.planning import PlannedTask, TrajectoryEdits, plan_task, plan_tool_spec_task
from shared.contracts import (ChatMessage, DeadLetter, SeedToolset, TaskWording, Topics, TrajectoryState,
                              TrajectoryStatus)
from shared.env.dbschema import DatabaseSchema
from shared.env.domain_rows import DomainRows
from shared.env.sandbox import SandboxManager, sandbox_name
from shared.env.trajectory import executes_sql, record_usage, seed_toolset_info, trajectory_id_for
from shared.lifecycle.janitor import SandboxJanitor
from shared.lifecycle.registry import TrajectoryRegistry
from shared.runtime import tracing
from shared.runtime.bus import Outgoing, Stage, consumes, dead_letter
from shared.runtime.config import Settings
from shared.runtime.errors import PermanentError
from shared.runtime.llm import LLMClient, LLMClients, ModelCall


WORDING_ATTEMPTS = 2  # phrasings of one task before it is dropped
WORDING_MISMATCH = "task_generator/wording_mismatch"  # TrajectoryState.retries: tasks dropped for their wording
WORDING_REPHRASED = "task_generator/wording_rephrased"  # ... and phrasings asked for again
WORDING_FROM_RULES = "task_generator/wording_from_rules"  # ... and tasks worded from their actions instead


class TaskGenerator(Stage):
    name = "task-generator"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.llm = LLMClients(settings.llm)
        self.sandboxes = SandboxManager(settings.postgres.dsn)
        self.registry = TrajectoryRegistry(settings.postgres.dsn)
        self.golden = GoldenState(self.sandboxes, SandboxJanitor(self.sandboxes, self.registry),
                                  statement_timeout_ms=settings.postgres.statement_timeout_ms)

    def close(self) -> None:
        self.registry.close()
        self.sandboxes.close()
        self.llm.close()

    @consumes(Topics.TOOLSETS_READY, SeedToolset, seed_toolset_info)
    def handle(self, prepared: SeedToolset) -> list[Outgoing]:
        seed = prepared.seed
        # Seed tools have no database: tasks are planned from the tool specs alone.
        db_schema = (self.sandboxes.domain_schema(prepared.toolset.domain_database)
                     if prepared.toolset.domain_database else None)
        if seed.WhichOneof("source") == "evaluation":
            outputs = [self.evaluation_trial(prepared, db_schema, i) for i in range(seed.settings.num_trajectories)]
        else:
            outputs = self.planned_trajectories(prepared, db_schema)
        # Registered before the first event leaves, so the deadline sweeper knows of every trajectory under way.
        self.registry.register([(o.message.trajectory_id, seed.seed_id, o.message.deadline)
                                for o in outputs if o.topic == Topics.TURNS_USER])
        return outputs

    def planned_trajectories(self, prepared: SeedToolset, db_schema: DatabaseSchema | None) -> list[Outgoing]:
        seed = prepared.seed
        llm = self.llm.for_role("task_generator", seed.settings.models)
        outputs = []
        return [self.planned_or_new_trajectory(prepared, db_schema, index, llm)
                for index in range(seed.settings.num_trajectories)]

    def evaluation_trial(self, prepared: SeedToolset, db_schema: DatabaseSchema, index: int) -> Outgoing:
        """One trial of frozen tasks: passed through as they are, without planning or phrasing, each trial in a
        sandbox of its own (its trajectory id's), to end where the frozen golden hash says."""
        seed, frozen = prepared.seed, prepared.seed.evaluation
        trajectory_id = trajectory_id_for(seed.seed_id, index)
        now = time.time()
        context, trace_id = tracing.new_trajectory_trace(trajectory_id, link_from=otel_context.get_current())
        state = TrajectoryState(
            trajectory_id=trajectory_id, seed_id=seed.seed_id, index=index, step=1, domain=seed.domain,
            settings=seed.settings, toolset=prepared.toolset, sandbox=sandbox_name(trajectory_id),
            status=TrajectoryStatus.TRAJECTORY_STATUS_IN_PROGRESS, started_at=now,
            deadline=now + (seed.settings.trajectory_deadline_s or self.settings.service.trajectory_deadline_s),
            trace_id=trace_id, tasks=frozen.tasks, golden_state_hash=frozen.golden_state_hash,
            instruction=frozen.instruction,
        )
        state.messages.append(ChatMessage(role="system", content=logic.evaluation_system_prompt(
            seed.domain, db_schema, prepared.toolset)))
        return Outgoing(Topics.TURNS_USER, trajectory_id, state, trace_context=context)

    def planned_or_new_trajectory(self, prepared: SeedToolset, db_schema: DatabaseSchema | None, index: int,
                                  llm: LLMClient) -> Outgoing:
        """A trajectory this seed's handler planned before it failed is sent as planned: its model calls are paid
        once, and a redelivered seed yields the very same events (the next hops' ledgers skip the repeats)."""
        seed = prepared.seed
        trajectory_id = trajectory_id_for(seed.seed_id, index)
        saved = self.registry.planned(trajectory_id)
        if saved is not None:
            topic, message, carrier = saved
            kind = TrajectoryState if topic == Topics.TURNS_USER else DeadLetter
            return Outgoing(topic, trajectory_id, kind.FromString(message),
                            trace_context=tracing.context_from_carrier(carrier))
        try:
            planned = self.new_trajectory(prepared, db_schema, index, llm)
        except PermanentError as e:
            # One trajectory that cannot be grounded or phrased must not take its siblings down with it; saved like a
            # plan, so a retried seed sends this dead letter again rather than paying for the failure twice.
            planned = dead_letter(service=self.name, source_topic=Topics.TOOLSETS_READY, key=trajectory_id.encode(),
                                  error_type=type(e).__name__, reason=f"{type(e).__name__}: {e}", seed_id=seed.seed_id,
                                  trajectory_id=trajectory_id, attempts=1)
        self.registry.save_planned(trajectory_id, planned.topic, planned.message.SerializeToString(),
                                   tracing.carrier_from_context(planned.trace_context))
        return planned

    def new_trajectory(self, prepared: SeedToolset, db_schema: DatabaseSchema | None, index: int,
                       llm: LLMClient) -> Outgoing:
        seed = prepared.seed
        trajectory_id = trajectory_id_for(seed.seed_id, index)
        # Seeded by domain, random seed and index (not the run's seed id): the same config gives the same tasks.
        rng = random.Random(f"{seed.domain}/{seed.settings.random_seed}/{index}")
        now = time.time()
        # Its own trace, linked to the seed's (the span handling this seed is current).
        context, trace_id = tracing.new_trajectory_trace(trajectory_id, link_from=otel_context.get_current())
        # Planning this trajectory (phrasing calls, golden-state sandbox) belongs to its trace, not the seed's.
        with tracing.tracer().start_as_current_span("plan trajectory", context=context,
                                                    attributes={"turnforge.trajectory_id": trajectory_id}):
            state = TrajectoryState(
                trajectory_id=trajectory_id, seed_id=seed.seed_id, index=index, step=1, domain=seed.domain,
                settings=seed.settings, toolset=prepared.toolset, sandbox=sandbox_name(trajectory_id),
                status=TrajectoryStatus.TRAJECTORY_STATUS_IN_PROGRESS, started_at=now,
                deadline=now + (seed.settings.trajectory_deadline_s or self.settings.service.trajectory_deadline_s),
                trace_id=trace_id,
            )
            state.messages.append(ChatMessage(role="system", content=logic.agent_system_prompt(
                seed.domain, db_schema.description if db_schema else "")))
            start = seed.start_state
            logic.check_start_state(start, prepared.toolset)
            state.messages.extend(start.prefix)  # generation continues an existing conversation
            state.prefix_messages = len(start.prefix)
            state.setup_actions.extend(start.setup_actions)  # offline re-validation replays them first
            setup_tools = {a.tool_name for a in start.setup_actions}
            state.setup_tools.extend(t for t in prepared.toolset.tools if t.name in setup_tools)
            planned = self.plan_tasks(prepared, db_schema, rng, llm, state)
            state.toolset.CopyFrom(logic.offered_tools(prepared.toolset, list(state.tasks),
                                                       seed.settings.tools_per_trajectory, rng))
            if executes_sql(state) and start.setup_actions:
                self.golden.run_actions(trajectory_id, prepared, db_schema, start.setup_actions)  # where it continues
            if executes_sql(state):
                # Always hashed, reads only too: an unasked-for write then differs from the start it should keep.
                run = self.golden.run_tasks(trajectory_id, prepared, db_schema, list(state.tasks))
                state.golden_state_hash = run.state_hash
                logic.record_results(list(state.tasks), planned, run.results)
            return Outgoing(Topics.TURNS_USER, trajectory_id, state, trace_context=context)

    def plan_tasks(self, prepared: SeedToolset, db_schema: DatabaseSchema | None, rng: random.Random,
                   llm: LLMClient, state: TrajectoryState) -> list[PlannedTask]:
        """The trajectory's tasks, each planned, phrased and checked before the next (a later task builds on the
        ones kept); added to `state`. A task whose wording keeps disagreeing with its golden actions is dropped."""
        def ask(call: ModelCall, role_llm: LLMClient = llm):
            answer = call.ask(role_llm)
            record_usage(state, answer.chat)
            return answer.value

        judge = self.llm.for_role("judge", prepared.seed.settings.models)
        domain, toolset = prepared.seed.domain, prepared.toolset
        rows = DomainRows(self.sandboxes, toolset.domain_database) if db_schema else None
        edits = TrajectoryEdits()
        kept: list[PlannedTask] = []
        for k in range(prepared.seed.settings.tasks_per_trajectory):
            if db_schema is None:
                planned = plan_tool_spec_task(prepared, rng, lambda tool: ask(ToolArguments(domain, tool)))
            else:
                planned = plan_task(prepared, db_schema, rows, rng, kept[-1] if kept else None, edits)
            phrasing = self.checked_phrasing(planned, db_schema, domain, bool(kept), state,
                                             ask=ask, judge=lambda call: ask(call, judge))
            if phrasing is None:
                state.retries[WORDING_MISMATCH] += 1
                continue
            state.tasks.append(logic.build_task(f"{state.trajectory_id}-k{k}", planned, phrasing))
            if db_schema is not None:
                edits.record(db_schema, planned)
            kept.append(planned)
        if not kept:
            raise PermanentError(f"{WORDING_MISMATCH}: no task's wording matched its golden actions")
        return kept

    def checked_phrasing(self, planned: PlannedTask, db_schema: DatabaseSchema | None, domain: str,
                         extension: bool, state: TrajectoryState, ask, judge) -> dict | None:
        """The task's wording once the mechanical check and both judges agree it asks for exactly its golden
        actions; re-phrased with their objections up to WORDING_ATTEMPTS times. Then, over a database, the wording
        built from the actions themselves; without one (nothing to build it from) None, and the task is dropped.
        A run configured to word tasks by rules gets the actions' wording at once (tool specs alone have none)."""
        if db_schema is not None and state.settings.task_wording == TaskWording.TASK_WORDING_RULES:
            return logic.rule_phrasing(planned, db_schema)
        tool_names = [t.name for t in state.toolset.tools]
        problems: list[str] = []
        for attempt in range(WORDING_ATTEMPTS):
            if attempt:
                state.retries[WORDING_REPHRASED] += 1
            phrasing = ask(TaskPhrasing(domain, db_schema, planned, extension, problems))
            problems = logic.wording_problems(phrasing["subtasks"], planned.actions, tool_names)
            if not problems:
                verdicts = [judge(WordingCheck(j, planned, phrasing)) for j in (1, 2)]
                problems = [p for v in verdicts if not v["agrees"] for p in v["problems"] or ["a judge disagreed"]]
            if not problems:
                return phrasing
        if db_schema is None:
            return None
        # The model could not word it: the task is worded from its golden actions instead, right by construction.
        state.retries[WORDING_FROM_RULES] += 1
        return logic.rule_phrasing(planned, db_schema)

"""task-generator: a ready toolset -> N trajectories, each with K descriptive tasks, rubrics and golden actions.

Two steps, so that a seed of many trajectories is planned by every replica at once: the seed's handler fans it out
into one message per trajectory (trajectories.seeded, keyed by trajectory id), and each of those is planned by
whichever replica its partition belongs to.
"""
from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict

from opentelemetry import context as otel_context

from services.task_generator import logic
from services.task_generator.golden_state import GoldenState
from services.task_generator.model_calls import TaskPhrasing, ToolArguments, WordingCheck
from services.task_generator.planning import (PlannedTask, Position, TrajectoryEdits, plan_signature, plan_task,
                                              plan_tool_spec_task)
from shared.contracts import (ChatMessage, DeadLetter, SeededTrajectory, SeedToolset, TaskWording, Topics,
                              TrajectoryState, TrajectoryStatus)
from shared.env.dbschema import DatabaseSchema
from shared.env.domain_rows import DomainRows
from shared.env.sandbox import SandboxManager, sandbox_name
from shared.env.trajectory import (executes_sql, record_usage, seed_toolset_info, seeded_trajectory_info,
                                   trajectory_id_for)
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
PLAN_REPEATED = "task_generator/plan_repeated"  # ... and plans made again for repeating another trajectory's
DISTINCT_PLAN_ATTEMPTS = 4
TOOLSETS_KEPT = 16  # seeds whose stored toolset a process keeps in memory while it plans their trajectories


class TaskGenerator(Stage):
    name = "task-generator"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.llm = LLMClients(settings.llm)
        self.sandboxes = SandboxManager(settings.postgres.dsn)
        self.registry = TrajectoryRegistry(settings.postgres.dsn)
        self.golden = GoldenState(self.sandboxes, SandboxJanitor(self.sandboxes, self.registry),
                                  statement_timeout_ms=settings.postgres.statement_timeout_ms)
        self._toolsets: OrderedDict[str, bytes] = OrderedDict()  # seed id -> serialized SeedToolset
        self._toolsets_lock = threading.Lock()  # handlers of several trajectories run at once

    def close(self) -> None:
        self.registry.close()
        self.sandboxes.close()
        self.llm.close()

    # -- a seed's fan-out -------------------------------------------------------------------------------------------
    @consumes(Topics.TOOLSETS_READY, SeedToolset, seed_toolset_info)
    def fan_out(self, prepared: SeedToolset) -> list[Outgoing]:
        """One small message per trajectory of the seed, keyed by trajectory id, so that planning (the model calls
        and golden-state sandboxes) spreads over every replica instead of running one after another here. The
        toolset is stored once for the seed, not copied into each message."""
        seed = prepared.seed
        if prepared.toolset.domain_database:
            # A seed whose database is missing fails here, once, as a seed: not as one dead letter per trajectory.
            self.sandboxes.domain_schema(prepared.toolset.domain_database)
        # A redelivered seed finds its toolset and first fan-out time stored: the same deadlines, the same messages.
        fanned_out_at = self.registry.store_seed_toolset(seed.seed_id, prepared.SerializeToString(), time.time())
        deadline = fanned_out_at + (seed.settings.trajectory_deadline_s or self.settings.service.trajectory_deadline_s)
        seeded = [SeededTrajectory(seed_id=seed.seed_id, trajectory_id=trajectory_id_for(seed.seed_id, index),
                                   index=index, deadline=deadline)
                  for index in range(seed.settings.num_trajectories)]
        # Registered before any of them leaves, so the deadline sweeper knows every trajectory from here on, even one
        # whose planning never starts; it dead-letters that one at its deadline.
        self.registry.register([(s.trajectory_id, seed.seed_id, s.deadline) for s in seeded])
        return [Outgoing(Topics.TRAJECTORIES_SEEDED, s.trajectory_id, s) for s in seeded]

    # -- one trajectory --------------------------------------------------------------------------------------------
    @consumes(Topics.TRAJECTORIES_SEEDED, SeededTrajectory, seeded_trajectory_info)
    def plan(self, seeded: SeededTrajectory) -> list[Outgoing]:
        """Plans one trajectory of a seed and sends its first event (or its dead letter, if it cannot be planned)."""
        if self.registry.outcome(seeded.trajectory_id) is not None:
            # It ended already: the sweeper found it stuck while it waited, or this is a redelivery long after its
            # first event went out. Planning it now would give an ended trajectory new events.
            return []
        prepared = self.seed_toolset(seeded.seed_id)
        # Seed tools have no database: tasks are planned from the tool specs alone.
        db_schema = (self.sandboxes.domain_schema(prepared.toolset.domain_database)
                     if prepared.toolset.domain_database else None)
        llm = self.llm.for_role("task_generator", prepared.seed.settings.models)
        return [self.planned_or_new_trajectory(prepared, db_schema, seeded, llm)]

    def seed_toolset(self, seed_id: str) -> SeedToolset:
        """The toolset the seed fanned out with. Kept as bytes per process (a seed's many trajectories mostly reach
        the same few replicas) and parsed for each trajectory, so no handler can change another's copy."""
        with self._toolsets_lock:
            stored = self._toolsets.get(seed_id)
        if stored is None:
            stored = self.registry.seed_toolset(seed_id)
            if stored is None:
                raise PermanentError(f"seed {seed_id}: no stored toolset to plan its trajectories from")
            with self._toolsets_lock:
                self._toolsets[seed_id] = stored
                while len(self._toolsets) > TOOLSETS_KEPT:
                    self._toolsets.popitem(last=False)  # the oldest seed's: its fan-out is most likely planned
        return SeedToolset.FromString(stored)

    def planned_or_new_trajectory(self, prepared: SeedToolset, db_schema: DatabaseSchema | None,
                                  seeded: SeededTrajectory, llm: LLMClient) -> Outgoing:
        """A trajectory planned before (a redelivered message, a handler that failed after saving) is sent as
        planned: its model calls are paid once, and a redelivery yields the very same event (the next hops' ledgers
        skip the repeats). A new plan is saved before it is sent."""
        seed, trajectory_id = prepared.seed, seeded.trajectory_id
        saved = self.registry.planned(trajectory_id)
        if saved is not None:
            topic, message, carrier = saved
            kind = TrajectoryState if topic == Topics.TURNS_USER else DeadLetter
            return Outgoing(topic, trajectory_id, kind.FromString(message),
                            trace_context=tracing.context_from_carrier(carrier))
        try:
            if seed.WhichOneof("source") == "evaluation":
                planned = self.evaluation_trial(prepared, db_schema, seeded)
            else:
                planned = self.new_trajectory(prepared, db_schema, seeded, llm)
        except PermanentError as e:
            # A trajectory that cannot be grounded or phrased is dead-lettered with its reason; saved like a plan, so
            # a redelivery sends this dead letter again rather than paying for the failure twice.
            planned = dead_letter(service=self.name, source_topic=Topics.TRAJECTORIES_SEEDED,
                                  key=trajectory_id.encode(), error_type=type(e).__name__,
                                  reason=f"{type(e).__name__}: {e}", seed_id=seed.seed_id,
                                  trajectory_id=trajectory_id, attempts=1)
        self.registry.save_planned(trajectory_id, planned.topic, planned.message.SerializeToString(),
                                   tracing.carrier_from_context(planned.trace_context))
        return planned

    def evaluation_trial(self, prepared: SeedToolset, db_schema: DatabaseSchema, seeded: SeededTrajectory) -> Outgoing:
        """One trial of frozen tasks: passed through as they are, without planning or phrasing, each trial in a
        sandbox of its own (its trajectory id's), to end where the frozen golden hash says."""
        seed, frozen = prepared.seed, prepared.seed.evaluation
        trajectory_id = seeded.trajectory_id
        # Its own trace, linked to the seed's (the span handling this trajectory's message is in the seed's trace).
        context, trace_id = tracing.new_trajectory_trace(trajectory_id, link_from=otel_context.get_current())
        state = TrajectoryState(
            trajectory_id=trajectory_id, seed_id=seed.seed_id, index=seeded.index, step=1, domain=seed.domain,
            settings=seed.settings, toolset=prepared.toolset, sandbox=sandbox_name(trajectory_id),
            status=TrajectoryStatus.TRAJECTORY_STATUS_IN_PROGRESS, started_at=time.time(), deadline=seeded.deadline,
            trace_id=trace_id, tasks=frozen.tasks, golden_state_hash=frozen.golden_state_hash,
            instruction=frozen.instruction,
        )
        state.messages.append(ChatMessage(role="system", content=logic.evaluation_system_prompt(
            seed.domain, db_schema, prepared.toolset)))
        return Outgoing(Topics.TURNS_USER, trajectory_id, state, trace_context=context)

    def new_trajectory(self, prepared: SeedToolset, db_schema: DatabaseSchema | None, seeded: SeededTrajectory,
                       llm: LLMClient) -> Outgoing:
        seed, trajectory_id, index = prepared.seed, seeded.trajectory_id, seeded.index
        # Its own trace, linked to the seed's (the span handling this trajectory's message is in the seed's trace).
        context, trace_id = tracing.new_trajectory_trace(trajectory_id, link_from=otel_context.get_current())
        # Planning this trajectory (phrasing calls, golden-state sandbox) belongs to its trace, not the seed's.
        with tracing.tracer().start_as_current_span("plan trajectory", context=context,
                                                    attributes={"turnforge.trajectory_id": trajectory_id}):
            for variant in range(DISTINCT_PLAN_ATTEMPTS):
                state, planned = self.planned_state(prepared, db_schema, seeded, llm, trace_id, variant)
                # No two trajectories of a seed with the same golden calls and values, whichever replica plans them.
                if self.registry.claim_plan(seed.seed_id, plan_signature(planned), trajectory_id):
                    break
                state.retries[PLAN_REPEATED] += 1
            else:
                raise PermanentError(f"{PLAN_REPEATED}: every plan of trajectory {index} repeats another trajectory "
                                     f"of seed {seed.seed_id} ({DISTINCT_PLAN_ATTEMPTS} tries)")
            state.toolset.CopyFrom(logic.offered_tools(prepared.toolset, list(state.tasks),
                                                       seed.settings.tools_per_trajectory, random.Random(
                                                           f"{seed.domain}/{seed.settings.random_seed}/{index}/tools")))
            if executes_sql(state) and seed.start_state.setup_actions:
                self.golden.run_actions(trajectory_id, prepared, db_schema, seed.start_state.setup_actions)
            if executes_sql(state):
                # Always hashed, reads only too: an unasked-for write then differs from the start it should keep.
                run = self.golden.run_tasks(trajectory_id, prepared, db_schema, list(state.tasks))
                state.golden_state_hash = run.state_hash
                for task, checkpoint in zip(state.tasks, run.checkpoints):
                    task.golden_state_hash = checkpoint
                logic.record_results(list(state.tasks), planned, run.results)
            return Outgoing(Topics.TURNS_USER, trajectory_id, state, trace_context=context)

    def planned_state(self, prepared: SeedToolset, db_schema: DatabaseSchema | None, seeded: SeededTrajectory,
                      llm: LLMClient, trace_id: str, variant: int) -> tuple[TrajectoryState, list[PlannedTask]]:
        """The trajectory's first state with its tasks planned and worded (variant > 0: planned again from other
        records, after the first plan repeated another trajectory's)."""
        seed, trajectory_id, index = prepared.seed, seeded.trajectory_id, seeded.index
        # Seeded by domain, random seed and index (not the run's seed id): the same config gives the same tasks.
        rng = random.Random(f"{seed.domain}/{seed.settings.random_seed}/{index}/{variant}" if variant else
                            f"{seed.domain}/{seed.settings.random_seed}/{index}")
        # started_at is when its own work begins (latency per sample); the deadline is the one it was registered with
        # at the seed's fan-out, so the sweeper and every service judge it by the same time.
        state = TrajectoryState(
            trajectory_id=trajectory_id, seed_id=seed.seed_id, index=index, step=1, domain=seed.domain,
            settings=seed.settings, toolset=prepared.toolset, sandbox=sandbox_name(trajectory_id),
            status=TrajectoryStatus.TRAJECTORY_STATUS_IN_PROGRESS, started_at=time.time(),
            deadline=seeded.deadline, trace_id=trace_id,
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
        planned = self.plan_tasks(prepared, db_schema, rng, llm, state, variant)
        return state, planned

    def plan_tasks(self, prepared: SeedToolset, db_schema: DatabaseSchema | None, rng: random.Random,
                   llm: LLMClient, state: TrajectoryState, variant: int = 0) -> list[PlannedTask]:
        """The trajectory's tasks, each planned, phrased and checked before the next (a later task builds on the
        ones kept); added to `state`. A task whose wording keeps disagreeing with its golden actions is dropped."""
        def ask(call: ModelCall, role_llm: LLMClient = llm):
            answer = call.ask(role_llm)
            record_usage(state, answer.chat)
            return answer.value

        judge = self.llm.for_role("judge", prepared.seed.settings.models)
        settings, domain, toolset = prepared.seed.settings, prepared.seed.domain, prepared.toolset
        rows = DomainRows(self.sandboxes, toolset.domain_database) if db_schema else None
        edits = TrajectoryEdits()
        kept: list[PlannedTask] = []
        for k in range(settings.tasks_per_trajectory):
            position = Position(state.index, k, settings.num_trajectories, settings.tasks_per_trajectory,
                                f"{domain}/{settings.random_seed}", variant)
            if db_schema is None:
                planned = plan_tool_spec_task(prepared, rng, position, lambda tool: ask(ToolArguments(domain, tool)))
            else:
                planned = plan_task(prepared, db_schema, rows, rng, edits, position)
            phrasing = self.checked_phrasing(planned, db_schema, domain, planned.builds_on >= 0, state,
                                             ask=ask, judge=lambda call: ask(call, judge))
            if phrasing is None:
                state.retries[WORDING_MISMATCH] += 1
                continue
            builds_on = state.tasks[planned.builds_on].task_id if planned.builds_on >= 0 else ""
            if db_schema is not None:
                edits.record(db_schema, planned, len(state.tasks))
            state.tasks.append(logic.build_task(f"{state.trajectory_id}-k{k}", planned, phrasing, builds_on))
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
            problems = logic.wording_problems(phrasing["subtasks"], planned.requests, tool_names)
            if not problems:
                verdicts = [judge(WordingCheck(j, planned, phrasing, db_schema)) for j in (1, 2)]
                problems = [p for v in verdicts if not v["agrees"] for p in v["problems"] or ["a judge disagreed"]]
            if not problems:
                return phrasing
        if db_schema is None:
            return None
        # The model could not word it: the task is worded from its golden actions instead, right by construction.
        state.retries[WORDING_FROM_RULES] += 1
        return logic.rule_phrasing(planned, db_schema)

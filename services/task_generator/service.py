"""task-generator: a ready toolset -> N trajectories, each with K descriptive tasks, rubrics and golden actions.

Golden actions are executed in a scratch sandbox through the same code the live tool calls take, and the resulting
database state hash becomes the trajectory's golden state.
"""
from __future__ import annotations

import json
import random
import time

from opentelemetry import context as otel_context
from psycopg import sql as pgsql

from services.task_generator import logic
from services.task_generator.prompts import ARGUMENTS_SYSTEM, DIFFICULTY_WORDS, TASK_REQUEST, TASK_SCHEMA, TASK_SYSTEM
from shared.runtime import tracing
from shared.runtime.bus import Outgoing, Route, run_service
from shared.runtime.config import Settings, get_settings
from shared.contracts import ChatMessage, DeadLetter, GoldenAction, SeedToolset, Topics, TrajectoryState, TrajectoryStatus
from shared.env.dbschema import DatabaseSchema
from shared.env.json_values import json_value
from shared.runtime.errors import PermanentError
from shared.runtime.llm import LLMClient, LLMClients
from shared.env.sandbox import SandboxManager, domain_schema_name, sandbox_name, scratch_owner
from shared.env.tool_execution import execute_sql_tool
from shared.env.tool_spec import mutates, tool_parameters
from shared.lifecycle.registry import TrajectoryRegistry
from shared.env.trajectory import executes_sql, record_usage, seed_toolset_info, tool_by_name, trajectory_id_for

ROOT_ATTEMPTS = 6


class TaskGenerator:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.llm = LLMClients(settings.llm)
        self.sandboxes = SandboxManager(settings.postgres.dsn)
        self.registry = TrajectoryRegistry(settings.postgres.dsn)

    # -- data access -----------------------------------------------------------------------------------------
    def _random_row(self, domain: str, table: str, rng: random.Random) -> dict | None:
        conn = self.sandboxes.connection()
        ident = pgsql.SQL("{}.{}").format(pgsql.Identifier(domain_schema_name(domain)), pgsql.Identifier(table))
        (count,) = conn.execute(pgsql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
        if not count:
            return None
        cur = conn.execute(pgsql.SQL("SELECT * FROM {} ORDER BY 1 OFFSET %s LIMIT 1").format(ident),
                           (rng.randrange(count),))
        names = [d.name for d in cur.description]
        return dict(zip(names, cur.fetchone()))

    def _row_by_key(self, domain: str, table: str, column: str, value) -> dict | None:
        conn = self.sandboxes.connection()
        cur = conn.execute(pgsql.SQL("SELECT * FROM {}.{} WHERE {} = %s LIMIT 1").format(
            pgsql.Identifier(domain_schema_name(domain)), pgsql.Identifier(table), pgsql.Identifier(column)), (value,))
        row = cur.fetchone()
        return dict(zip([d.name for d in cur.description], row)) if row else None

    def _column_values(self, domain: str, table: str) -> dict[str, list]:
        conn = self.sandboxes.connection()
        cur = conn.execute(pgsql.SQL("SELECT * FROM {}.{} LIMIT 200").format(
            pgsql.Identifier(domain_schema_name(domain)), pgsql.Identifier(table)))
        names = [d.name for d in cur.description]
        rows = cur.fetchall()
        return {n: sorted({json_value(r[i]) for r in rows if r[i] is not None}, key=str)
                for i, n in enumerate(names)}

    def data_view(self, domain: str, db_schema: DatabaseSchema, table: str, rng) -> logic.DataView | None:
        row = self._random_row(domain, table, rng)
        if row is None:
            return None
        view = logic.DataView(table=table, row=row)
        for fk in db_schema.table(table).foreign_keys:
            value = row.get(fk.columns[0])
            if value is not None and len(fk.columns) == 1:
                parent = self._row_by_key(domain, fk.ref_table, fk.ref_columns[0], value)
                if parent:
                    view.related[fk.ref_table] = parent
        return view

    # -- one task --------------------------------------------------------------------------------------------
    def plan_task(self, prepared: SeedToolset, db_schema: DatabaseSchema, rng, previous: logic.DataView | None):
        settings = prepared.seed.settings
        domain = prepared.toolset.domain_database
        difficulty = logic.pick_difficulty(rng, settings.difficulty_mix)
        changes_data = rng.random() < settings.write_task_share
        tables = db_schema.table_names
        if changes_data:
            # A write task needs a root record whose table has an update tool.
            writable = [t for t in tables if any(logic.updates_table(tool, t) for tool in prepared.toolset.tools)]
            tables, changes_data = (writable, True) if writable else (tables, False)
        for attempt in range(ROOT_ATTEMPTS):
            # Later tasks extend an earlier one half the time: start from a record the last task reached.
            extendable = sorted(t for t in (previous.related if previous else {}) if t in tables)
            if extendable and attempt == 0 and rng.random() < 0.5:
                table = rng.choice(extendable)
            else:
                table = rng.choice(tables)
            view = self.data_view(domain, db_schema, table, rng)
            if view is None:
                continue
            actions = logic.plan_golden_actions(prepared.toolset, db_schema, view, difficulty, changes_data,
                                                self._column_values(domain, table) if changes_data else {}, rng)
            if actions:
                writes = any(mutates(tool_by_name(prepared.toolset, a.tool_name)) for a in actions)
                return view, difficulty, actions, writes
        raise PermanentError(f"could not ground a task in domain '{domain}' after {ROOT_ATTEMPTS} records")

    def plan_tool_spec_task(self, prepared: SeedToolset, rng, llm: LLMClient, state: TrajectoryState):
        """Without a database: pick tools by difficulty and let the model invent concrete, schema-valid arguments."""
        difficulty = logic.pick_difficulty(rng, prepared.seed.settings.difficulty_mix)
        tools = rng.sample(list(prepared.toolset.tools),
                           min(logic.ACTIONS_PER_DIFFICULTY[difficulty], len(prepared.toolset.tools)))
        actions = []
        for tool in tools:
            result = llm.chat([{"role": "system", "content": ARGUMENTS_SYSTEM.format(domain=prepared.seed.domain)},
                               {"role": "user", "content": f"Tool {tool.name}: {tool.description}"}],
                              schema=tool_parameters(tool), schema_name="tool_arguments")
            record_usage(state, result)
            actions.append(GoldenAction(tool_name=tool.name, arguments_json=json.dumps(result.data)))
        return logic.DataView(table="", row={}), difficulty, actions, False

    def phrase_task(self, prepared: SeedToolset, db_schema: DatabaseSchema, view, difficulty, actions, extension,
                    llm: LLMClient, state: TrajectoryState) -> dict:
        steps = "\n".join(f"{i + 1}. {logic.describe_action(a, prepared.toolset)}" for i, a in enumerate(actions))
        request = TASK_REQUEST.format(db_description=db_schema.description if db_schema else "none (tools only)",
                                      data_view=view.as_json() if db_schema else "none", actions=steps,
                                      difficulty=DIFFICULTY_WORDS[difficulty],
                                      extension=" It follows on from the previous goal." if extension else "")
        result = llm.chat([{"role": "system", "content": TASK_SYSTEM.format(domain=prepared.seed.domain)},
                           {"role": "user", "content": request}], schema=TASK_SCHEMA, schema_name="task_spec")
        record_usage(state, result)
        return result.data

    def run_actions(self, sandbox_owner: str, prepared: SeedToolset, db_schema: DatabaseSchema, actions) -> str:
        """Execute tool calls in `sandbox_owner`'s sandbox (created if needed); returns its state hash."""
        sandbox = self.sandboxes.create(sandbox_owner, prepared.toolset.domain_database)
        for i, action in enumerate(actions):
            tool = tool_by_name(prepared.toolset, action.tool_name)
            result = execute_sql_tool(self.sandboxes, sandbox, db_schema.table_names, tool, f"setup{i}",
                                      action.arguments_json, timeout_ms=self.settings.postgres.statement_timeout_ms,
                                      idempotency_key=f"setup{i}")  # a redelivered seed must not apply it twice
            if not result.ok:
                raise PermanentError(f"action {action.tool_name}({action.arguments_json}) failed: {result.error}")
        return self.sandboxes.schema_state_hash(sandbox, db_schema)

    def golden_state_hash(self, trajectory_id: str, prepared: SeedToolset, db_schema: DatabaseSchema, tasks) -> str:
        """The start state's setup, then every golden action, in a scratch sandbox: the hash of where it ends."""
        scratch_id = scratch_owner(trajectory_id)
        actions = list(prepared.seed.start_state.setup_actions) + [a for t in tasks for a in t.golden_actions]
        try:
            return self.run_actions(scratch_id, prepared, db_schema, actions)
        finally:
            self.sandboxes.drop(scratch_id)

    # -- handler ---------------------------------------------------------------------------------------------
    def handle(self, prepared: SeedToolset) -> list[Outgoing]:
        seed = prepared.seed
        # Seed tools have no database: tasks are planned from the tool specs alone.
        db_schema = (self.sandboxes.domain_schema(prepared.toolset.domain_database)
                     if prepared.toolset.domain_database else None)
        llm = self.llm.for_role("task_generator", seed.settings.models)
        outputs = []
        for index in range(seed.settings.num_trajectories):
            try:
                outputs.append(self.planned_or_new_trajectory(prepared, db_schema, index, llm))
            except PermanentError as e:
                # One trajectory that cannot be grounded or phrased must not take its siblings down with it.
                outputs.append(trajectory_dead_letter(seed, index, e))
        # Registered before the first event leaves, so the deadline sweeper knows of every trajectory under way.
        self.registry.register([(o.message.trajectory_id, seed.seed_id, o.message.deadline)
                                for o in outputs if o.topic == Topics.TURNS_USER])
        return outputs

    def planned_or_new_trajectory(self, prepared: SeedToolset, db_schema: DatabaseSchema, index: int,
                                  llm: LLMClient) -> Outgoing:
        """A trajectory this seed's handler planned before it failed is sent as planned: its model calls are paid
        once, and a redelivered seed yields the very same events (the next hops' ledgers skip the repeats)."""
        trajectory_id = trajectory_id_for(prepared.seed.seed_id, index)
        saved = self.registry.planned(trajectory_id)
        if saved is not None:
            state_bytes, carrier = saved
            return Outgoing(Topics.TURNS_USER, trajectory_id, TrajectoryState.FromString(state_bytes),
                            trace_context=tracing.context_from_carrier(carrier))
        planned = self.new_trajectory(prepared, db_schema, index, llm)
        self.registry.save_planned(trajectory_id, planned.message.SerializeToString(),
                                   tracing.carrier_from_context(planned.trace_context))
        return planned

    def new_trajectory(self, prepared: SeedToolset, db_schema: DatabaseSchema, index: int, llm: LLMClient) -> Outgoing:
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
            previous = None
            for k in range(seed.settings.tasks_per_trajectory):
                if db_schema is None:
                    view, difficulty, actions, changes = self.plan_tool_spec_task(prepared, rng, llm, state)
                else:
                    view, difficulty, actions, changes = self.plan_task(prepared, db_schema, rng, previous)
                phrasing = self.phrase_task(prepared, db_schema, view, difficulty, actions, previous is not None, llm,
                                            state)
                state.tasks.append(logic.build_task(f"{trajectory_id}-k{k}", difficulty, actions, prepared.toolset,
                                                    phrasing, changes))
                previous = view
            state.toolset.CopyFrom(logic.offered_tools(prepared.toolset, list(state.tasks),
                                                       seed.settings.tools_per_trajectory, rng))
            if executes_sql(state) and start.setup_actions:
                self.run_actions(trajectory_id, prepared, db_schema, start.setup_actions)  # the database it continues from
            if executes_sql(state) and (start.setup_actions or any(t.changes_data for t in state.tasks)):
                state.golden_state_hash = self.golden_state_hash(trajectory_id, prepared, db_schema,
                                                                 state.tasks)
            return Outgoing(Topics.TURNS_USER, trajectory_id, state, trace_context=context)


def trajectory_dead_letter(seed, index: int, error: Exception) -> Outgoing:
    trajectory_id = trajectory_id_for(seed.seed_id, index)
    letter = DeadLetter(service="task-generator", source_topic=Topics.TOOLSETS_READY, key=trajectory_id.encode(),
                        error_type=type(error).__name__, reason=f"{type(error).__name__}: {error}"[:4000],
                        seed_id=seed.seed_id, trajectory_id=trajectory_id, attempts=1, failed_at=time.time())
    return Outgoing(Topics.DEAD_LETTER, trajectory_id, letter)


def routes(settings: Settings) -> list[Route]:
    generator = TaskGenerator(settings)
    return [Route(Topics.TOOLSETS_READY, SeedToolset, generator.handle, seed_toolset_info)]


def main() -> None:
    settings = get_settings()
    run_service("task-generator", routes(settings), settings)

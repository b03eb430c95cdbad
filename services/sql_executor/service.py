"""sql-executor: runs the agent's tool calls in the trajectory's sandbox, and hosts the trajectory lifecycle.

SQL tools run under the sandbox's own role with bound parameters and a statement timeout. Tools without a database
are answered by a model constrained to the tool's output schema. Sandboxes are created on first use; the janitor
drops them when the trajectory ends: accepted, rejected or dead-lettered.

On a timer it runs the deadline sweeper (a trajectory past its deadline is dead-lettered as stuck) and the
janitor's sweep (a sandbox whose trajectory ended but which a late duplicate re-created is dropped).
"""
from __future__ import annotations


from services.sql_executor.simulate import simulate_tool
from shared.contracts import ChatMessage, DeadLetter, ToolCallRequest, ToolCallResult, Topics, TrajectoryState, Verdict
from shared.env.sandbox import SandboxManager
from shared.env.tool_execution import execute_sql_tool, tool_error
from shared.env.trajectory import advance, executes_sql, record_usage, tool_by_name, trajectory_info
from shared.lifecycle.janitor import SandboxJanitor
from shared.lifecycle.registry import TrajectoryRegistry
from shared.lifecycle.sweeper import DeadlineSweeper
from shared.runtime.bus import MessageInfo, Outgoing, Periodic, Stage, consumes
from shared.runtime.config import Settings
from shared.runtime.toolsets import ToolsetStore
from shared.runtime.llm import LLMClients
from shared.runtime.tracing import tracer


def verdict_info(v: Verdict) -> MessageInfo:
    return MessageInfo(entity=v.trajectory_id, step=v.trajectory.step, seed_id=v.trajectory.seed_id,
                       trajectory_id=v.trajectory_id)


def dead_letter_info(d: DeadLetter) -> MessageInfo:
    # Letters no consumed record failed (a plan that failed for good, the deadline sweep's) carry partition and
    # offset 0: the trajectory id keeps one trajectory's letter from being skipped as another's duplicate.
    return MessageInfo(entity=f"{d.source_topic}/{d.partition}/{d.offset}/{d.trajectory_id}", seed_id=d.seed_id,
                       trajectory_id=d.trajectory_id)


class SqlExecutor(Stage):
    name = "sql-executor"

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self.llm = LLMClients(settings.llm)
        self.sandboxes = SandboxManager(settings.postgres.dsn)
        self.registry = TrajectoryRegistry(settings.postgres.dsn)
        self.janitor = SandboxJanitor(self.sandboxes, self.registry)
        self.toolsets = ToolsetStore(settings.postgres.dsn)
        self.sweeper = DeadlineSweeper(self.registry, self.toolsets, self.name,
                                       plan_max_age_s=settings.service.trajectory_deadline_s)

    def close(self) -> None:
        self.registry.close()
        self.toolsets.close()
        self.sandboxes.close()
        self.llm.close()

    def timers(self) -> list[Periodic]:
        return [Periodic("deadline-sweep", self.settings.service.sweep_interval_s, self.sweep,
                         after=self.sweeper.letters_out)]

    def sweep(self) -> list[Outgoing]:
        letters = self.sweeper.sweep()
        self.janitor.sweep()
        return letters

    def run_call(self, state: TrajectoryState, request: ToolCallRequest, allowed_tables: list[str]) -> ToolCallResult:
        tool = tool_by_name(state.toolset, request.tool_name)
        if tool is None:
            return tool_error(request.call_id, request.tool_name, "unknown_tool", f"no tool named {request.tool_name}")
        with tracer().start_as_current_span(f"tool {tool.name}") as span:
            if executes_sql(state) and tool.HasField("sql"):
                # Keyed by the event that carries the call: a redelivered event finds the outcome instead of
                # writing again.
                result = execute_sql_tool(self.sandboxes, state.sandbox, allowed_tables, tool, request.call_id,
                                          request.arguments_json, timeout_ms=self.settings.postgres.statement_timeout_ms,
                                          idempotency_key=f"{state.step}/{request.call_id}")
            else:
                llm = self.llm.for_role("tool_simulator", state.settings.models)
                result, chat = simulate_tool(llm, state, tool, request)
                if chat is not None:
                    record_usage(state, chat)
            span.set_attribute("turnforge.tool.ok", result.ok)
            span.set_attribute("turnforge.tool.source", result.source or "error")
            span.set_attribute("turnforge.tool.rows", result.row_count)
            if result.sql_shape:
                span.set_attribute("db.statement", result.sql_shape)
        return result

    @consumes(Topics.TOOL_CALLS, TrajectoryState, trajectory_info)
    def handle_calls(self, state: TrajectoryState) -> list[Outgoing]:
        allowed: list[str] = []
        if executes_sql(state):
            self.sandboxes.create(state.trajectory_id, state.toolset.domain_database)
            allowed = self.sandboxes.domain_schema(state.toolset.domain_database).table_names
        for request in state.pending_calls:
            result = self.run_call(state, request, allowed)
            result.user_turn = state.counters.user_turns
            state.tool_results.append(result)
            state.messages.append(ChatMessage(role="tool", tool_call_id=request.call_id, name=request.tool_name,
                                              content=result.content_json))
            state.counters.tool_calls += 1
            state.counters.tool_errors += 0 if result.ok else 1
        del state.pending_calls[:]
        return [Outgoing(Topics.TURNS_AGENT, state.trajectory_id, advance(state))]

    @consumes(Topics.ACCEPTED, Verdict, verdict_info)
    @consumes(Topics.REJECTED, Verdict, verdict_info)
    def drop_after_verdict(self, verdict: Verdict) -> list[Outgoing]:
        self.janitor.after_verdict(verdict.trajectory_id)
        return []

    @consumes(Topics.DEAD_LETTER, DeadLetter, dead_letter_info)
    def drop_after_dead_letter(self, letter: DeadLetter) -> list[Outgoing]:
        self.janitor.after_dead_letter(letter)
        return []

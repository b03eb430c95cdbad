"""sql-executor: runs the agent's tool calls in the trajectory's sandbox, and owns the sandbox lifecycle.

SQL tools run under the sandbox's own role with bound parameters and a statement timeout. Tools without a database
are answered by a model constrained to the tool's output schema. Sandboxes are created on first use and dropped
when the trajectory ends: accepted, rejected or dead-lettered.

It also sweeps, on a timer: a trajectory past its deadline is dead-lettered as stuck (with the last step any service
finished for it), and a sandbox whose trajectory ended but which a late duplicate re-created is dropped.
"""
from __future__ import annotations

import logging
import time

from opentelemetry import trace

from services.sql_executor.simulate import simulate_tool
from shared.runtime.bus import MessageInfo, Outgoing, Periodic, Route, run_service
from shared.runtime.config import Settings, get_settings
from shared.contracts import ChatMessage, DeadLetter, Topics, TrajectoryState, Verdict
from shared.runtime.llm import LLMClients
from shared.env.sandbox import SandboxManager, scratch_owner
from shared.env.tool_execution import execute_sql_tool, tool_error
from shared.lifecycle.registry import TrajectoryRegistry
from shared.env.trajectory import advance, executes_sql, record_usage, tool_by_name, trajectory_id_prefix, trajectory_info

log = logging.getLogger("turnforge.sql_executor")


class SqlExecutor:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.llm = LLMClients(settings.llm)
        self.sandboxes = SandboxManager(settings.postgres.dsn)
        self.registry = TrajectoryRegistry(settings.postgres.dsn)

    def run_call(self, state: TrajectoryState, request, allowed_tables: list[str]):
        tool = tool_by_name(state.toolset, request.tool_name)
        if tool is None:
            return tool_error(request.call_id, request.tool_name, "unknown_tool", f"no tool named {request.tool_name}")
        with trace.get_tracer("turnforge").start_as_current_span(f"tool {tool.name}") as span:
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

    def drop_after_verdict(self, verdict: Verdict) -> list[Outgoing]:
        self.sandboxes.drop(verdict.trajectory_id)
        return []

    def drop_after_dead_letter(self, letter: DeadLetter) -> list[Outgoing]:
        if not letter.trajectory_id:
            # A seed that failed as a whole may have died between creating a scratch copy and dropping it; no
            # trajectory of it will ever end, so the janitor would never find that copy.
            if letter.seed_id:
                for owner in self.sandboxes.owners_starting_with(scratch_owner(trajectory_id_prefix(letter.seed_id))):
                    log.info("drops scratch sandbox %s of failed seed %s", owner, letter.seed_id)
                    self.sandboxes.drop(owner)
            return []
        self.registry.mark_dead_lettered(letter.trajectory_id)
        try:
            self.sandboxes.drop(letter.trajectory_id)
        except Exception as e:  # noqa: BLE001 - dead-lettering a dead letter would loop; log and move on
            log.warning("could not drop the sandbox of dead-lettered %s: %s", letter.trajectory_id, e)
        return []


    def sweep(self) -> list[Outgoing]:
        """Dead letters for trajectories past their deadline; drops sandboxes of trajectories that ended."""
        self.sandboxes.ensure_registry()
        now = time.time()
        overdue = self.registry.claim_overdue(now)
        letters = []
        for t in overdue:
            where = (f"{t.last_service} finished step {t.last_step} ({t.last_topic}) last" if t.last_service
                     else "no service finished a step of it")
            reason = f"deadline passed {now - t.deadline:.0f}s ago: trajectory stuck; {where}"
            log.warning("dead-letters stuck trajectory %s: %s", t.trajectory_id, reason)
            letters.append(Outgoing(Topics.DEAD_LETTER, t.trajectory_id, DeadLetter(
                service="sql-executor", source_topic="deadline-sweep", key=t.trajectory_id.encode(),
                error_type="DeadlineExceeded", reason=reason, seed_id=t.seed_id, trajectory_id=t.trajectory_id,
                attempts=0, failed_at=now)))
        for owner in self.registry.resolved_with_sandbox():
            log.info("drops the sandbox left behind by %s", owner)
            self.sandboxes.drop(owner)
        self.registry.forget_planned(max_age_s=self.settings.service.trajectory_deadline_s)
        return letters

    def letters_out(self, outputs: list[Outgoing]) -> None:
        self.registry.letters_sent([o.key for o in outputs])


def _verdict_info(v: Verdict) -> MessageInfo:
    return MessageInfo(entity=v.trajectory_id, step=v.trajectory.step, seed_id=v.trajectory.seed_id,
                       trajectory_id=v.trajectory_id)


def _dead_letter_info(d: DeadLetter) -> MessageInfo:
    return MessageInfo(entity=f"{d.source_topic}/{d.partition}/{d.offset}", seed_id=d.seed_id,
                       trajectory_id=d.trajectory_id)


def routes(settings: Settings, executor: "SqlExecutor | None" = None) -> list[Route]:
    executor = executor or SqlExecutor(settings)
    return [
        Route(Topics.TOOL_CALLS, TrajectoryState, executor.handle_calls, trajectory_info),
        Route(Topics.ACCEPTED, Verdict, executor.drop_after_verdict, _verdict_info),
        Route(Topics.REJECTED, Verdict, executor.drop_after_verdict, _verdict_info),
        Route(Topics.DEAD_LETTER, DeadLetter, executor.drop_after_dead_letter, _dead_letter_info),
    ]


def sweeper(executor: SqlExecutor, settings: Settings) -> Periodic:
    return Periodic("deadline-sweep", settings.service.sweep_interval_s, executor.sweep, after=executor.letters_out)


def main() -> None:
    settings = get_settings()
    executor = SqlExecutor(settings)
    run_service("sql-executor", routes(settings, executor), settings, [sweeper(executor, settings)])

"""Replaying a finished trajectory in a fresh sandbox: the start state's setup, then every recorded tool call in order.

Offline re-validation cannot trust a record's tool results or reach the sandbox the conversation ran in, so it
rebuilds both: each replayed result must equal the recorded one (a fabricated or edited result does not), and the
sandbox's final state hash is what the golden-state check compares. Values of timestamp-like columns (stamped with
"now" by a write) are left out of the comparison, as the state hash leaves them out.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.contracts import CheckResult, Tool, ToolCallResult, TrajectoryState
from shared.env.dbschema import DatabaseSchema
from shared.env.sandbox import SandboxManager
from shared.env.tool_execution import execute_sql_tool, tool_error
from shared.env.trajectory import tool_by_name
from shared.validation.checks import DETAIL_LIMIT, generated_messages

REPLAY_CHECK = "recorded_results_replay"
MASKED = "<timestamp>"


@dataclass
class Replay:
    final_state_hash: str
    check: CheckResult


def replay_owner(trajectory_id: str) -> str:
    """Owner of the replay's sandbox: never the live trajectory's own, which may still exist."""
    return f"replay:{trajectory_id}"


def replay_trajectory(manager: SandboxManager, state: TrajectoryState, *, timeout_ms: int) -> Replay:
    """Replay `state` (tools running in SQL) in a fresh sandbox of its domain database, dropped afterwards.

    Raises UnknownDomain when the domain database is not registered."""
    domain = state.toolset.domain_database
    db_schema = manager.domain_schema(domain)
    owner = replay_owner(state.trajectory_id)
    manager.drop(owner)  # a replay interrupted before its drop must not leave its writes behind
    sandbox = manager.create(owner, domain)
    try:
        problems = _apply_setup(manager, sandbox, db_schema, state, timeout_ms)
        if not problems:
            problems = _replay_calls(manager, sandbox, db_schema, state, timeout_ms)
        final_hash = manager.state_hash(owner, domain)
    finally:
        manager.drop(owner)
    return Replay(final_hash, CheckResult(name=REPLAY_CHECK, passed=not problems,
                                          detail="; ".join(problems)[:DETAIL_LIMIT]))


def _apply_setup(manager: SandboxManager, sandbox: str, db_schema: DatabaseSchema, state: TrajectoryState,
                 timeout_ms: int) -> list[str]:
    for i, action in enumerate(state.setup_actions):
        tool = next((t for t in state.setup_tools if t.name == action.tool_name), None)
        if tool is None:
            return [f"setup action {i}: the record has no tool {action.tool_name}"]
        result = execute_sql_tool(manager, sandbox, db_schema.table_names, tool, f"setup{i}", action.arguments_json,
                                  timeout_ms=timeout_ms)
        if not result.ok:
            return [f"setup action {i} {action.tool_name} failed: {result.error}"]
    return []


def _replay_calls(manager: SandboxManager, sandbox: str, db_schema: DatabaseSchema, state: TrajectoryState,
                  timeout_ms: int) -> list[str]:
    """Run every generated call in conversation order (as the executor did, parallel calls in the order asked)
    and compare each with its recorded result."""
    messages = generated_messages(state)
    recorded_content = {m.tool_call_id: m.content for m in messages if m.role == "tool"}
    recorded = {r.call_id: r for r in state.tool_results}
    problems = []
    for call in (c for m in messages for c in m.tool_calls):
        tool = tool_by_name(state.toolset, call.function.name)
        replayed = _run(manager, sandbox, db_schema, tool, call.id, call.function.name, call.function.arguments,
                        timeout_ms)
        if call.id not in recorded or call.id not in recorded_content:
            problems.append(f"{call.id} {call.function.name}: ran, but its result is not in the record")
            continue
        mismatch = _mismatch(recorded[call.id], recorded_content[call.id], replayed, tool, db_schema)
        if mismatch:
            problems.append(f"{call.id} {call.function.name}: {mismatch}")
    return problems


def _run(manager: SandboxManager, sandbox: str, db_schema: DatabaseSchema, tool: Tool | None, call_id: str,
         name: str, arguments_json: str, timeout_ms: int) -> ToolCallResult:
    """The call as sql-executor ran it: an unknown tool is a structured error there, so it is here."""
    if tool is None:
        return tool_error(call_id, name, "unknown_tool", f"no tool named {name}")
    if not tool.HasField("sql"):
        return tool_error(call_id, name, "not_replayable", "the tool has no SQL binding")
    return execute_sql_tool(manager, sandbox, db_schema.table_names, tool, call_id, arguments_json,
                            timeout_ms=timeout_ms)


def _mismatch(recorded: ToolCallResult, content: str, replayed: ToolCallResult, tool: Tool | None,
              db_schema: DatabaseSchema) -> str:
    """Why the recorded result is not what replaying the call returns; empty when it is."""
    if recorded.ok != replayed.ok:
        return (f"recorded {'success' if recorded.ok else 'an error'}, replay gave "
                f"{'success' if replayed.ok else replayed.error}")
    if not replayed.ok:  # the same kind of error: its wording may name a timeout or a server detail
        same = _error_kind(content) == _error_kind(replayed.content_json)
        return "" if same else f"recorded error {content[:200]}, replay gave {replayed.error}"
    masked = timestamp_fields(tool, db_schema) if tool is not None else set()
    try:
        recorded_value = _masked(json.loads(content), masked)
    except json.JSONDecodeError:
        return "the recorded result is not JSON"
    if recorded_value != _masked(json.loads(replayed.content_json), masked):
        return f"recorded {content[:200]}, replay returned {replayed.content_json[:200]}"
    return ""


def _error_kind(content: str) -> Any:
    try:
        body = json.loads(content)
    except json.JSONDecodeError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def timestamp_fields(tool: Tool, db_schema: DatabaseSchema) -> set[str]:
    """Result fields of `tool` read from timestamp-like columns: by its declared result columns, and by name for
    the table it acts on (a `SELECT *` or `RETURNING *` declares none)."""
    stamped = {f"{t.name}.{c.name}" for t in db_schema.tables for c in t.columns if c.is_timestamp_like}
    fields = {field for field, column in tool.sql.result_columns.items() if column in stamped}
    return fields | {column.split(".", 1)[1] for column in stamped if column.startswith(f"{tool.effect.table}.")}


def _masked(value: Any, fields: set[str]) -> Any:
    if isinstance(value, list):
        return [_masked(v, fields) for v in value]
    if isinstance(value, dict):
        return {k: MASKED if k in fields and v is not None else _masked(v, fields) for k, v in value.items()}
    return value

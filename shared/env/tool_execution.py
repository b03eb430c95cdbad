"""Executing one tool call: argument checks, then SQL in the trajectory's sandbox (or a simulated answer).

Shared by sql-executor (the live conversation) and task-generator (golden actions in a scratch sandbox), so the
golden end state is produced by exactly the code path the agent's calls take.
"""
from __future__ import annotations

import json
from typing import Any

import jsonschema
import psycopg

from shared.contracts import Tool, ToolCallResult
from shared.runtime.errors import TransientError
from shared.env.sandbox import SandboxManager
from shared.env.sql_guard import UnsafeSQL, check_statement, to_driver_sql
from shared.env.tool_spec import RAW_SQL_ARGUMENT, tool_parameters

MAX_ARGUMENT_BYTES = 16_384
MAX_RESULT_ROWS = 50


def tool_error(call_id: str, tool_name: str, kind: str, detail: str) -> ToolCallResult:
    """A structured tool error: the agent sees it and can recover; it is not a crash."""
    content = json.dumps({"error": kind, "detail": detail})
    return ToolCallResult(call_id=call_id, tool_name=tool_name, ok=False, content_json=content, error=f"{kind}: {detail}")


def parse_arguments(call_id: str, tool: Tool, arguments_json: str) -> tuple[dict | None, ToolCallResult | None]:
    """Arguments as a dict, or a structured error when they are not JSON or do not match the tool's schema."""
    if len(arguments_json.encode()) > MAX_ARGUMENT_BYTES:
        return None, tool_error(call_id, tool.name, "invalid_arguments", f"arguments exceed {MAX_ARGUMENT_BYTES} bytes")
    try:
        arguments = json.loads(arguments_json or "{}")
    except json.JSONDecodeError as e:
        return None, tool_error(call_id, tool.name, "invalid_arguments", f"arguments are not valid JSON: {e.msg}")
    if not isinstance(arguments, dict):
        return None, tool_error(call_id, tool.name, "invalid_arguments", "arguments must be a JSON object")
    try:
        jsonschema.validate(arguments, tool_parameters(tool))
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "arguments"
        return None, tool_error(call_id, tool.name, "invalid_arguments", f"{where}: {e.message}")
    return arguments, None


def execute_sql_tool(manager: SandboxManager, sandbox: str, allowed_tables: list[str], tool: Tool, call_id: str,
                     arguments_json: str, *, timeout_ms: int, idempotency_key: str = "") -> ToolCallResult:
    arguments, error = parse_arguments(call_id, tool, arguments_json)
    if error is not None:
        return error
    # A raw query (DySQL's execute_sql) is the agent's own statement: the same guard, but nothing to bind into it.
    sql = arguments[RAW_SQL_ARGUMENT] if tool.sql.raw_query else tool.sql.statement
    try:
        statement = check_statement(sql, allowed_tables)
        if tool.sql.raw_query and statement.parameters:
            raise UnsafeSQL("a query must carry its values: no :name parameters")
    except UnsafeSQL as e:
        return tool_error(call_id, tool.name, "unsafe_sql", str(e))
    # Every declared parameter is bound; ones the caller left out (optional) are NULL.
    params = {name: arguments.get(name) for name in statement.parameters}
    try:
        outcome = manager.execute(sandbox, to_driver_sql(statement), params, timeout_ms=timeout_ms,
                                  idempotency_key=idempotency_key)
    except psycopg.errors.QueryCanceled:
        return tool_error(call_id, tool.name, "timeout", f"statement exceeded {timeout_ms} ms")
    except psycopg.OperationalError as e:
        raise TransientError(f"database connection lost while running {tool.name}: {e}") from e
    except psycopg.Error as e:
        first_line = (e.diag.message_primary or str(e)).splitlines()[0]
        return tool_error(call_id, tool.name, "database_error", first_line)
    rows = outcome.rows[:MAX_RESULT_ROWS]  # JSON values already (json_values.json_value, in the sandbox)
    # A raw write without RETURNING has no rows to show; how many it touched is what the agent can check.
    output = {"rows_affected": outcome.row_count} if tool.sql.raw_query and not outcome.columns \
        else _shape_output(tool, rows)
    return ToolCallResult(call_id=call_id, tool_name=tool.name, ok=True, content_json=json.dumps(output),
                          source="sql", sql_shape=statement.shape, row_count=max(outcome.row_count, len(rows)))


def _shape_output(tool: Tool, rows: list[dict]) -> Any:
    """As the tool's effect declares: one record (or {"found": false}) for lookups by key and writes, else a list."""
    if tool.effect.single_row:
        return rows[0] if rows else {"found": False}
    return rows

"""Tools with no database behind them: a model answers within the tool's output schema.

The answer is grounded in a reference time (random per trajectory unless the user stated one) so simulated
timestamps stay consistent within a conversation.
"""
from __future__ import annotations

import datetime as dt
import json
import random

from shared.contracts import ToolCallResult, TrajectoryState
from shared.llm import LLMClient
from shared.tool_execution import parse_arguments

SIMULATOR_SYSTEM = (
    "You are the backend of the tool '{name}' ({description}). Given the call's arguments, return the tool's "
    "result as JSON that fits its output schema. Be realistic and consistent with earlier results in the "
    "conversation. The current time is {now}."
)


def reference_time(state: TrajectoryState) -> str:
    rng = random.Random(state.trajectory_id)
    base = dt.datetime(2024, 1, 1) + dt.timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60))
    return base.isoformat(timespec="minutes")


def simulate_tool(llm: LLMClient, state: TrajectoryState, tool, request):
    arguments, error = parse_arguments(request.call_id, tool, request.arguments_json)
    if error is not None:
        return error, None
    schema = json.loads(tool.output_schema_json or '{"type": "object"}')
    earlier = [m.content for m in state.messages if m.role == "tool"][-3:]
    messages = [
        {"role": "system", "content": SIMULATOR_SYSTEM.format(name=tool.name, description=tool.description,
                                                             now=reference_time(state))},
        {"role": "user", "content": f"Earlier results: {earlier}\nArguments: {json.dumps(arguments)}"},
    ]
    chat = llm.chat(messages, schema=schema, schema_name="tool_output")
    result = ToolCallResult(call_id=request.call_id, tool_name=tool.name, ok=True,
                            content_json=json.dumps(chat.data), source="simulated")
    return result, chat

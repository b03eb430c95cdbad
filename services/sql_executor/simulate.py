"""Tools with no database behind them: a model answers within the tool's output schema.

The answer is grounded in a reference time (random per trajectory unless the user stated one) so simulated
timestamps stay consistent within a conversation.
"""
from __future__ import annotations

import datetime as dt
import json
import random
import re

from shared.contracts import Tool, ToolCallRequest, ToolCallResult, TrajectoryState
from shared.env.tool_execution import parse_arguments
from shared.runtime.llm import ChatResult, LLMClient, ModelCall

SIMULATOR_SYSTEM = (
    "You are the backend of the tool '{name}' ({description}). Given the call's arguments, return the tool's "
    "result as JSON that fits its output schema. Be realistic and consistent with earlier results in the "
    "conversation. The current time is {now}."
)


USER_DATE = re.compile(r"\b(20\d\d-[01]\d-[0-3]\d)(?:[T ]([0-2]\d:[0-5]\d))?")


def reference_time(state: TrajectoryState) -> str:
    """The time the user stated (the latest date in their words), else a random one fixed per trajectory."""
    for m in reversed(state.messages):
        found = USER_DATE.findall(m.content) if m.role == "user" else []
        if found:
            day, clock = found[-1]
            try:
                return dt.datetime.fromisoformat(f"{day}T{clock or '09:00'}").isoformat(timespec="minutes")
            except ValueError:
                continue
    rng = random.Random(state.trajectory_id)
    base = dt.datetime(2024, 1, 1) + dt.timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60))
    return base.isoformat(timespec="minutes")


class ToolSimulation(ModelCall[dict]):
    """The answer is the tool's result, constrained to the tool's output schema."""

    name = "tool_output"

    def __init__(self, state: TrajectoryState, tool: Tool, arguments: dict):
        self.state = state
        self.tool = tool
        self.arguments = arguments

    def messages(self) -> list[dict]:
        earlier = [m.content for m in self.state.messages if m.role == "tool"][-3:]
        system = SIMULATOR_SYSTEM.format(name=self.tool.name, description=self.tool.description,
                                         now=reference_time(self.state))
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Earlier results: {earlier}\nArguments: {json.dumps(self.arguments)}"},
        ]

    def schema(self) -> dict:
        return json.loads(self.tool.output_schema_json or '{"type": "object"}')


def simulate_tool(llm: LLMClient, state: TrajectoryState, tool: Tool,
                  request: ToolCallRequest) -> tuple[ToolCallResult, ChatResult | None]:
    """The call's result, and the model's usage when the model was asked (arguments that do not parse are not)."""
    arguments, error = parse_arguments(request.call_id, tool, request.arguments_json)
    if error is not None:
        return error, None
    answer = ToolSimulation(state, tool, arguments).ask(llm)
    result = ToolCallResult(call_id=request.call_id, tool_name=tool.name, ok=True,
                            content_json=json.dumps(answer.value), source="simulated")
    return result, answer.chat

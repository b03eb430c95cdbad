"""agent's pure logic: the step bound, and turning the model's step into OpenAI tool calls or a reply."""
from __future__ import annotations

import json

from shared.contracts import ChatMessage, FunctionCall, ToolCall, ToolCallRequest, TrajectoryState
from shared.env.trajectory import last_user_index


def may_call_tools(state: TrajectoryState) -> bool:
    """Past the step bound the agent must answer with what it has."""
    return state.counters.agent_steps_this_turn < max(state.settings.max_agent_steps_per_turn, 1)


def calls_this_turn(state: TrajectoryState) -> set[tuple[str, str]]:
    """(name, canonical arguments) of calls already answered ok since the last user message."""
    ok_ids = {r.call_id for r in state.tool_results if r.ok}
    seen = set()
    for m in state.messages[last_user_index(state) + 1:]:
        for c in m.tool_calls:
            if c.id in ok_ids:
                seen.add((c.function.name, _canonical(c.function.arguments)))
    return seen


def _canonical(arguments) -> str:
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            return arguments
    return json.dumps(arguments, sort_keys=True)


def new_calls(state: TrajectoryState, decision: dict) -> list[dict]:
    """The decision's calls minus repeats of calls that already succeeded this turn (a small model loops)."""
    done = calls_this_turn(state)
    out, seen = [], set()
    for call in decision.get("tool_calls", []):
        key = (call["name"], _canonical(call.get("arguments", {})))
        if key not in done and key not in seen:
            seen.add(key)
            out.append(call)
    return out


def apply_decision(state: TrajectoryState, decision: dict) -> bool:
    """Append the assistant message; returns True when tools must run before the agent speaks again."""
    calls = new_calls(state, decision)
    if not calls:
        state.messages.append(ChatMessage(role="assistant", content=decision["reply"].strip()))
        state.counters.agent_messages += 1
        return False
    message = ChatMessage(role="assistant", content="")
    for i, call in enumerate(calls):
        call_id = f"call_{state.step}_{i}"
        arguments = json.dumps(call.get("arguments", {}))
        message.tool_calls.append(ToolCall(id=call_id, type="function",
                                           function=FunctionCall(name=call["name"], arguments=arguments)))
        state.pending_calls.append(ToolCallRequest(call_id=call_id, tool_name=call["name"], arguments_json=arguments))
    state.messages.append(message)
    state.counters.agent_messages += 1
    return True

"""agent's pure logic: the step schema the model answers in, and turning its answer into OpenAI tool calls.

The model answers one JSON object per step: tool calls (each constrained to one tool's own argument schema) or a
reply. Any server with JSON-schema decoding serves it the same way (vLLM, llama.cpp, OpenAI), and the dataset still
records standard OpenAI `tool_calls`.
"""
from __future__ import annotations

import json

from shared.contracts import ChatMessage, FunctionCall, ToolCall, ToolCallRequest, Toolset, TrajectoryState
from shared.env.tool_spec import tool_parameters
from shared.env.trajectory import last_user_index, openai_messages

MAX_CALLS_PER_STEP = 3
REPLY = {"type": "string", "minLength": 1, "maxLength": 800}


def step_schema(toolset: Toolset, allow_tools: bool) -> dict:
    if not allow_tools:  # no tool_calls field at all: llama.cpp's grammar does not enforce maxItems 0
        return {"type": "object", "properties": {"reply": REPLY}, "required": ["reply"], "additionalProperties": False}
    options = [
        {"type": "object",
         "properties": {"name": {"const": t.name}, "arguments": tool_parameters(t)},
         "required": ["name", "arguments"]}
        for t in toolset.tools
    ]
    return {
        "type": "object",
        "properties": {
            "tool_calls": {"type": "array", "maxItems": MAX_CALLS_PER_STEP, "items": {"anyOf": options}},
            "reply": REPLY,
        },
        "required": ["tool_calls", "reply"],
    }


def tool_catalogue(toolset: Toolset) -> str:
    """The tools as the model reads them: structured output carries names and argument types, not meaning."""
    lines = []
    for t in toolset.tools:
        params = tool_parameters(t).get("properties", {})
        signature = ", ".join(f"{name}: {spec.get('type', 'any')}" for name, spec in params.items())
        lines.append(f"- {t.name}({signature}): {t.description}")
    return ("Answer with JSON: to use tools, list them in tool_calls; to answer the user, leave tool_calls empty "
            "and write the reply.\nTools:\n" + "\n".join(lines))


def request_messages(state: TrajectoryState) -> list[dict]:
    """The conversation as sent to the model: the stored system prompt plus the tool catalogue."""
    messages = openai_messages(state)
    catalogue = tool_catalogue(state.toolset)
    if messages and messages[0]["role"] == "system":
        messages[0] = {"role": "system", "content": messages[0]["content"] + "\n\n" + catalogue}
    else:
        messages.insert(0, {"role": "system", "content": catalogue})
    return messages


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

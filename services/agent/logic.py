"""agent's pure logic: the step bound, reviewing a step before it is used, and turning it into OpenAI tool calls or a
reply."""
from __future__ import annotations

import json
from typing import Callable

from services.agent import reply_guard
from shared.contracts import ChatMessage, FunctionCall, ToolCall, ToolCallRequest, TrajectoryState
from shared.env.grounding import ungrounded_arguments
from shared.env.trajectory import grounding_sources, last_user_index


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


# Asked-again steps per step: enough for a model to mend a reply it was told about, few enough to bound the cost.
MAX_STEP_RETRIES = 2
REPEATED_CALL = "repeated_call"
UNGROUNDED_ARGUMENTS = "ungrounded_arguments"
CORRECTIONS = {
    **reply_guard.CORRECTIONS,
    REPEATED_CALL: "it asked again for calls whose results you already have; answer the user with those results",
    UNGROUNDED_ARGUMENTS: ("it passed a tool values that the user never gave and no tool returned; use only values "
                           "from the conversation, look them up with another tool first, or ask the user"),
}

# Asks the model for one step: (may it call tools, the note on a previous answer) -> the decision.
AskStep = Callable[[bool, str], dict]


def step_problems(state: TrajectoryState, decision: dict, guard_replies: bool = True) -> list[str]:
    """Why a step must not be used as it is: calls that all repeat answered ones, calls with invented values, or a
    reply the guard refuses. `guard_replies` False (a model under test) leaves only the repeat bound."""
    if "tool_calls" in decision:
        calls = new_calls(state, decision)
        if not calls:
            return [REPEATED_CALL]
        sources = grounding_sources(state)
        invented = guard_replies and any(ungrounded_arguments(c.get("arguments") or {}, sources) for c in calls)
        return [UNGROUNDED_ARGUMENTS] if invented else []
    return reply_guard.problems(decision["reply"], state) if guard_replies else []


def correction(reasons: list[str]) -> str:
    """The note sent with a step asked again (to the model only, never into the conversation)."""
    return "Your previous answer to this step was not used: " + "; ".join(CORRECTIONS[r] for r in reasons) + "."


def decide(state: TrajectoryState, ask: AskStep, guard_replies: bool = True) -> dict:
    """One step, asked again (boundedly) while it has problems, each retry counted per reason in state.retries.

    After the bound the last answer goes out: the validator is the judge of record. A model that only repeats calls
    loses the tools for its next answer, so the last answer is always usable."""
    allow_tools = may_call_tools(state)
    note = ""
    for attempt in range(MAX_STEP_RETRIES + 1):
        decision = ask(allow_tools, note)
        reasons = step_problems(state, decision, guard_replies)
        if not reasons or attempt == MAX_STEP_RETRIES:
            break
        for reason in reasons:
            state.retries[f"agent/{reason}"] += 1
        note = correction(reasons)
        allow_tools = allow_tools and REPEATED_CALL not in reasons
    return decision


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

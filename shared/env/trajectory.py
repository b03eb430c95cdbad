"""Small helpers over TrajectoryState shared by the conversation services."""
from __future__ import annotations

from typing import Any

from shared.runtime.bus import MessageInfo
from shared.contracts import (ChatMessage, SeedEvent, SeededTrajectory, SeedToolset, ToolExecution, Toolset,
                              TrajectoryState)
from shared.env.tool_spec import tool_parameters
from shared.runtime.errors import PermanentError
from shared.runtime.llm import ChatResult


def trajectory_id_prefix(seed_id: str) -> str:
    """What every trajectory id of a seed starts with."""
    return f"{seed_id}-t"


def trajectory_id_for(seed_id: str, index: int) -> str:
    return f"{trajectory_id_prefix(seed_id)}{index:04d}"


def trajectory_info(state: TrajectoryState) -> MessageInfo:
    return MessageInfo(entity=state.trajectory_id, step=state.step, seed_id=state.seed_id,
                       trajectory_id=state.trajectory_id, deadline=state.deadline)


def seed_info(seed: SeedEvent) -> MessageInfo:
    return MessageInfo(entity=seed.seed_id or "<no seed id>", seed_id=seed.seed_id)


def seed_toolset_info(prepared: SeedToolset) -> MessageInfo:
    return MessageInfo(entity=prepared.seed.seed_id, seed_id=prepared.seed.seed_id)


def seeded_trajectory_info(seeded: SeededTrajectory) -> MessageInfo:
    """A trajectory to plan is identified by its trajectory id (step 0: before its first event, step 1)."""
    if not seeded.trajectory_id or not seeded.seed_id:
        # Not from a seed's fan-out (garbage that happened to decode): dead-lettered under its record position, and
        # not remembered by the ledger under an empty id that a second such record would then be skipped as.
        raise PermanentError("a seeded trajectory needs a trajectory id and a seed id")
    return MessageInfo(entity=seeded.trajectory_id, step=0, seed_id=seeded.seed_id,
                       trajectory_id=seeded.trajectory_id, deadline=seeded.deadline)


def advance(state: TrajectoryState) -> TrajectoryState:
    """Every emitted state gets the next step number: (trajectory_id, step) identifies the event."""
    state.step += 1
    return state


def record_usage(state: TrajectoryState, result: ChatResult) -> None:
    state.counters.llm_calls += result.calls
    state.counters.prompt_tokens += result.usage.prompt_tokens
    state.counters.completion_tokens += result.usage.completion_tokens


def message_to_openai(m: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}}
            for c in m.tool_calls
        ]
    if m.role == "tool":
        out["tool_call_id"] = m.tool_call_id
        if m.name:
            out["name"] = m.name
    return out


def openai_messages(state: TrajectoryState) -> list[dict[str, Any]]:
    return [message_to_openai(m) for m in state.messages]


def openai_tools(toolset: Toolset) -> list[dict[str, Any]]:
    return [
        {"type": "function",
         "function": {"name": t.name, "description": t.description, "parameters": tool_parameters(t)}}
        for t in toolset.tools
    ]


def tool_by_name(toolset: Toolset, name: str):
    for t in toolset.tools:
        if t.name == name:
            return t
    return None


def last_user_index(state: TrajectoryState) -> int:
    for i in range(len(state.messages) - 1, -1, -1):
        if state.messages[i].role == "user":
            return i
    return -1


def grounding_sources(state: TrajectoryState, before: int | None = None) -> list[str]:
    """What the agent may take values from, in the messages before index `before` (all by default): the system
    prompt and any given conversation prefix, the user's words and the tools' results."""
    given = 1 + state.prefix_messages
    end = len(state.messages) if before is None else before
    return [m.content for i, m in enumerate(state.messages[:end]) if i < given or m.role in ("tool", "user")]


def executes_sql(state: TrajectoryState) -> bool:
    """Tools run in the sandbox; otherwise (no database, or tool_execution=simulated) a model answers for them."""
    return bool(state.toolset.domain_database) and state.settings.tool_execution != ToolExecution.TOOL_EXECUTION_SIMULATED

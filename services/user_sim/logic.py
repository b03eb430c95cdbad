"""user-sim's pure logic: the simulator's rules kept as state, not only as prompt text.

The plan is the tasks' subtasks. Each turn the simulator first marks what the agent's tool results satisfied, then
decides the move: reveal the next one or two subtasks, follow up on revealed ones still open, or end. It ends only
when every subtask of every task is satisfied, and it never talks on after that; the model only words the message.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from shared.contracts import ChatMessage, PipelineMode, Subtask, Task, TrajectoryState, TrajectoryStatus, UserPersona
from shared.env import outcomes
from shared.env.tool_spec import mutates
from shared.env.trajectory import tool_by_name


@dataclass
class Move:
    kind: str  # "reveal" | "follow_up" | "done" | "out_of_turns"
    subtasks: list[tuple[int, int]] = field(default_factory=list)  # (task index, subtask index)


def mark_satisfied(state: TrajectoryState) -> int:
    """Mark revealed subtasks the agent has accomplished; returns how many became satisfied now."""
    calls = outcomes.successful_calls(state)
    newly = 0
    for task in state.tasks:
        for subtask in task.subtasks:
            if subtask.revealed and not subtask.satisfied and outcomes.subtask_done(state, task, subtask, calls):
                subtask.satisfied = True
                newly += 1
    return newly


def all_satisfied(state: TrajectoryState) -> bool:
    return all(s.satisfied for t in state.tasks for s in t.subtasks)


def current_task(state: TrajectoryState) -> int:
    for i, task in enumerate(state.tasks):
        if not all(s.satisfied for s in task.subtasks):
            return i
    return len(state.tasks)


def only_reads(state: TrajectoryState, task: Task, subtask: Subtask) -> bool:
    """The subtask's golden action calls a tool whose declared effect is a read."""
    if subtask.golden_action < 0:
        return False
    tool = tool_by_name(state.toolset, task.golden_actions[subtask.golden_action].tool_name)
    return tool is not None and not mutates(tool)


def next_move(state: TrajectoryState) -> Move:
    if all_satisfied(state):
        return Move("done")
    if state.counters.user_turns >= state.settings.max_user_turns:
        return Move("out_of_turns")
    if state.settings.pipeline_mode == PipelineMode.PIPELINE_MODE_TASK_ORIENTED:
        unrevealed = [(ti, si) for ti, t in enumerate(state.tasks) for si, s in enumerate(t.subtasks) if not s.revealed]
        if unrevealed:
            return Move("reveal", unrevealed)  # the baseline: the whole request at once
    ti = current_task(state)
    task = state.tasks[ti]
    open_revealed = [(ti, si) for si, s in enumerate(task.subtasks) if s.revealed and not s.satisfied]
    if open_revealed:
        return Move("follow_up", open_revealed[:2])
    unrevealed = [(ti, si) for si, s in enumerate(task.subtasks) if not s.revealed]
    if state.settings.user_persona == UserPersona.USER_PERSONA_EXPERT:
        return Move("reveal", unrevealed)  # the expert states the whole task in one message
    # One subtask per turn, two when both only read (they combine naturally: "show me A and B").
    take = 1
    if len(unrevealed) >= 2 and all(only_reads(state, task, task.subtasks[si]) for _, si in unrevealed[:2]):
        take = 2
    return Move("reveal", unrevealed[:take])


def apply_move(state: TrajectoryState, move: Move) -> None:
    for ti, si in move.subtasks:
        state.tasks[ti].subtasks[si].revealed = True
    state.current_task = min(current_task(state), max(len(state.tasks) - 1, 0))


def required_values(state: TrajectoryState, move: Move) -> dict[str, Any]:
    """Concrete values the user must give for the agent to be able to act (ids, new values)."""
    values: dict[str, Any] = {}
    for ti, si in move.subtasks:
        task = state.tasks[ti]
        sub = task.subtasks[si]
        if sub.golden_action >= 0:
            values.update(json.loads(task.golden_actions[sub.golden_action].arguments_json or "{}"))
    return values


def _mentions(message: str, value: Any) -> bool:
    """The value appears as a whole word ("4" is not mentioned by "2024")."""
    text = str(int(value) if isinstance(value, float) and value.is_integer() else value).strip().lower()
    return re.search(rf"(?<![\w.]){re.escape(text)}(?![\w])", message.lower()) is not None


def ensure_values_mentioned(message: str, values: dict[str, Any], requests: list[str]) -> str:
    """A weak model may drop the ids or the request itself; a person would state both, so restate them plainly."""
    missing = [v for v in values.values() if not _mentions(message, v)]
    if not missing:
        return message
    return f"{message.rstrip()} To be clear: {'; '.join(r.rstrip('.') for r in requests)}."


def finish(state: TrajectoryState, move: Move) -> None:
    """The conversation ends: every subtask is done, or the turns ran out."""
    state.status = (TrajectoryStatus.TRAJECTORY_STATUS_USER_DONE if move.kind == "done"
                    else TrajectoryStatus.TRAJECTORY_STATUS_OUT_OF_TURNS)
    state.current_task = max(len(state.tasks) - 1, 0)


def say(state: TrajectoryState, move: Move, worded: str) -> None:
    """Append the user's message for `move`: the model's wording, with the values it must carry restated if it
    dropped them."""
    requests = [state.tasks[ti].subtasks[si].description for ti, si in move.subtasks]
    state.messages.append(ChatMessage(role="user", content=ensure_values_mentioned(
        worded, required_values(state, move), requests)))
    state.counters.user_turns += 1
    state.counters.agent_steps_this_turn = 0

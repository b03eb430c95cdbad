"""user-sim's pure logic: the simulator's rules kept as state, not only as prompt text.

The plan is the tasks' subtasks. Each turn the simulator first marks what the agent's outcomes satisfied, then
decides the move: reveal the next one or two subtasks, answer the agent's question about an open one, follow up on
one left open, or close. It closes only when every subtask of every task is satisfied (the model cannot end it
early), with one closing message, and never talks on after that; the model only words each message, and a wording
that fails the message checks is asked for again, never patched.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from services.user_sim import message_check
from shared.contracts import ChatMessage, PipelineMode, Subtask, Task, TrajectoryState, TrajectoryStatus, UserPersona
from shared.env import outcomes
from shared.env.tool_spec import mutates
from shared.env.trajectory import tool_by_name


# Attempts at wording one user message; one that still fails the checks ends the trajectory (it is never patched).
MAX_WORDING_ATTEMPTS = 3


@dataclass
class Move:
    """What the user does this turn; the model only words it."""

    kind: str  # "reveal" | "follow_up" | "answer" | "close" | "out_of_turns"
    subtasks: list[tuple[int, int]] = field(default_factory=list)  # (task index, subtask index)
    acknowledge: bool = False  # the agent just got something done: say so briefly before moving on


# Asks the model to word a move: (the note on a previous wording, empty at first) -> the message's text.
AskWording = Callable[[str], str]


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


def agent_asked(state: TrajectoryState) -> bool:
    """The agent's last reply asks the user something (a clarification, a confirmation)."""
    for m in reversed(state.messages):
        if m.role == "user":
            return False
        if m.role == "assistant" and m.content:
            return "?" in m.content
    return False


def is_opening(state: TrajectoryState) -> bool:
    """No user message yet: the next one opens the conversation."""
    return not any(m.role == "user" for m in state.messages)


def next_move(state: TrajectoryState, newly_satisfied: int = 0) -> Move:
    """The policy. `newly_satisfied`: subtasks the agent completed since the user last spoke."""
    if all_satisfied(state):
        return Move("close", acknowledge=True)
    if state.counters.user_turns >= state.settings.max_user_turns:
        return Move("out_of_turns")
    acknowledge = newly_satisfied > 0
    if state.settings.pipeline_mode == PipelineMode.PIPELINE_MODE_TASK_ORIENTED:
        unrevealed = [(ti, si) for ti, t in enumerate(state.tasks) for si, s in enumerate(t.subtasks) if not s.revealed]
        if unrevealed:
            return Move("reveal", unrevealed, acknowledge)  # the baseline: the whole request at once
    ti = current_task(state)
    task = state.tasks[ti]
    open_revealed = [(ti, si) for si, s in enumerate(task.subtasks) if s.revealed and not s.satisfied]
    if open_revealed:
        # An open request the agent asks about is answered; one it left without asking is followed up.
        return Move("answer" if agent_asked(state) else "follow_up", open_revealed[:2], acknowledge)
    unrevealed = [(ti, si) for si, s in enumerate(task.subtasks) if not s.revealed]
    if state.settings.user_persona == UserPersona.USER_PERSONA_EXPERT:
        return Move("reveal", unrevealed, acknowledge)  # the expert states the whole task in one message
    # One subtask per turn, two when both only read (they combine naturally: "show me A and B").
    take = 1
    if len(unrevealed) >= 2 and all(only_reads(state, task, task.subtasks[si]) for _, si in unrevealed[:2]):
        take = 2
    return Move("reveal", unrevealed[:take], acknowledge)


def apply_move(state: TrajectoryState, move: Move) -> None:
    for ti, si in move.subtasks:
        state.tasks[ti].subtasks[si].revealed = True
    state.current_task = min(current_task(state), max(len(state.tasks) - 1, 0))


def required_values(state: TrajectoryState, move: Move) -> list[Any]:
    """Concrete values a request must carry for the agent to be able to act (ids, new values)."""
    if move.kind != "reveal":
        return []
    values: list[Any] = []
    for ti, si in move.subtasks:
        task = state.tasks[ti]
        sub = task.subtasks[si]
        if sub.golden_action < 0:
            continue
        # The request's own values and those of the lookups it takes (the phone number the agent searches by).
        for index in [*sub.leading_actions, sub.golden_action]:
            golden = task.golden_actions[index]
            arguments = json.loads(golden.arguments_json or "{}")
            # A key the agent looks up is not the user's to give; a flag is said in words ("switch it off"), not as
            # true/false, so no check could find it.
            values.extend(v for k, v in arguments.items() if k not in golden.looked_up_arguments and v is not None
                          and not isinstance(v, bool) and v not in values)
    return values


def word(state: TrajectoryState, move: Move, ask: AskWording) -> tuple[str, list[str]]:
    """The move's message and, when every attempt failed the checks, why the last one did (else []).

    Each attempt after the first tells the model what was wrong; each is counted per reason in state.retries."""
    must_mention = required_values(state, move)
    note = ""
    for attempt in range(MAX_WORDING_ATTEMPTS):
        text = ask(note)
        reasons = message_check.problems(text, state, must_mention)
        if not reasons:
            return text, []
        if attempt + 1 < MAX_WORDING_ATTEMPTS:
            for reason in reasons:
                state.retries[f"user_sim/{reason}"] += 1
            note = message_check.correction(reasons)
    return text, reasons


def say(state: TrajectoryState, text: str) -> None:
    """Append the user's message; the agent's step count starts again."""
    state.messages.append(ChatMessage(role="user", content=text))
    state.counters.user_turns += 1
    state.counters.agent_steps_this_turn = 0


def close(state: TrajectoryState, text: str) -> None:
    """The closing turn: written only when the state says every subtask is done, and it ends the conversation."""
    say(state, text)
    state.is_task_complete = True
    state.status = TrajectoryStatus.TRAJECTORY_STATUS_USER_DONE
    state.current_task = max(len(state.tasks) - 1, 0)


def out_of_turns(state: TrajectoryState) -> None:
    """The turn budget ran out before every subtask was done: the conversation ends without a closing turn."""
    state.status = TrajectoryStatus.TRAJECTORY_STATUS_OUT_OF_TURNS
    state.current_task = max(len(state.tasks) - 1, 0)


def abandon(state: TrajectoryState, reasons: list[str]) -> None:
    """No acceptable wording: generation stops, and the validator rejects the trajectory with this reason."""
    state.abandoned_reason = "user turn could not be worded: " + ", ".join(reasons)
